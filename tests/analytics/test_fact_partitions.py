"""KPI facts are partitioned by day of `at` (migration analytics 0004): a fact lands in the day it counts at (the
session's start, or its stop), a report over a period reads only its days (EXPLAIN shows the pruning), the
rollup still folds every new fact once, and retention drops whole days."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.analytics import selectors, services
from apps.analytics.models import Granularity, KpiBucket, SessionFact
from apps.core import partitions
from apps.core.tasks import maintain_partitions
from apps.sessions.models import SessionStatus
from tests.charging.factories import ChargingSessionFactory
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db
TABLE = "analytics_sessionfact"
NEW_YEAR = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def day(n: int) -> str:
    return f"{TABLE}_p203101{n:02d}"


def home(fact: SessionFact) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [fact.pk])
        return str(cursor.fetchone()[0])


def scanned(sql: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = raw if isinstance(raw, list) else json.loads(raw)
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


@pytest.fixture
def sessions() -> list[Any]:
    """Three sessions: Jan 1 08:00-09:00, Jan 2 23:30 - Jan 3 00:30 (across midnight), Jan 5 08:00-09:00; each with
    its started and ended facts recorded as the subscribers do."""
    partitions.ensure_partitions(TABLE, "at", days_ahead=6, now=NEW_YEAR)
    cp = ChargePointFactory()
    found = []
    for start in (
        NEW_YEAR + dt.timedelta(hours=8),
        NEW_YEAR + dt.timedelta(days=1, hours=23, minutes=30),
        NEW_YEAR + dt.timedelta(days=4, hours=8),
    ):
        session = ChargingSessionFactory(
            charge_point=cp,
            connector_id=1,
            started_at=start,
            stopped_at=start + dt.timedelta(hours=1),
            status=SessionStatus.COMPLETED,
            energy_wh=10_000,
            stop_reason="EVDisconnected",
        )
        for kind in SessionFact.Kind:
            fact = services.session_fact_record(session_id=session.pk, kind=kind)
            assert fact is not None  # the new fact, with what the webhook reports
            assert fact.pk is not None
        found.append(session)
    return found


def test_a_fact_lands_in_the_day_it_counts_at_and_is_recorded_once(sessions: list[Any]) -> None:
    across = sessions[1]
    started = SessionFact.objects.get(session_id=across.pk, kind="started")
    ended = SessionFact.objects.get(session_id=across.pk, kind="ended")

    again = services.session_fact_record(session_id=across.pk, kind="ended")

    assert (started.at, home(started)) == (across.started_at, day(2))
    assert (ended.at, home(ended)) == (across.stopped_at, day(3))
    assert again is None  # a repeat records nothing
    assert (ended.energy_wh, ended.duration_s, ended.successful) == (10_000, 3600, True)
    assert SessionFact.objects.filter(session_id=across.pk).count() == 2


def test_the_report_of_a_period_reads_only_its_days(sessions: list[Any]) -> None:
    scope = selectors.Scope(frozenset({sessions[0].tenant_id}))
    start, end = NEW_YEAR + dt.timedelta(days=2), NEW_YEAR + dt.timedelta(days=4)  # Jan 3 and 4

    with CaptureQueriesContext(connection) as captured:
        rows = selectors.vehicle_models(scope, start=start, end=end)

    reads = [q["sql"] for q in captured.captured_queries if f'FROM "{TABLE}"' in q["sql"]]
    assert [scanned(sql) for sql in reads] == [{day(3), day(4)}]
    assert [r["sessions"] for r in rows] == [1]  # the session that ended at 00:30 on Jan 3


def test_the_rollup_folds_every_fact_once_into_the_day_it_counts_at(sessions: list[Any]) -> None:
    services.rollup_run(now=NEW_YEAR + dt.timedelta(days=30))
    services.rollup_run(now=NEW_YEAR + dt.timedelta(days=30))

    days = KpiBucket.objects.filter(granularity=Granularity.DAY).order_by("bucket")
    got = [(b.bucket.day, b.sessions_started, b.sessions_ended) for b in days]
    assert got == [(1, 1, 1), (2, 1, 0), (3, 0, 1), (5, 1, 1)]


def test_retention_drops_whole_days_of_facts(
    sessions: list[Any], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PARTITION_RETENTION_DAYS = {TABLE: 30}
    # thirty days before Feb 2, 12:00 is Jan 3, 12:00: Jan 1 and 2 (and everything before) go
    monkeypatch.setattr("django.utils.timezone.now", lambda: NEW_YEAR + dt.timedelta(days=32, hours=12))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    changed = maintain_partitions()

    left = {p.name for p in partitions.partitions(TABLE)}
    assert {day(1), day(2), f"{TABLE}_legacy"} <= set(changed)
    assert {day(3), day(4), day(5)} <= left
    kept = sorted(SessionFact.objects.values_list("session_id", "kind"))
    assert kept == sorted([(sessions[1].pk, "ended"), (sessions[2].pk, "started"), (sessions[2].pk, "ended")])
