"""Stage 4: results -> manuscript variables, provenance, lint and render."""
