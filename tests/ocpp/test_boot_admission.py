"""Admission control of BootNotifications (a fleet rebooting at once): past OCPP_BOOT_CONCURRENCY boots being
recorded, a charger is answered Pending with a jittered interval and nothing about it is recorded; it boots
into Accepted when it comes back."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from django.db import connection

from apps.ocpp import central
from apps.stations import services as station_services
from apps.stations.models import ChargePoint
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for
from tests.ocpp.test_core import BOOT

pytestmark = pytest.mark.django_db(transaction=True)


def _lock_row(charge_point_id: int) -> psycopg.Connection[Any]:
    """Another client holds the charger's row: its boot (an UPDATE of that row) waits, in flight."""
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    holder = psycopg.connect(**params)
    holder.execute("SELECT id FROM stations_chargepoint WHERE id = %s FOR UPDATE", [charge_point_id])
    return holder


async def test_boots_past_the_limit_are_answered_pending_and_recorded_when_they_come_back(
    station: Station, connect: ConnectCharger, settings: Any
) -> None:
    settings.OCPP_BOOT_CONCURRENCY = 1
    settings.OCPP_BOOT_RETRY_SECONDS = (20, 40)
    second_cp, second_password = await db(station_services.charge_point_register)(
        tenant=station.tenant, identity="CP-TEST-2", location=station.charge_point.location, heartbeat_interval=60
    )
    first = await connect(station.charge_point.identity, station.password)
    second = await connect(second_cp.identity, second_password)
    deferred_before = central.boots.deferred

    holder = await db(_lock_row)(station.charge_point.pk)
    try:
        waiting = asyncio.create_task(first.ok("BootNotification", BOOT))

        async def in_flight() -> bool:
            return central.boots.in_flight == 1

        await wait_for(in_flight, timeout=10)

        pending = await second.ok("BootNotification", {**BOOT, "chargePointModel": "Deferred"})
        refreshed = await db(ChargePoint.objects.get)(pk=second_cp.pk)
        assert (pending["status"], 20 <= pending["interval"] <= 40) == ("Pending", True)
        assert (refreshed.model, refreshed.last_boot_at) == ("", None)  # nothing recorded
        assert central.boots.deferred == deferred_before + 1
    finally:
        await db(holder.close)()

    assert (await asyncio.wait_for(waiting, 10))["status"] == "Accepted"
    again = await second.ok("BootNotification", {**BOOT, "chargePointModel": "Back"})
    refreshed = await db(ChargePoint.objects.get)(pk=second_cp.pk)
    assert again["status"] == "Accepted"
    assert refreshed.model == "Back"
    assert refreshed.last_boot_at is not None
    assert central.boots.in_flight == 0
