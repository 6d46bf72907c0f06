"""The review's figures, one module per kind: common (style, colours, atomic save), forest, trajectory,
appraisal, model (prior/posterior, posterior predictive check, rank and trace plots)."""
