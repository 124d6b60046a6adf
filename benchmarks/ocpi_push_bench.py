"""OCPI push benchmark: time from a StatusNotification being recorded to the partner's locations Receiver having the
EVSE PATCH, for `--chargers` chargers each changing status once, next to the floor (one HTTP PATCH to the same local
server by plain `requests`).

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/ocpi_push_bench.py --chargers 1000
    .venv/bin/python scripts/stack.py down

It creates its own database `evp_bench_ocpi_push` (dropped at the end unless --keep), migrates it, registers one
partner (the partner simulator, apps/roaming/partner_sim.py, on a local port) for a tenant with `--chargers` online
chargers of one EVSE each. Path measured, all in this process: `stations.services.status_record` (what the OCPP
StatusNotification handler calls) -> commit -> outbox delivery (`EVENTS_DELIVERY=inline`) -> the roaming subscriber
(PushState bump) -> after commit the push task (`CELERY_TASK_ALWAYS_EAGER`: run at once) -> HTTP PATCH -> the
simulator's handler stored it. Not included: the OCPP WebSocket frame and the Celery queue hop (a Redis round trip
and the worker's pick-up; see benchmarks/outbox_bench.py for the outbox under real workers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "evp_bench_ocpi_push"


def bench_url(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(bench_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(what: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{what:<58} n={len(ms):>5}  p50 {percentile(ms, 50):7.2f} ms  p99 {percentile(ms, 99):7.2f} ms  "
        f"mean {statistics.fmean(ms):7.2f} ms",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("DATABASE_URL is not set: eval $(.venv/bin/python scripts/stack.py up | grep export)")
    url = bench_url(base, BENCH_DB)
    admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    admin_execute(base, f'CREATE DATABASE "{BENCH_DB}"')
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev",
            "DEBUG": "0",
            "EVENTS_DELIVERY": "inline",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    import logging

    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # one INFO line per eager task otherwise
    from django.conf import settings

    settings.CELERY_TASK_ALWAYS_EAGER = True
    from evplatform.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    try:
        run(args.chargers)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}"')


def run(chargers: int) -> None:
    import requests
    from django.core.management import call_command
    from django.db import connection

    from apps.roaming.models import PartnerStatus, RoamingPartner
    from apps.roaming.partner_sim import PartnerSimulator
    from apps.stations import services as station_services
    from apps.stations.models import ChargePoint, Evse, Location
    from apps.tenants.models import Tenant

    call_command("migrate", verbosity=0, interactive=False)
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    sim = PartnerSimulator(country_code="NL", party_id="SIM").start()
    sim.server_token, sim.server_token_is_a = "bench-token", False
    try:
        tenant = Tenant.objects.create(
            name="Bench OCPI", slug="bench-ocpi", ocpi_country_code="DE", ocpi_party_id="BNC"
        )
        location = Location.objects.create(
            tenant=tenant, name="Bench site", address="Road 1", city="Berlin", latitude=52.5, longitude=13.4
        )
        ChargePoint.objects.bulk_create(
            ChargePoint(tenant=tenant, location=location, identity=f"OPB-{n:05d}", online=True) for n in range(chargers)
        )
        cps = list(ChargePoint.objects.filter(tenant=tenant).order_by("pk"))
        Evse.objects.bulk_create(
            Evse(tenant=tenant, charge_point=cp, connector_id=1, evse_uid=f"DE*BNC*E{cp.pk}*1") for cp in cps
        )
        receiver = f"{sim.base_url}/ocpi/emsp/2.2.1/locations"
        RoamingPartner.objects.create(
            tenant=tenant,
            name="Sim",
            our_country_code="DE",
            our_party_id="BNC",
            country_code="NL",
            party_id="SIM",
            status=PartnerStatus.REGISTERED,
            enabled_modules=["locations"],
            endpoints=[{"identifier": "locations", "role": "RECEIVER", "url": receiver}],
            their_token="bench-token",
            their_token_kind="B",
        )
        for cp in cps[:20]:  # warm-up: connections, imports, plans
            station_services.status_record(charge_point_id=cp.pk, connector_id=1, status="Preparing")
        before = sum(1 for r in sim.received if r.method == "PATCH")

        pipeline: list[float] = []
        for cp in cps:
            started = time.perf_counter()
            station_services.status_record(charge_point_id=cp.pk, connector_id=1, status="Charging")
            pipeline.append(time.perf_counter() - started)  # the PATCH was answered before the commit returned
        arrived = sum(1 for r in sim.received if r.method == "PATCH") - before
        assert arrived == len(cps), f"{arrived} PATCHes arrived for {len(cps)} status changes"
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM roaming_pushstate WHERE version > pushed_version")
            assert cursor.fetchone()[0] == 0, "pushes left pending"

        headers = {**{"Authorization": "Token YmVuY2gtdG9rZW4="}, "Content-Type": "application/json"}
        floor: list[float] = []
        for cp in cps:
            started = time.perf_counter()
            response = requests.patch(  # a new connection each time, as our OCPI client makes them
                f"{receiver}/DE/BNC/{location.pk}/{cp.pk}",
                data=b'{"status":"CHARGING","last_updated":"2026-01-01T00:00:00Z"}',
                headers=headers,
                timeout=10,
            )
            floor.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        report("floor: one HTTP PATCH to the local receiver", floor)
        report("StatusNotification recorded -> partner has the EVSE PATCH", pipeline)
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
