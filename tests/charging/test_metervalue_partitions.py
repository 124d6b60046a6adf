"""Meter values are partitioned by day of their sample (migration charging 0013, apps/core/partitions.py): a
session's meter values are read, by the queries the code really issues (the session page's chart, pricing and
the CDR, the power alert), from the days its samples are in only (EXPLAIN shows the pruning); retention drops
whole days."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.analytics.rules import latest_power_w
from apps.core import partitions
from apps.core.tasks import maintain_partitions
from apps.sessions import completion, console
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, MeterValue
from apps.stations import services as station_services
from tests.customers.factories import TokenFactory
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db
TABLE = "charging_metervalue"
NEW_YEAR = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def day(n: int) -> str:
    """The partition of January n, 2031."""
    return f"{TABLE}_p203101{n:02d}"


def sample(at: dt.datetime, wh: int, w: int = 11_000) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": at.isoformat(),
            "sampled_value": [
                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": str(w), "measurand": "Power.Active.Import", "unit": "W"},
            ],
        }
    ]


@pytest.fixture
def charger() -> Any:
    tenant = TenantFactory()
    cp, _ = station_services.charge_point_register(
        tenant=tenant, identity="PART-1", location=LocationFactory(tenant=tenant)
    )
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1, evse_uid="DE*PRT*E1*1"))
    TokenFactory(tenant=tenant, uid="PARTCARD")
    partitions.ensure_partitions(TABLE, "timestamp", days_ahead=6, now=NEW_YEAR)
    return cp


def charge(cp: Any, start: dt.datetime, minutes: list[int], stop_after: int | None) -> ChargingSession:
    """A session through the charger's path: StartTransaction, MeterValues at `minutes`, StopTransaction."""
    session, _ = session_services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="PARTCARD", meter_start=1_000, timestamp=start
    )
    assert session is not None
    for n, minute in enumerate(minutes, start=1):
        session_services.session_add_meter_values(
            charge_point_id=cp.pk,
            connector_id=1,
            transaction_id=session.pk,
            meter_value=sample(start + dt.timedelta(minutes=minute), 1_000 + 500 * n),
        )
    if stop_after is not None:
        session_services.session_stop(
            charge_point_id=cp.pk,
            transaction_id=session.pk,
            meter_stop=1_000 + 500 * len(minutes),
            timestamp=start + dt.timedelta(minutes=stop_after),
            reason="EVDisconnected",
        )
    return ChargingSession.objects.get(pk=session.pk)


def scanned(sql: str) -> set[str]:
    """The tables and partitions PostgreSQL's plan of `sql` reads (EXPLAIN (FORMAT JSON))."""
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


def meter_value_reads(call: Any) -> list[set[str]]:
    """What each meter-value query that `call()` issues would scan."""
    with CaptureQueriesContext(connection) as captured:
        call()
    reads = [q["sql"] for q in captured.captured_queries if f'FROM "{TABLE}"' in q["sql"]]
    assert reads, "no meter-value query was issued"
    return [scanned(sql) for sql in reads]


def test_the_migration_left_a_partitioned_table_with_its_unique_sample_key() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [TABLE])
        assert cursor.fetchone()[0] == "p"
        cursor.execute(
            "SELECT contype FROM pg_constraint WHERE conrelid = %s::regclass AND conname = 'metervalue_unique_sample'",
            [TABLE],
        )
        assert cursor.fetchone()[0] == "u"
    found = partitions.partitions(TABLE)
    assert (found[0].name, found[0].start) == (f"{TABLE}_legacy", None)
    assert found[-1].default


def test_a_session_across_midnight_is_read_from_its_two_days_only(charger: Any) -> None:
    # given: a session on Jan 1, one from 23:30 on Jan 3 to 00:35 on Jan 4, one on Jan 6
    charge(charger, NEW_YEAR + dt.timedelta(hours=8), [10, 20], stop_after=30)
    session = charge(charger, NEW_YEAR + dt.timedelta(days=2, hours=23, minutes=30), [10, 20, 40, 60], stop_after=65)
    charge(charger, NEW_YEAR + dt.timedelta(days=5, hours=8), [10], stop_after=20)
    assert (session.samples_from, session.samples_until) == (
        NEW_YEAR + dt.timedelta(days=2, hours=23, minutes=40),
        NEW_YEAR + dt.timedelta(days=3, minutes=30),
    )
    stop = session.stopped_at
    assert stop is not None

    # when: the session page's chart, pricing (the CDR's path) and the power alert read its meter values
    chart = meter_value_reads(lambda: console.meter_series(session))
    priced = meter_value_reads(lambda: completion.energy_samples(session, until=stop))
    alert = meter_value_reads(
        lambda: latest_power_w(session.pk, samples_from=session.samples_from, samples_until=session.samples_until)
    )

    # then: each reads the 3rd and the 4th only, and gets all of the session's samples
    assert chart == priced == alert == [{day(3), day(4)}]
    assert console.meter_series(session)["energy_kwh"] == [0.5, 1.0, 1.5, 2.0]
    registers = [s.energy_wh for s in completion.energy_samples(session, until=stop)]
    assert registers == [1_000, 1_500, 2_000, 2_500, 3_000, 3_000]
    # and without the span the same read would probe every day (what the bounds save)
    unbounded = scanned(str(MeterValue.objects.filter(session=session).query))
    assert {day(1), day(3), day(4), day(6), f"{TABLE}_legacy"} <= unbounded


def test_late_and_resent_samples_widen_the_span_and_are_stored_once(charger: Any) -> None:
    session = charge(charger, NEW_YEAR + dt.timedelta(hours=22), [10, 20], stop_after=30)
    late = NEW_YEAR + dt.timedelta(days=1, hours=2)  # after the stop, the next day: stored as late

    for _ in range(2):  # the charger resends the frame
        session_services.session_add_meter_values(
            charge_point_id=charger.pk, connector_id=1, transaction_id=session.pk, meter_value=sample(late, 2_100)
        )

    session.refresh_from_db()
    assert session.samples_until == late
    assert MeterValue.objects.filter(session=session, timestamp=late).count() == 2  # energy and power, once each
    reads = meter_value_reads(lambda: list(completion.energy_samples(session)))
    assert reads == [{day(1), day(2)}]
    assert [s.timestamp for s in completion.energy_samples(session)][-2] == late


def test_retention_drops_whole_days_of_meter_values(
    charger: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [charge(charger, NEW_YEAR + dt.timedelta(days=n, hours=10), [10], stop_after=20) for n in range(4)]
    settings.PARTITION_RETENTION_DAYS = {TABLE: 30}
    # thirty days before Feb 2, 12:00 is Jan 3, 12:00: the 1st and 2nd (and everything before) are wholly older
    monkeypatch.setattr("django.utils.timezone.now", lambda: NEW_YEAR + dt.timedelta(days=32, hours=12))
    with connection.cursor() as cursor:  # this test's inserts' deferred FK checks, as their commit would run them
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    changed = maintain_partitions()

    left = {p.name for p in partitions.partitions(TABLE)}
    assert {day(1), day(2), f"{TABLE}_legacy"} <= set(changed)
    assert not {day(1), day(2), f"{TABLE}_legacy"} & left
    assert {day(3), day(4), day(5)} <= left
    kept = set(MeterValue.objects.filter(session__in=sessions).values_list("session_id", flat=True))
    assert kept == {sessions[2].pk, sessions[3].pk}
    assert f"{TABLE}_p20310209" in left  # and beat made the week ahead of "now"


def test_without_retention_nothing_is_dropped(charger: Any, settings: Any) -> None:
    charge(charger, NEW_YEAR + dt.timedelta(hours=10), [10], stop_after=20)
    assert settings.PARTITION_RETENTION_DAYS[TABLE] == 0  # the default: meter values are the evidence under CDRs

    maintain_partitions()

    assert day(1) in {p.name for p in partitions.partitions(TABLE)}
    assert MeterValue.objects.filter(timestamp__gte=NEW_YEAR).count() == 2


def test_a_session_older_than_the_partitioning_reads_all_its_samples(charger: Any) -> None:
    # given: a session running when the migration ran (it gave every existing session the span 1970..9999) with
    # samples from before the migration (no span was kept then) on Jan 1 and 2
    session = charge(charger, NEW_YEAR + dt.timedelta(hours=20), [], stop_after=None)
    old = [NEW_YEAR + dt.timedelta(hours=21), NEW_YEAR + dt.timedelta(days=1, hours=1)]
    for n, at in enumerate(old):
        MeterValue.objects.create(
            session=session, charge_point=charger, connector_id=1, timestamp=at, value=1_500 + 500 * n, unit="Wh"
        )
    ancient = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    end_of_time = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
    ChargingSession.objects.filter(pk=session.pk).update(samples_from=ancient, samples_until=end_of_time)

    # when: a new sample comes after the migration
    session_services.session_add_meter_values(
        charge_point_id=charger.pk,
        connector_id=1,
        transaction_id=session.pk,
        meter_value=sample(NEW_YEAR + dt.timedelta(days=1, hours=2), 2_500),
    )

    # then: its span stays "everything", and its reads find the old samples with the new one
    session.refresh_from_db()
    assert (session.samples_from, session.samples_until) == (ancient, end_of_time)
    registers = [s.energy_wh for s in completion.energy_samples(session)]
    assert registers == [1_000, 1_500, 2_000, 2_500]


def test_meter_values_read_only_what_they_use_of_the_charger_and_the_session(charger: Any) -> None:
    """The hot path of a charging fleet (a MeterValues per charger and minute): no whole session row, no tenant,
    and no deferred field loaded on first use (one more statement each)."""
    start = NEW_YEAR + dt.timedelta(hours=8)
    session = charge(charger, start, [1], stop_after=None)
    at = start + dt.timedelta(minutes=2)

    with CaptureQueriesContext(connection) as queries:
        session_services.session_add_meter_values(
            charge_point_id=charger.pk, connector_id=1, transaction_id=session.pk, meter_value=sample(at, 2_500, 7_000)
        )

    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert not any("tenants_tenant" in sql for sql in reads)
    session_read = next(sql for sql in reads if "FROM charging_chargingsession" in sql)
    selected = session_read.split(" FROM ")[0].removeprefix("SELECT ").split(", ")
    assert len(selected) == len(session_services._METER_SESSION_FIELDS)
    assert len(reads) == 2  # the charger's tenant id, the locked session: nothing loaded afterwards
    session.refresh_from_db()
    assert (session.last_meter_wh, session.last_power_w, session.max_power_w) == (2_500, 7_000, 11_000)
    assert (session.last_meter_at, session.samples_until) == (at, at)
    assert MeterValue.objects.filter(session=session, timestamp=at).count() == 2
