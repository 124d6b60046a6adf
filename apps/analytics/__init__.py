"""KPIs, alerts and notifications (layer 4)."""
