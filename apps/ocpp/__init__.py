"""OCPP 1.6-J protocol adapter (layer 5)."""
