"""Export jobs (layer 4)."""
