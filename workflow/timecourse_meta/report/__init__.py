"""Stage 3: model summaries -> formatted numbers, tables, claims check and figures."""
