"""Stage 2: analysis table -> Bayesian hierarchical time-course models and their summaries."""
