"""The presence refresh's bulk 'last seen' (`services.charge_point_touch`): it writes only the open sockets' rows the
offline sweep could take before the next refresh, in short transactions, so a charger with an open socket never
goes offline and a busy fleet's own StatusNotifications do not wait behind one long lock of every row."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.stations import services
from apps.stations.models import ChargePoint
from tests.stations.factories import ChargePointFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

REFRESH = 20.0


def seen(ago: float | None, *, interval: int = 300, online: bool = True) -> ChargePoint:
    at = None if ago is None else timezone.now() - dt.timedelta(seconds=ago)
    cp: ChargePoint = ChargePointFactory(
        tenant=TenantFactory(), heartbeat_interval=interval, online=online, last_seen_at=at
    )
    return cp


def test_only_the_rows_the_offline_sweep_could_take_before_the_next_refresh_are_written() -> None:
    # heartbeat_interval 300 s, OCPP_OFFLINE_FACTOR 2.5: offline after 750 s without a frame; written when seen
    # more than 750 / 2 - 20 = 355 s ago; with an interval of 60 s (offline after 150 s), seen more than 55 s ago;
    # with 10 s (offline after 25 s, less than two refreshes), at every refresh
    recent, older, due, offline, never = seen(5), seen(300), seen(400), seen(2, online=False), seen(None)
    short_due, short_recent, shortest = seen(56, interval=60), seen(50, interval=60), seen(1, interval=10)
    before = {cp.pk: cp.last_seen_at for cp in (recent, older, short_recent)}
    at = timezone.now()

    written = services.charge_point_touch(
        charge_point_ids=[cp.pk for cp in (recent, older, due, offline, never, short_due, short_recent, shortest)],
        at=at,
        refresh_s=REFRESH,
    )

    assert written == 5
    rows = {cp.pk: cp for cp in ChargePoint.objects.all()}
    for cp in (due, offline, never, short_due, shortest):
        assert (rows[cp.pk].last_seen_at, rows[cp.pk].online) == (at, True)
    for pk, last_seen in before.items():
        assert (rows[pk].last_seen_at, rows[pk].online) == (last_seen, True)


@pytest.mark.parametrize("interval", [10, 30, 60, 300, 3600])
def test_no_open_socket_goes_offline_between_two_refreshes(interval: int) -> None:
    """Whatever a charger's interval and however long ago its last frame, after a touch the sweep one refresh
    later takes none of them (the sweep's limit is interval x OCPP_OFFLINE_FACTOR)."""
    ages = [0, 5, 9, 11, 19, 29, 40, 61, 100, 200, 354, 356, 374, 376, 700, 749, 1000, 5000, 9000]
    rows = [seen(age, interval=interval) for age in ages]
    at = timezone.now()
    services.charge_point_touch(charge_point_ids=[cp.pk for cp in rows], at=at, refresh_s=REFRESH)

    taken = services.charge_points_mark_offline(now=at + dt.timedelta(seconds=REFRESH + 1))

    assert taken == []


def test_rows_are_written_in_batches_of_short_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "TOUCH_BATCH", 2)
    rows = [seen(1000) for _ in range(5)]

    with CaptureQueriesContext(connection) as queries:
        written = services.charge_point_touch(charge_point_ids=[cp.pk for cp in rows], refresh_s=REFRESH)

    updates = [q["sql"] for q in queries.captured_queries if "UPDATE stations_chargepoint" in q["sql"]]
    assert (written, len(updates)) == (5, 3)
    assert all("ORDER BY id" in sql and "FOR UPDATE SKIP LOCKED" in sql for sql in updates)
    assert not ChargePoint.objects.exclude(last_seen_at__gte=timezone.now() - dt.timedelta(seconds=60)).exists()
