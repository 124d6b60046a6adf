"""The OCPP frame log is partitioned by day (apps/core/partitions.py, migration ocpp 0005): partitions are made
ahead, a frame lands in its day, a time-bounded read touches only its days, retention drops whole days."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection

from apps.core import partitions
from apps.ocpp import tasks
from apps.ocpp.models import MessageLog
from apps.stations.models import ChargePoint
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db
TABLE = "ocpp_messagelog"
NEW_YEAR = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def frame(cp: ChargePoint, at: dt.datetime, action: str = "Heartbeat") -> MessageLog:
    return MessageLog.objects.create(
        tenant=cp.tenant, charge_point=cp, created_at=at, direction="in", kind=2, action=action
    )


def home(row: MessageLog) -> str:
    """The partition a row is stored in."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [row.pk])
        return str(cursor.fetchone()[0])


def names() -> list[str]:
    return [p.name for p in partitions.partitions(TABLE)]


def test_the_migration_leaves_a_partitioned_table_with_what_was_there_as_one_partition() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        assert cursor.fetchone()[0] == "p"
    found = partitions.partitions(TABLE)
    legacy = found[0]
    assert (legacy.name, legacy.start) == (f"{TABLE}_legacy", None)
    days = [p for p in found if p.start is not None]
    assert len(days) >= 8  # a week ahead of the cut
    assert all(b.start == a.end for a, b in zip([legacy, *days], days, strict=False))  # no gap, no overlap
    assert found[-1].default


def test_days_ahead_are_created_and_a_frame_lands_in_its_day() -> None:
    cp = ChargePointFactory()

    created = partitions.ensure_partitions(TABLE, "created_at", days_ahead=3, now=NEW_YEAR)
    again = partitions.ensure_partitions(TABLE, "created_at", days_ahead=3, now=NEW_YEAR)
    row = frame(cp, NEW_YEAR + dt.timedelta(days=1, hours=13))

    assert created == [f"{TABLE}_p2031010{d}" for d in (1, 2, 3, 4)]
    assert again == []
    assert home(row) == f"{TABLE}_p20310102"
    assert MessageLog.objects.get(pk=row.pk).action == "Heartbeat"  # read through the parent by id


def test_a_frame_without_its_day_waits_in_the_default_partition_and_moves_when_the_day_is_made() -> None:
    cp = ChargePointFactory()
    at = dt.datetime(2032, 5, 5, 8, tzinfo=dt.UTC)
    row = frame(cp, at, action="StatusNotification")
    assert home(row) == f"{TABLE}_default"

    partitions.ensure_partitions(TABLE, "created_at", days_ahead=0, now=at)

    assert home(row) == f"{TABLE}_p20320505"
    moved = MessageLog.objects.get(pk=row.pk)
    assert (moved.created_at, moved.action) == (at, "StatusNotification")
    assert MessageLog.objects.filter(created_at__year=2032).count() == 1


def test_a_time_bounded_read_touches_only_its_days() -> None:
    cp = ChargePointFactory()
    partitions.ensure_partitions(TABLE, "created_at", days_ahead=4, now=NEW_YEAR)
    for day in range(5):
        frame(cp, NEW_YEAR + dt.timedelta(days=day, hours=1))
    query = MessageLog.objects.filter(
        charge_point=cp, created_at__gte=NEW_YEAR + dt.timedelta(days=2), created_at__lt=NEW_YEAR + dt.timedelta(days=3)
    )

    plan = query.explain()

    assert query.count() == 1
    scanned = {name for name in names() if f" {name} " in plan or f" {name}\n" in plan}
    assert scanned == {f"{TABLE}_p20310103"}, plan


def test_retention_drops_whole_days_and_keeps_the_rest(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    cp = ChargePointFactory()
    partitions.ensure_partitions(TABLE, "created_at", days_ahead=4, now=NEW_YEAR)
    rows = [frame(cp, NEW_YEAR + dt.timedelta(days=day, hours=12)) for day in range(5)]
    settings.OCPP_MESSAGE_LOG_RETENTION_DAYS = 30
    # thirty days after 3 January 2031, 06:00: the 1st and 2nd are wholly older than the cutoff, the 3rd is not
    monkeypatch.setattr(tasks.timezone, "now", lambda: NEW_YEAR + dt.timedelta(days=32, hours=6))
    with connection.cursor() as cursor:  # this test's inserts' deferred FK checks, as their commit would run them
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    tasks.purge_message_log()

    left = names()
    assert f"{TABLE}_p20310101" not in left
    assert f"{TABLE}_p20310102" not in left
    assert f"{TABLE}_legacy" not in left  # what was there before partitioning, all older than the cutoff too
    assert {f"{TABLE}_p20310103", f"{TABLE}_p20310104", f"{TABLE}_p20310105"} <= set(left)
    assert list(MessageLog.objects.filter(pk__in=[r.pk for r in rows]).order_by("created_at")) == rows[2:]
    # and beat made the next week's days from "now" on
    assert f"{TABLE}_p20310209" in left


def test_beat_keeps_every_partitioned_table_a_week_ahead(settings: Any) -> None:
    from apps.core.tasks import maintain_partitions

    assert set(settings.PARTITIONED_TABLES) == {
        TABLE,
        "stations_statusevent",
        "charging_metervalue",
        "analytics_sessionfact",
    }
    for table in settings.PARTITIONED_TABLES:
        days = [p for p in partitions.partitions(table) if p.start is not None]
        # the migration made the week after its cut; beat adds nothing before that week ends
        assert len(days) >= 8, table
    assert maintain_partitions() == []


def test_status_history_of_a_period_reads_only_its_days() -> None:
    from apps.stations.models import StatusEvent

    cp = ChargePointFactory()
    partitions.ensure_partitions("stations_statusevent", "timestamp", days_ahead=2, now=NEW_YEAR)
    for day in range(3):
        StatusEvent.objects.create(
            charge_point=cp, connector_id=1, status="Charging", timestamp=NEW_YEAR + dt.timedelta(days=day, hours=3)
        )
    query = StatusEvent.objects.filter(
        charge_point=cp, timestamp__gte=NEW_YEAR + dt.timedelta(days=1), timestamp__lt=NEW_YEAR + dt.timedelta(days=2)
    )

    plan = query.explain()

    assert query.count() == 1
    assert "stations_statusevent_p20310102 " in plan, plan
    assert "stations_statusevent_p20310101 " not in plan, plan
    assert "stations_statusevent_legacy " not in plan, plan
