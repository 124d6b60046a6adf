"""Drivers, business customers and contracts, tokens, vehicles (layer 2)."""
