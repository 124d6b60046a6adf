"""OCPI 2.2.1 and OICP 2.3 protocol adapters (layer 5)."""
