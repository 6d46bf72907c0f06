"""Stage 1: extraction sheets -> validated, harmonised analysis table."""
