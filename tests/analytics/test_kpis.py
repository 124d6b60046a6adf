"""KPI figures for a generated history (sessions through the sessions services, status history through the
stations services) equal a direct SQL computation over the raw sessions and status events, exactly; and the
rollups are incremental (each run folds only the facts after its watermark)."""

from __future__ import annotations

import datetime as dt
import random

from apps.analytics import selectors, services
from apps.analytics.models import KpiBucket, Rollup
from apps.stations.models import ChargePoint
from apps.tenants.models import Tenant
from tests.analytics.kpi_history import (
    DAY,
    SQL_STATE_TIMES,
    SQL_VEHICLES,
    WINDOWS,
    Capture,
    expected_series,
    make_history,
    sql,
)


def test_series_equal_sql_over_raw_sessions(history: tuple[Tenant, list[ChargePoint]]) -> None:
    tenant, _ = history
    scope = selectors.Scope(frozenset({tenant.pk}))

    for granularity, start, end in WINDOWS:
        got = selectors.series(scope, granularity=granularity, start=start, end=end)

        expected = expected_series(tenant, granularity, start, end)
        assert len(expected) >= 3, granularity
        assert sum(r["sessions_ended"] for r in expected) > 0
        assert [dict(r) for r in got] == expected, granularity


def test_period_figures_equal_sql_over_sessions_and_status_history(
    history: tuple[Tenant, list[ChargePoint]],
) -> None:
    tenant, points = history
    start, end = DAY, DAY + dt.timedelta(days=1)

    got = selectors.period_kpis(selectors.Scope(frozenset({tenant.pk})), start=start, end=end)

    (started,) = sql(
        "SELECT count(*) FROM charging_chargingsession WHERE tenant_id = %(t)s AND started_at >= %(s)s "
        "AND started_at < %(e)s",
        t=tenant.pk,
        s=start,
        e=end,
    )[0]
    ended = sum(r["sessions_ended"] for r in expected_series(tenant, "day", start, end))
    ok = sum(r["sessions_successful"] for r in expected_series(tenant, "day", start, end))
    energy = sum(r["energy_wh"] for r in expected_series(tenant, "day", start, end))
    duration = sum(r["duration_s"] for r in expected_series(tenant, "day", start, end))
    assert (got["sessions_started"], got["sessions_ended"], got["sessions_successful"]) == (started, ended, ok)
    assert got["success_rate"] == round(ok / started, 4)
    assert got["energy_wh"] == energy
    assert got["avg_session_duration_s"] == round(duration / ended, 1)
    assert got["avg_session_energy_wh"] == round(energy / ended, 1)

    times = sql(
        SQL_STATE_TIMES,
        t=tenant.pk,
        s=start,
        e=end,
        up=sorted(selectors.UP),
        occupied=sorted(selectors.OCCUPIED),
    )
    assert [cp for cp, *_ in times] == sorted(cp.pk for cp in points)
    by_cp = {row["charge_point_id"]: row for row in got["chargers"]}
    for cp, up, down, occupied, known in times:
        row = by_cp[cp]
        assert (row["up_s"], row["down_s"], row["occupied_s"]) == (float(up), float(down), float(occupied))
        assert row["availability"] == (round(float(up) / float(up + down), 4) if up + down else None)
        assert row["utilisation"] == (round(float(occupied) / float(known), 4) if known else None)
    up_all = sum(float(r[1]) for r in times)
    down_all = sum(float(r[2]) for r in times)
    assert got["availability"] == round(up_all / (up_all + down_all), 4)
    assert 0 < got["availability"] < 1
    assert 0 < got["utilisation"] < 1


def test_vehicle_models_with_failure_rate_equal_sql(history: tuple[Tenant, list[ChargePoint]]) -> None:
    tenant, _ = history
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=2)

    got = selectors.vehicle_models(selectors.Scope(frozenset({tenant.pk})), start=start, end=end)

    expected = [
        {
            "vehicle_model": model,
            "charge_point_id": cp,
            "sessions": n,
            "failed": failed,
            "failure_rate": round(failed / n, 4),
        }
        for model, cp, n, failed in sql(SQL_VEHICLES, t=tenant.pk, s=start, e=end)
    ]
    assert got == expected
    assert {r["vehicle_model"] for r in got} == {"Make M0", "Make M1", "unknown"}


def test_live_figures(history: tuple[Tenant, list[ChargePoint]]) -> None:
    tenant, points = history
    now = DAY + dt.timedelta(hours=23)

    got = selectors.live_kpis(selectors.Scope(frozenset({tenant.pk})), now=now)

    active = sql(
        "SELECT count(*), coalesce(sum(greatest(last_meter_wh - meter_start_wh, 0)), 0) FROM charging_chargingsession"
        " WHERE tenant_id = %(t)s AND status IN ('pending', 'active', 'suspended', 'finishing') AND stopped_at IS NULL",
        t=tenant.pk,
    )[0]
    today = sql(
        "SELECT coalesce(sum(energy_wh), 0) FROM charging_chargingsession WHERE tenant_id = %(t)s"
        " AND stopped_at >= %(s)s AND stopped_at < %(e)s",
        t=tenant.pk,
        s=DAY,
        e=DAY + dt.timedelta(days=1),
    )[0][0]
    faulted = sql(
        "SELECT e.charge_point_id, e.connector_id, e.error_code FROM stations_evse e WHERE e.tenant_id = %(t)s"
        " AND e.status = 'Faulted' ORDER BY e.charge_point_id, e.connector_id",
        t=tenant.pk,
    )
    assert got["active_sessions"] == active[0] > 0
    assert got["energy_today_wh"] == today + active[1]
    assert got["chargers"] == len(points)
    assert [(f["charge_point_id"], f["connector_id"], f["error_code"]) for f in got["faulted_connectors"]] == faulted


def test_rollups_are_incremental_behind_a_watermark(
    history: tuple[Tenant, list[ChargePoint]], django_capture_on_commit_callbacks: Capture
) -> None:
    tenant, points = history
    marks = dict(Rollup.objects.values_list("name", "last_fact_id"))
    assert services.rollup_run(lag=dt.timedelta(0))[1].buckets == 0  # nothing new: nothing folded
    before = KpiBucket.objects.filter(granularity="hour").count()

    with django_capture_on_commit_callbacks(execute=True):
        make_history(tenant, points, random.Random(7), 30, DAY + dt.timedelta(days=1), first=False)
    results = services.rollup_run(lag=dt.timedelta(0))

    assert [(r.granularity, r.after) for r in results] == [
        ("minute", marks["sessions:minute"]),
        ("hour", marks["sessions:hour"]),
        ("day", marks["sessions:day"]),
    ]
    assert all(r.upto > r.after for r in results)
    assert KpiBucket.objects.filter(granularity="hour").count() > before
    start, end = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=3)
    got = selectors.series(selectors.Scope(frozenset({tenant.pk})), granularity="hour", start=start, end=end)
    assert [dict(r) for r in got] == expected_series(tenant, "hour", start, end)
