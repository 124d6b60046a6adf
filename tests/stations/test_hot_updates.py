"""A charger's frames update its row all day (last seen, status, heartbeat): those updates must be HOT (no index
entry written), which holds only while no indexed column changes and the page has room (migration 0013)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from apps.stations import services
from apps.stations.models import ChargePoint
from tests.stations.factories import ChargePointFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


def updates_of_the_table() -> tuple[int, int]:
    """(updates, HOT updates) of stations_chargepoint in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated(c.oid), pg_stat_get_xact_tuples_hot_updated(c.oid)"
            " FROM pg_class c WHERE c.relname = 'stations_chargepoint'"
        )
        updated, hot = cursor.fetchone()
    return int(updated), int(hot)


def test_the_updates_of_a_chargers_frames_are_hot() -> None:
    cp: ChargePoint = ChargePointFactory(tenant=TenantFactory(), online=True, last_seen_at=timezone.now())
    before = updates_of_the_table()
    at = timezone.now()

    services.status_record(charge_point_id=cp.pk, connector_id=0, status="Available", timestamp=at)
    services.charge_points_heartbeat(beats={cp.pk: at + dt.timedelta(seconds=1)})
    services.charge_point_touch(charge_point_ids=[cp.pk], at=at + dt.timedelta(hours=1))

    updated, hot = (now - then for now, then in zip(updates_of_the_table(), before, strict=True))
    assert (updated, hot) == (3, 3)


def test_the_table_leaves_room_on_its_pages_for_hot_updates() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'stations_chargepoint'")
        assert "fillfactor=85" in (cursor.fetchone()[0] or [])


def test_sessions_leave_room_on_their_pages_for_the_meter_values_updates() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'charging_chargingsession'")
        assert "fillfactor=90" in (cursor.fetchone()[0] or [])
