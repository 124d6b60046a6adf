"""The demo sites' electrical trees and alert rules (idempotent), so the site load view and the alerts are alive
out of the box.

Each tenant's simulated site gets a grid connection with a limit and a daytime time-of-use window, an AC
sub-distribution with the two AC chargers, and the DC charger straight under the root: six connectors drawing
11 kW each (the simulator's `--power-w`) want 66 kW, more than the site may take, so the smart-charging loop
shares the limit out and the chargers get (and accept) their TxProfiles. Every kind of alert rule is enabled;
the depot charger that went quiet (`stations_demo`) opens a charger-offline alert at the first evaluation.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.analytics import services as analytics_services
from apps.analytics.models import AlertKind
from apps.demo.stations_demo import SITES, demo_charger_ids
from apps.energy import services as energy_services
from apps.energy.models import GridNode, NodeKind, Strategy, TimeOfUseLimit
from apps.stations.models import ChargePoint, Location
from apps.tenants.models import Tenant

EVERY_DAY = [0, 1, 2, 3, 4, 5, 6]
# per tenant: root (name, kind-specific limit), time-of-use window, AC sub-distribution
GRIDS: dict[str, dict[str, Any]] = {
    "voltnet": {
        "root": {"name": "Grid connection Hub Mitte", "max_power_w": 50_000, "strategy": Strategy.EQUAL_SHARE},
        "window": {"label": "Daytime: office building load", "start": dt.time(6), "end": dt.time(22), "percent": 70},
        "ac": {"name": "AC distribution board", "max_current_a": 32},
    },
    "fjord": {
        "root": {"name": "Grid connection Bryggen", "max_current_a": 63, "strategy": Strategy.EQUAL_SHARE},
        "window": {"label": "Evening peak", "start": dt.time(16), "end": dt.time(21), "percent": 60},
        "ac": {"name": "AC distribution board", "max_current_a": 32},
    },
}
ALERT_RULES: list[dict[str, Any]] = [
    {"kind": AlertKind.CHARGER_OFFLINE, "threshold_minutes": 10},
    {"kind": AlertKind.CONNECTOR_FAULTED},
    {"kind": AlertKind.POWER_ABOVE_RATING, "power_margin_percent": 10},
    {"kind": AlertKind.ENERGY_WITHOUT_SESSION, "threshold_minutes": 10},
    {"kind": AlertKind.SESSION_TOO_LONG, "threshold_minutes": 12 * 60},
    {"kind": AlertKind.NO_ENERGY, "threshold_minutes": 15},
    {"kind": AlertKind.COMMAND_FAILED},
    {"kind": AlertKind.PROFILE_REJECTED},
    {"kind": AlertKind.SECURITY_EVENT},
    {"kind": AlertKind.CERTIFICATE_EXPIRING},
]


def seed_grid(tenant: Tenant) -> GridNode | None:
    """The site tree of the tenant's simulated site; returns its root (None for a tenant without a demo site)."""
    grid = GRIDS.get(tenant.slug)
    site = SITES.get(tenant.slug)
    if grid is None or site is None:
        return None
    location = Location.objects.get(tenant=tenant, name=site[0])
    root = GridNode.objects.filter(tenant=tenant, location=location, parent__isnull=True).first()
    if root is not None:
        return root
    root = energy_services.grid_node_create(
        tenant=tenant, location=location, kind=NodeKind.GRID_CONNECTION, **grid["root"]
    )
    energy_services.tou_limit_create(tenant=tenant, node=root, weekdays=EVERY_DAY, **grid["window"])
    ac = energy_services.grid_node_create(
        tenant=tenant, location=location, parent=root, kind=NodeKind.SUB_DISTRIBUTION, **grid["ac"]
    )
    ids = demo_charger_ids(tenant)
    chargers = ChargePoint.objects.in_bulk(ids, field_name="identity")
    for identity in ids:
        cp = chargers[identity]
        dc = identity == ids[-1]
        energy_services.grid_node_create(
            tenant=tenant,
            location=location,
            parent=root if dc else ac,
            kind=NodeKind.CHARGE_POINT,
            charge_point=cp,
            name=identity,
            max_power_w=cp.max_power_w,
            max_current_a=None if dc else 32,
        )
    assert TimeOfUseLimit.objects.filter(node=root).count() == 1
    return root


def seed_alert_rules(tenant: Tenant) -> None:
    for rule in ALERT_RULES:
        fields = dict(rule)
        analytics_services.alert_rule_ensure(
            tenant_id=tenant.pk, notify_emails=[f"ops@{tenant.slug}.example"], **fields
        )
