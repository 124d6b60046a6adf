"""Facts backfilled from stored sessions equal the facts the live (event) path recorded for the same
sessions, field by field; the backfill is idempotent and stays inside one tenant."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.analytics import selectors, services
from apps.analytics.models import KpiBucket, Rollup, SessionFact
from apps.stations.models import ChargePoint
from apps.tenants.models import Tenant
from tests.analytics.kpi_history import WINDOWS, expected_series

FIELDS = (
    "tenant_id",
    "kind",
    "session_id",
    "charge_point_id",
    "location_id",
    "connector_id",
    "started_at",
    "stopped_at",
    "energy_wh",
    "duration_s",
    "successful",
    "stop_reason",
    "vehicle_model",
)


def facts(**filters: Any) -> list[tuple[Any, ...]]:
    return list(SessionFact.objects.filter(**filters).order_by("session_id", "kind").values_list(*FIELDS))


def test_backfill_recreates_the_facts_of_the_live_path(history: tuple[Tenant, list[ChargePoint]]) -> None:
    tenant, _ = history
    live = facts(tenant=tenant)
    other_before = facts()
    assert len(live) > 100
    assert {f[1] for f in live} == {"started", "ended"}
    assert any(f[12] for f in live)  # some with a known car
    assert any(not f[12] for f in live)  # some without
    SessionFact.objects.filter(tenant=tenant).delete()

    added = services.session_facts_backfill(tenant_id=tenant.pk)

    assert added == len(live)
    assert facts(tenant=tenant) == live
    assert facts() == other_before  # the other tenant's facts were not touched
    assert services.session_facts_backfill(tenant_id=tenant.pk) == 0  # idempotent


def test_backfilled_history_reaches_the_kpis(history: tuple[Tenant, list[ChargePoint]]) -> None:
    tenant, _ = history
    # as if the sessions had been imported: no facts, no buckets, watermarks at the start
    SessionFact.objects.all().delete()
    KpiBucket.objects.all().delete()
    Rollup.objects.all().delete()

    services.session_facts_backfill(tenant_id=tenant.pk)
    services.rollup_run(lag=dt.timedelta(0))

    scope = selectors.Scope(frozenset({tenant.pk}))
    for granularity, start, end in WINDOWS:
        expected = expected_series(tenant, granularity, start, end)
        assert sum(r["sessions_ended"] for r in expected) > 0
        got = selectors.series(scope, granularity=granularity, start=start, end=end)
        assert [dict(r) for r in got] == expected, granularity


def test_command_backfills_the_named_tenant_and_refuses_an_unknown_one(
    history: tuple[Tenant, list[ChargePoint]],
) -> None:
    tenant, _ = history
    SessionFact.objects.all().delete()
    out = io.StringIO()

    call_command("analytics_backfill", "--tenant", tenant.slug, stdout=out)

    assert SessionFact.objects.exclude(tenant=tenant).count() == 0
    assert f"{tenant.slug}: {SessionFact.objects.filter(tenant=tenant).count()} facts added" in out.getvalue()
    with pytest.raises(CommandError, match="unknown tenant: nope"):
        call_command("analytics_backfill", "--tenant", "nope")
