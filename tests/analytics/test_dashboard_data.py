"""The ops dashboard's figures: hours labelled in the user's zone, the current hour's bar moving with the energy
tiles, sessions that charged counted apart from the charging success rate (a refused start does not inflate the
chart), and every charger linking to its page."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any

from django.test import Client
from django.utils import timezone

from apps.analytics import selectors, services
from apps.sessions import services as session_services
from apps.stations import services as station_services
from apps.tenants.models import Role, Tenant, User
from tests.customers.factories import TokenFactory
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory

ZONE = "America/New_York"  # five hours behind UTC: a label left in UTC shows


def _meter(wh: int, at: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": at.isoformat(),
            "sampled_value": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}],
        }
    ]


def _network(tenant: Tenant, now: dt.datetime | None = None) -> int:
    location = LocationFactory(tenant=tenant, name="Depot Nord")
    cp, _ = station_services.charge_point_register(tenant=tenant, identity="DASH-1", location=location)
    for n in (1, 2):
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*DSH*E1*{n}"))
    TokenFactory(tenant=tenant, uid="GOODCARD")
    now = now or timezone.now()
    # three hours ago: 10 kWh charged and unplugged (a success)
    began = now - dt.timedelta(hours=3)
    ok, _ = session_services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="GOODCARD", meter_start=0, timestamp=began
    )
    session_services.session_stop(
        charge_point_id=cp.pk,
        transaction_id=ok.pk,
        meter_stop=10_000,
        timestamp=began + dt.timedelta(minutes=40),
        reason="EVDisconnected",
    )
    # two hours ago: an unknown card, refused; the charger stops at once
    refused_at = now - dt.timedelta(hours=2)
    refused, info = session_services.session_start(
        charge_point_id=cp.pk, connector_id=2, id_tag="STRANGER", meter_start=500, timestamp=refused_at
    )
    assert info.status == "Invalid"
    session_services.session_stop(
        charge_point_id=cp.pk,
        transaction_id=refused.pk,
        meter_stop=500,
        timestamp=refused_at + dt.timedelta(seconds=5),
        reason="DeAuthorized",
    )
    # now: charging, 2.5 kWh metered so far
    running, _ = session_services.session_start(
        charge_point_id=cp.pk,
        connector_id=1,
        id_tag="GOODCARD",
        meter_start=20_000,
        timestamp=now - dt.timedelta(minutes=10),
    )
    session_services.session_add_meter_values(
        charge_point_id=cp.pk, connector_id=1, transaction_id=running.pk, meter_value=_meter(22_500, now)
    )
    services.session_facts_backfill(tenant_id=tenant.pk)
    services.rollup_run(lag=dt.timedelta(0))
    return cp.pk


def test_dashboard_figures_in_the_users_zone_with_success_apart(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    cp_id = _network(tenant_a)
    client.force_login(make_staff(tenant_a, Role.OPERATIONS, is_staff=True))
    client.cookies["evp_tz"] = ZONE

    data = client.get("/admin/analytics/dashboard/data/").json()

    zone = zoneinfo.ZoneInfo(ZONE)
    now = timezone.now().astimezone(zone)
    assert data["zone"] == ZONE
    assert data["series"]["labels"][-1] == f"{now:%H}:00"
    assert data["series"]["labels"][0] == f"{now - dt.timedelta(hours=23):%H}:00"
    # the current hour holds what the running session metered so far, as the tiles do
    assert data["live"]["active_energy_wh"] == 2_500, data["live"]
    assert data["series"]["energy_kwh"][-1] == 2.5
    # one session charged, one start refused: the chart counts the one that charged, the rate says 50 %
    assert sum(data["series"]["charged"]) == 1
    assert sum(data["series"]["failed"]) == 1
    assert data["success"] == {"charged": 1, "ended": 2, "rate": 50.0}
    assert all(isinstance(n, int) for n in data["series"]["charged"])
    assert [c["url"] for c in data["chargers"]] == [f"/admin/stations/chargepoint/{cp_id}/change/"]


def test_energy_today_starts_at_midnight_in_the_users_zone(tenant_a: Tenant) -> None:
    # 01:00 UTC is 21:00 the evening before in New York: the session that ended at 22:40 UTC (18:40 there) is
    # today's in New York, yesterday's in UTC
    now = dt.datetime(2026, 3, 10, 1, 0, tzinfo=dt.UTC)
    _network(tenant_a, now=now)
    scope = selectors.Scope(frozenset({tenant_a.pk}))

    in_new_york = selectors.live_kpis(scope, now=now, tz=zoneinfo.ZoneInfo(ZONE))
    in_utc = selectors.live_kpis(scope, now=now)

    assert (in_new_york["energy_today_wh"], in_utc["energy_today_wh"]) == (10_000 + 2_500, 2_500)


def test_energy_this_month_starts_on_the_first_at_midnight_in_the_users_zone(tenant_a: Tenant) -> None:
    # 06:00 UTC on 1 March is 01:00 on 1 March in New York: the session that ended at 03:40 UTC (22:40 on
    # 28 February there) is March's in UTC, February's in New York
    now = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)
    _network(tenant_a, now=now)
    scope = selectors.Scope(frozenset({tenant_a.pk}))

    in_new_york = selectors.live_kpis(scope, now=now, tz=zoneinfo.ZoneInfo(ZONE))
    in_utc = selectors.live_kpis(scope, now=now)

    assert (in_new_york["energy_month_wh"], in_utc["energy_month_wh"]) == (2_500, 10_000 + 2_500)
    assert (in_new_york["energy_today_wh"], in_utc["energy_today_wh"]) == (2_500, 10_000 + 2_500)
