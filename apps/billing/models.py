"""Invoices, credit notes, payments (layer 4)."""
