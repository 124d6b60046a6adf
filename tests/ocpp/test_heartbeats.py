"""Heartbeats after the first of a connection are written in batches (apps/ocpp/heartbeats.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.stations import services as station_services
from apps.stations.models import ChargePoint
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_later_heartbeats_reach_the_database_in_a_batch(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", {"chargePointVendor": "Alfen", "chargePointModel": "Eve"})
    await charger.ok("Heartbeat", {})
    first = (await db(ChargePoint.objects.get)(pk=station.charge_point.pk)).last_heartbeat_at
    assert first is not None

    await charger.ok("Heartbeat", {})

    async def moved() -> bool:
        cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
        return cp.last_heartbeat_at is not None and cp.last_heartbeat_at > first

    await wait_for(moved, timeout=5)


def test_batched_heartbeats_never_move_a_time_back(station: Station) -> None:
    cp = station.charge_point
    now = timezone.now()
    ChargePoint.objects.filter(pk=cp.pk).update(last_heartbeat_at=now, last_seen_at=now, online=False)

    station_services.charge_points_heartbeat(beats={cp.pk: now - dt.timedelta(seconds=30)})

    cp.refresh_from_db()
    assert (cp.last_heartbeat_at, cp.last_seen_at, cp.online) == (now, now, True)


def test_batched_heartbeats_write_every_charger_in_one_statement_after_locking_them_in_id_order(
    station: Station,
) -> None:
    cp = station.charge_point
    at = timezone.now()

    with CaptureQueriesContext(connection) as queries:
        station_services.charge_points_heartbeat(beats={cp.pk + 10_000: at, cp.pk: at})

    statements = [query["sql"] for query in queries.captured_queries]
    lock, update = (sql for sql in statements if sql.startswith(("SELECT", "UPDATE")))
    assert lock.endswith("ORDER BY id FOR UPDATE")
    assert update.startswith("UPDATE stations_chargepoint")

    cp.refresh_from_db()
    assert (cp.last_heartbeat_at, cp.last_seen_at, cp.online) == (at, at, True)
