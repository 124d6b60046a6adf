"""Outbox benchmark: what publishing costs the publisher, and how many events/s real Celery workers deliver,
each next to its floor (a bare queue table driven by plain psycopg).

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/outbox_bench.py --events 20000 --subjects 1000 --workers 2

It creates its own database `evp_bench_outbox` on the server of DATABASE_URL (dropped at the end unless
--keep), migrates it, and uses its own Celery queue and kick key on REDIS_URL. Phases:

1. write: what publishing costs the publisher, one process. Inside an open transaction (the usual case: the
   charger's handler is one): `events.publish` (one INSERT of one row per subscriber; one subscriber here)
   next to a bare INSERT of the same JSON into a bare queue table (`id bigserial, payload jsonb`) by plain
   psycopg; the after-commit kick alone (one Redis SET NX when a task is already on its way, the common case);
   and each event in its own transaction (INSERT, commit, kick) next to a bare autocommit INSERT. The events
   are `--events` ConnectorStatusChanged over `--subjects` charge points.
2. floor, consume: `--workers` processes each loop BEGIN; SELECT the oldest 50 rows FOR UPDATE SKIP LOCKED;
   DELETE them; COMMIT, until the table is empty: a queue without order per subject or subscribers.
3. deliver, no-op subscriber: `--workers` real Celery workers (`celery worker --pool solo`, one process each,
   as the Procfile's worker runs them) are started and pinged; then one kick; the clock runs until no row is
   pending. This is the outbox machinery itself (claim heads in order per subject, deliver, mark delivered,
   commit; 50 rows per round).
4. deliver, analytics' real subscriber of ConnectorStatusChanged (alert rule check, charger identity, live
   push to the dashboard group, webhook subscriptions) on `--subjects` registered charge points.

Events/s = events / seconds from the kick to the last delivery. Rows are about 350 bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "evp_bench_outbox"
FLOOR_TABLE = "bench_floor_queue"
FLOOR_CLAIM = 50


def noop(event: Any) -> None:
    """The no-op subscriber (phase 4)."""


def bench_url(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(bench_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# --------------------------------------------------------------------------- floors (plain psycopg)


def floor_write(url: str, count: int, *, one_transaction: bool) -> float:
    """Bare INSERTs of an event-sized JSON row: each its own (autocommit) transaction, or all in one."""
    import psycopg

    payload = json.dumps({"tenant_id": 1, "charge_point_id": 1, "connector_id": 1, "status": "Charging",
                          "error_code": "", "previous_status": "Preparing", "at": "2026-01-01T00:00:00+00:00",
                          "event_id": str(uuid.uuid4())})  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")  # type: ignore[arg-type]
        conn.execute(f"CREATE TABLE {FLOOR_TABLE} (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")  # type: ignore[arg-type]
        started = time.perf_counter()
        with conn.transaction() if one_transaction else contextlib.nullcontext():
            for _ in range(count):
                conn.execute(f"INSERT INTO {FLOOR_TABLE} (payload) VALUES (%s::jsonb)", (payload,))  # type: ignore[arg-type]
        return time.perf_counter() - started


def floor_consume_child(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(
                    f"SELECT id, payload FROM {FLOOR_TABLE} ORDER BY id LIMIT {FLOOR_CLAIM} FOR UPDATE SKIP LOCKED"  # type: ignore[arg-type]
                ).fetchall()
                if rows:
                    conn.execute(f"DELETE FROM {FLOOR_TABLE} WHERE id = ANY(%s)", ([r[0] for r in rows],))  # type: ignore[arg-type]
            if not rows:
                return


def floor_consume(url: str, workers: int) -> float:
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "floor-consume", url]) for _ in range(workers)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("floor consumer failed")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the platform


def setup_django(url: str, queue: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev",
            "DEBUG": "0",
            "EVENTS_DELIVERY": "celery",
            "EVENTS_OUTBOX_QUEUE": queue,
            "EVENTS_OUTBOX_KICK_KEY": f"{queue}:kick",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def charge_points(count: int) -> list[int]:
    from apps.stations.models import ChargePoint
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.filter(slug="bench-outbox").first() or Tenant.objects.create(
        name="Bench outbox", slug="bench-outbox"
    )
    ChargePoint.objects.bulk_create(
        [ChargePoint(tenant=tenant, identity=f"OBENCH-{n:05d}") for n in range(1, count + 1)], ignore_conflicts=True
    )
    return list(ChargePoint.objects.filter(identity__startswith="OBENCH-").order_by("pk").values_list("pk", flat=True))


def publish_all(count: int, cps: list[int], tenant_id: int, *, one_transaction: bool = False) -> float:
    """Publish `count` events: each in its own transaction (then kicked after its commit, as a charger's
    message is), or all in one open transaction, timed before its commit (the INSERTs alone: what publishing
    adds to the publisher's transaction)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.core import events

    now = timezone.now()

    def publish(n: int) -> None:
        events.publish(
            events.ConnectorStatusChanged(
                tenant_id=tenant_id, charge_point_id=cps[n % len(cps)], connector_id=1,
                status="Charging" if n % 2 else "Available", error_code="", previous_status="Preparing", at=now,
            )
        )  # fmt: skip

    started = time.perf_counter()
    if one_transaction:
        with transaction.atomic():
            for n in range(count):
                publish(n)
            return time.perf_counter() - started
    for n in range(count):
        with transaction.atomic():
            publish(n)
    return time.perf_counter() - started


def kick_loop(count: int) -> float:
    """The after-commit kick when a task is already on its way (the common case): one Redis SET NX."""
    from apps.core import outbox

    started = time.perf_counter()
    for _ in range(count):
        outbox.kick()
    return time.perf_counter() - started


def reset_queue(queue: str) -> None:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(queue, f"{queue}:kick")
    client.close()


def pending() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM core_outboxdelivery WHERE state = 0")
        return int(cursor.fetchone()[0])


def deliver_with_workers(workers: int, queue: str) -> tuple[float, int]:
    """Start the workers, wait until they answer a ping, kick once, time until nothing is pending."""
    from apps.core import outbox
    from evplatform.celery import app

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])}
    names = [f"bench{n}-{queue}@outbox-bench" for n in range(workers)]
    command = [sys.executable, "-m", "celery", "-A", "evplatform", "worker", "-Q", queue, "--pool", "solo",
               "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    procs = [subprocess.Popen([*command, "-n", name], cwd=ROOT, env=env) for name in names]
    try:
        answered: set[str] = set()
        deadline = time.monotonic() + 120
        while answered != set(names):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit("workers did not start")
            answered |= {n for reply in app.control.ping(destination=names, timeout=1.0) for n in reply}
        before = pending()
        started = time.perf_counter()
        outbox.enqueue()
        while pending():
            time.sleep(0.05)
        return time.perf_counter() - started, before
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--subjects", type=int, default=1000, help="charge points the events are spread over")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("DATABASE_URL is not set: eval $(.venv/bin/python scripts/stack.py up | grep export)")
    url = bench_url(base, BENCH_DB)
    admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    admin_execute(base, f'CREATE DATABASE "{BENCH_DB}"')
    queue = f"bench-events-{uuid.uuid4().hex[:8]}"
    rows: list[tuple[str, float, float]] = []  # (what, events/s, us per event)
    try:
        print(f"load average at start: {_load()}", flush=True)
        setup_django(url, queue)
        from django.core.management import call_command

        from apps.core import events

        call_command("migrate", verbosity=0, interactive=False)
        cps = charge_points(args.subjects)
        from apps.stations.models import ChargePoint

        tenant_id = ChargePoint.objects.get(pk=cps[0]).tenant_id

        seconds = floor_write(url, args.events, one_transaction=True)
        rows.append(("floor: INSERT in an open transaction", args.events / seconds, seconds / args.events))
        seconds = publish_all(args.events, cps, tenant_id, one_transaction=True)
        rows.append(("events.publish in an open transaction", args.events / seconds, seconds / args.events))
        seconds = kick_loop(args.events)
        rows.append(("the after-commit kick (a task already queued)", args.events / seconds, seconds / args.events))
        seconds = floor_write(url, args.events, one_transaction=False)
        rows.append(("floor: INSERT, one autocommit statement per row", args.events / seconds, seconds / args.events))
        with __import__("django.db").db.connection.cursor() as cursor:
            cursor.execute("DELETE FROM core_outboxdelivery")
        seconds = publish_all(args.events, cps, tenant_id)
        rows.append(("events.publish, own transaction + kick", args.events / seconds, seconds / args.events))
        print(f"written; load average: {_load()}", flush=True)

        seconds = floor_consume(url, args.workers)
        rows.append((f"floor: SKIP LOCKED + DELETE, {args.workers} processes", args.events / seconds,
                     seconds / args.events))  # fmt: skip
        events.SUBSCRIBERS[events.ConnectorStatusChanged] = ["outbox_bench.noop"]
        with __import__("django.db").db.connection.cursor() as cursor:
            cursor.execute("UPDATE core_outboxdelivery SET subscriber = 'outbox_bench.noop'")
        reset_queue(queue)
        seconds, count = deliver_with_workers(args.workers, queue)
        rows.append((f"outbox, no-op subscriber, {args.workers} workers", count / seconds, seconds / count))
        print(f"no-op delivered; load average: {_load()}", flush=True)

        events.SUBSCRIBERS[events.ConnectorStatusChanged] = ["apps.analytics.subscribers.connector_status_changed"]
        publish_all(args.events, cps, tenant_id)
        reset_queue(queue)
        seconds, count = deliver_with_workers(args.workers, queue)
        rows.append((f"outbox, analytics subscriber, {args.workers} workers", count / seconds, seconds / count))
        print(f"load average at the end: {_load()}", flush=True)
    finally:
        reset_queue(queue)
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')

    print(f"\n{args.events} events over {args.subjects} subjects")
    print(f"| {'what':<52} | {'events/s':>9} | {'per event':>10} |")
    print(f"| {'-' * 52} | {'-' * 9}: | {'-' * 10}: |")
    for what, rate, per in rows:
        print(f"| {what:<52} | {rate:>9,.0f} | {per * 1e6:>7.0f} us |")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "floor-consume":
        floor_consume_child(sys.argv[2])
    else:
        main()
