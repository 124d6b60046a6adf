"""Locations, charge points, EVSEs, connectors, and commands to chargers (layer 2)."""
