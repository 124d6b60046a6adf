"""Charging sessions, meter values, CDRs, reservations, session limits (layer 3)."""
