"""A generated KPI history (sessions through the sessions services, status history through the stations
services) and the direct SQL the KPI figures are checked against."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from django.db import connection

from apps.analytics import services
from apps.analytics.models import Granularity
from apps.sessions import services as session_services
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, StatusEvent
from apps.tenants.models import Tenant
from tests.customers.factories import DriverFactory, TokenFactory, VehicleFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory

DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
REASONS = ["Local", "Remote", "EVDisconnected", "", "EmergencyStop", "PowerLoss", "Other"]
STATES = ["Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"]
STATES += ["Unavailable", "Faulted"]
Capture = Callable[..., AbstractContextManager[Any]]


def network(tenant: Tenant, rng: random.Random, chargers: int) -> list[ChargePoint]:
    points = []
    locations = [LocationFactory(tenant=tenant) for _ in range(2)]
    for i in range(chargers):
        cp = ChargePointFactory(tenant=tenant, location=locations[i % 2], identity=f"{tenant.slug}-{i}")
        for n in (1, 2):
            ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*K{tenant.pk}*E{i}*{n}"))
        points.append(cp)
    return points


def at(rng: random.Random, start: dt.datetime, hours: float) -> dt.datetime:
    return start + dt.timedelta(seconds=rng.randrange(int(hours * 3600)))


def make_history(
    tenant: Tenant, points: list[ChargePoint], rng: random.Random, sessions: int, start: dt.datetime, first: bool = True
) -> None:
    tags = [f"TAG{tenant.pk}{i:03d}" for i in range(6)]
    for i, tag in enumerate(
        tags[:4] if first else []
    ):  # two drivers with one car each, one with two cars, one without a token
        driver = DriverFactory(tenant=tenant)
        TokenFactory(tenant=tenant, uid=tag, driver=driver)
        VehicleFactory(tenant=tenant, driver=driver, make="Make", model=f"M{i % 3}")
        if i == 2:
            VehicleFactory(tenant=tenant, driver=driver, make="Make", model="Second")
    running: list[dict[str, Any]] = []
    for _ in range(sessions):
        cp = rng.choice(points)
        began = at(rng, start - dt.timedelta(hours=2), 28)
        start_args = {
            "charge_point_id": cp.pk,
            "connector_id": rng.choice([1, 2]),
            "id_tag": rng.choice(tags),
            "meter_start": 1000,
            "timestamp": began,
        }
        if rng.random() >= 0.85:  # some are still running: started last, as a running session is the newest of its
            running.append(start_args)  # connector (a later start there ends it) and holds its tag (ConcurrentTx)
            continue
        session, _ = session_services.session_start(**start_args)
        session_services.session_stop(
            charge_point_id=cp.pk,
            transaction_id=session.pk,
            meter_stop=1000 + rng.choice([0, 0, 1500, 7300, 22_000]),
            timestamp=began + dt.timedelta(seconds=rng.randrange(60, 5 * 3600)),
            reason=rng.choice(REASONS),
        )
    for start_args in sorted(running, key=lambda args: args["timestamp"]):
        session_services.session_start(**start_args)
    for cp in points:
        StatusEvent.objects.create(charge_point=cp, status="Online", timestamp=start - dt.timedelta(hours=3))
        for n in (1, 2):
            if rng.random() < 0.8:  # one connector of some chargers never reported before the window
                station_services.status_record(
                    charge_point_id=cp.pk, connector_id=n, status="Available", timestamp=start - dt.timedelta(hours=1)
                )
            for _ in range(rng.randrange(2, 8)):
                station_services.status_record(
                    charge_point_id=cp.pk,
                    connector_id=n,
                    status=rng.choice(STATES),
                    error_code="GroundFailure" if rng.random() < 0.3 else "NoError",
                    timestamp=at(rng, start - dt.timedelta(hours=1), 26),
                )
        for _ in range(rng.randrange(0, 3)):  # outages
            down = at(rng, start, 22)
            StatusEvent.objects.create(charge_point=cp, status="Offline", timestamp=down)
            StatusEvent.objects.create(
                charge_point=cp, status="Online", timestamp=down + dt.timedelta(seconds=rng.randrange(60, 7200))
            )
        station_services.status_record(charge_point_id=cp.pk, connector_id=0, status="Faulted", timestamp=start)


def kpi_history(capture: Capture) -> tuple[Tenant, list[ChargePoint]]:
    """Two tenants' networks and a day of sessions and status changes, facts recorded by the live path."""
    rng = random.Random(20261102)
    tenant = TenantFactory(slug="kpi", name="KPI tenant")
    other = TenantFactory(slug="kpi-other", name="Other tenant")
    with capture(execute=True):
        points = network(tenant, rng, 4)
        make_history(tenant, points, rng, 60, DAY)
        make_history(other, network(other, rng, 1), rng, 20, DAY)
    services.rollup_run(lag=dt.timedelta(0))
    return tenant, points


# --------------------------------------------------------------------------- the direct SQL

SQL_STARTED = """
SELECT date_trunc(%(g)s, started_at, 'UTC') AS b, count(*)
FROM charging_chargingsession WHERE tenant_id = %(t)s AND started_at >= %(s)s AND started_at < %(e)s GROUP BY 1
"""
SQL_ENDED = """
SELECT date_trunc(%(g)s, stopped_at, 'UTC') AS b, count(*),
       count(*) FILTER (WHERE status = 'completed' AND energy_wh > 0
                        AND stop_reason IN ('', 'Local', 'Remote', 'EVDisconnected')),
       sum(energy_wh), sum(extract(epoch FROM stopped_at - started_at))::bigint
FROM charging_chargingsession
WHERE tenant_id = %(t)s AND stopped_at >= %(s)s AND stopped_at < %(e)s GROUP BY 1
"""
SQL_STATE_TIMES = """
WITH conns AS (
    SELECT e.charge_point_id AS cp, e.connector_id AS n FROM stations_evse e WHERE e.tenant_id = %(t)s
), bounds AS (
    SELECT cp, n, %(s)s::timestamptz AS t FROM conns
    UNION
    SELECT c.cp, c.n, x.timestamp FROM conns c JOIN stations_statusevent x ON x.charge_point_id = c.cp
     AND (x.connector_id = c.n OR (x.connector_id = 0 AND x.status IN ('Online', 'Offline')))
     AND x.timestamp >= %(s)s AND x.timestamp < %(e)s
), segments AS (
    SELECT cp, n, t, coalesce(lead(t) OVER (PARTITION BY cp, n ORDER BY t), %(e)s::timestamptz) AS t_end FROM bounds
), states AS (
    SELECT s.cp, extract(epoch FROM s.t_end - s.t) AS secs,
       coalesce((SELECT x.status FROM stations_statusevent x
                 WHERE x.charge_point_id = s.cp AND x.connector_id = s.n AND x.timestamp <= s.t
                 ORDER BY x.timestamp DESC, x.id DESC LIMIT 1), '') AS state,
       coalesce((SELECT x.status FROM stations_statusevent x
                 WHERE x.charge_point_id = s.cp AND x.connector_id = 0 AND x.status IN ('Online', 'Offline')
                   AND x.timestamp <= s.t ORDER BY x.timestamp DESC, x.id DESC LIMIT 1), '') AS conn
    FROM segments s
)
SELECT cp,
    coalesce(sum(secs) FILTER (WHERE conn = 'Online' AND state = ANY(%(up)s)), 0),
    coalesce(sum(secs) FILTER (WHERE state NOT IN ('', 'Unknown', 'Unavailable')
                                AND NOT (conn = 'Online' AND state = ANY(%(up)s))), 0),
    coalesce(sum(secs) FILTER (WHERE conn = 'Online' AND state = ANY(%(occupied)s)), 0),
    coalesce(sum(secs) FILTER (WHERE state NOT IN ('', 'Unknown')), 0)
FROM states GROUP BY cp ORDER BY cp
"""
SQL_VEHICLES = """
WITH sole AS (
    SELECT v.driver_id, min(v.make || ' ' || v.model) AS name FROM customers_vehicle v
    GROUP BY v.driver_id HAVING count(*) = 1
)
SELECT coalesce(sv.make || ' ' || sv.model, sole.name, 'unknown') AS model, s.charge_point_id, count(*),
       count(*) FILTER (WHERE NOT (s.status = 'completed' AND s.energy_wh > 0
                                   AND s.stop_reason IN ('', 'Local', 'Remote', 'EVDisconnected')))
FROM charging_chargingsession s
LEFT JOIN customers_vehicle sv ON sv.id = s.vehicle_id
LEFT JOIN customers_token tok ON tok.tenant_id = s.tenant_id AND upper(tok.uid) = upper(s.id_tag)
LEFT JOIN sole ON sole.driver_id = coalesce(s.driver_id, tok.driver_id)
WHERE s.tenant_id = %(t)s AND s.stopped_at IS NOT NULL AND s.stopped_at >= %(s)s AND s.stopped_at < %(e)s
GROUP BY 1, 2 ORDER BY 1, 2
"""


def sql(query: str, **params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def expected_series(tenant: Tenant, granularity: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    params = {"g": granularity, "t": tenant.pk, "s": start, "e": end}
    rows: dict[dt.datetime, dict[str, Any]] = {}
    empty = {"sessions_started": 0, "sessions_ended": 0, "sessions_successful": 0, "energy_wh": 0, "duration_s": 0}
    for bucket, count in sql(SQL_STARTED, **params):
        rows.setdefault(bucket, {"bucket": bucket, **empty})["sessions_started"] = count
    for bucket, count, ok, energy, duration in sql(SQL_ENDED, **params):
        row = rows.setdefault(bucket, {"bucket": bucket, **empty})
        row |= {"sessions_ended": count, "sessions_successful": ok, "energy_wh": int(energy), "duration_s": duration}
    return [rows[b] for b in sorted(rows)]


WINDOWS = [
    (Granularity.MINUTE, DAY + dt.timedelta(hours=6), DAY + dt.timedelta(hours=14)),
    (Granularity.HOUR, DAY - dt.timedelta(hours=3), DAY + dt.timedelta(hours=27)),
    (Granularity.DAY, DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=2)),
]
