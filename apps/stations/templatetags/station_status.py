"""The OCPP connector status words as people read them, for pages whose JavaScript draws live status badges:
``{% load station_status %}{% charge_point_status_labels as labels %}{{ labels|json_script:"status-labels" }}``."""

from __future__ import annotations

from django import template

from apps.stations.models import ChargePointStatus

register = template.Library()


@register.simple_tag
def charge_point_status_labels() -> dict[str, str]:
    """{OCPP status: translated label} in the active language ("SuspendedEVSE" -> "Suspended by the charger")."""
    return {value: str(label) for value, label in ChargePointStatus.choices}
