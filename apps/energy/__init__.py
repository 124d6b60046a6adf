"""Electrical model of sites and the smart-charging optimizer (layer 4)."""
