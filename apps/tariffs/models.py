"""OCPI tariffs, contract price lists and the pricing engine (layer 2)."""
