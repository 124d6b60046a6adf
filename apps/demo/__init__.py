"""Demo data for `make run` (composition layer above all apps)."""
