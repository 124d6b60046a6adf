"""Session export benchmark: rows/s, wall time and peak RSS per format, next to the COPY floor and openpyxl.

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/export_bench.py --sizes 1000000            # while others work
    .venv/bin/python benchmarks/export_bench.py --sizes 1000000 10000000   # the full run

It creates its own database `evp_bench_export` on the server of DATABASE_URL (dropped at the end unless
--keep), migrates it, generates realistic sessions in SQL (generate_series over real locations, charge
points, EVSEs, drivers, business customers and tokens), and runs each export in a child process through
the same service the Celery task calls (`export_job_run`, so progress updates are included), reading each
child's own peak RSS. "COPY floor" drains `COPY (the CSV export's SELECT) TO STDOUT (FORMAT csv)` without
writing anything; "openpyxl" streams the same columns through a server-side cursor into openpyxl's
write_only workbook (only on the first --openpyxl-rows rows: it is ~10x slower).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "evp_bench_export"
MAIN_TENANT_SLUG = "bench-main"


def bench_url(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


def child_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    env["DJANGO_SETTINGS_MODULE"] = "evplatform.settings.dev"
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_child(url: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], env=child_env(url), cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- child side


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_seed_dimensions() -> dict[str, Any]:
    """Tenants, locations, charge points, EVSEs, business customers, drivers, tokens (ORM bulk_create)."""
    _setup_django()
    from decimal import Decimal

    from apps.customers.models import BusinessCustomer, Driver, Token
    from apps.stations.models import ChargePoint, Evse, Location
    from apps.tenants.models import Tenant

    started = time.monotonic()
    main = Tenant.objects.create(name="Bench Charge", slug=MAIN_TENANT_SLUG, timezone="Europe/Berlin")
    Tenant.objects.create(name="Other Volt", slug="bench-other", timezone="Europe/Amsterdam")
    streets = ["Hauptstraße", "Bahnhofstraße", "Am Markt", 'Parkhaus "Zentrum"', "Müller & Söhne Weg", "Ring <Nord>"]
    cities = ["Berlin", "München", "Köln", "Hamburg", "Frankfurt am Main", "Düsseldorf"]
    locations = Location.objects.bulk_create(
        Location(
            tenant=main,
            name=f"{cities[i % 6]} {streets[i % 6].split()[0]} #{i}" + (", Ebene 2" if i % 7 == 0 else ""),
            address=f"{streets[i % 6]} {i % 120 + 1}",
            postal_code=f"{10000 + i * 37 % 89999:05d}",
            city=cities[i % 6],
            latitude=Decimal("52.5") + Decimal(i % 100) / 1000,
            longitude=Decimal("13.4") + Decimal(i % 100) / 1000,
        )
        for i in range(300)
    )
    cps = ChargePoint.objects.bulk_create(
        ChargePoint(tenant=main, location=locations[i % 300], identity=f"DE-BCH-{i:05d}", vendor="ABB", model="Terra")
        for i in range(1500)
    )
    Evse.objects.bulk_create(
        Evse(tenant=main, charge_point=cp, connector_id=c, evse_uid=f"DE*BCH*E{cp.pk:05d}*{c}")
        for cp in cps
        for c in (1, 2)
    )
    customers = BusinessCustomer.objects.bulk_create(
        BusinessCustomer(tenant=main, name=f"Fleet {i} GmbH") for i in range(100)
    )
    drivers = Driver.objects.bulk_create(
        (
            Driver(
                tenant=main,
                first_name=["Anna", "Jörg", "Zoë", "Li", "Mehmet"][i % 5],
                last_name=f"Müller-{i}",
                email=f"driver{i}@example.com",
                business_customer=customers[i % 100] if i % 5 == 0 else None,
            )
            for i in range(20_000)
        ),
        batch_size=5000,
    )
    Token.objects.bulk_create(
        (
            Token(
                tenant=main,
                uid=f"04A1{i:08X}",
                contract_id=f"DEBCHC{i:08d}",
                driver=drivers[i % 20_000],
                business_customer=customers[i % 100] if i % 4 == 0 else None,
            )
            for i in range(25_000)
        ),
        batch_size=5000,
    )
    return {"seconds": round(time.monotonic() - started, 1)}


SESSIONS_SQL = """
WITH dims AS (
    SELECT array_agg(id ORDER BY id) AS evs, array_agg(charge_point_id ORDER BY id) AS cps,
           array_agg(connector_id ORDER BY id) AS conns, count(*)::int AS n
    FROM stations_evse WHERE tenant_id = %(tenant)s
), toks AS (
    SELECT array_agg(uid ORDER BY id) AS uids, count(*)::int AS n FROM customers_token WHERE tenant_id = %(tenant)s
)
INSERT INTO charging_chargingsession (
    tenant_id, charge_point_id, evse_id, connector_id, id_tag, auth_status, reservation_id, status,
    started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh, last_meter_wh, last_meter_at,
    stop_reason, stop_id_tag, flags, created_at, updated_at)
SELECT %(tenant)s, dims.cps[k], dims.evs[k], dims.conns[k],
       CASE WHEN g %% 50 = 0 THEN 'ROAM' || g ELSE toks.uids[(1 + (g * 31) %% toks.n)::int] END,
       'Accepted', NULL,
       CASE WHEN g %% 5000 = 0 THEN 'active' ELSE 'completed' END,
       st, CASE WHEN g %% 5000 = 0 THEN NULL ELSE st + dur END,
       ms, CASE WHEN g %% 5000 = 0 THEN NULL ELSE ms + e END, CASE WHEN g %% 5000 = 0 THEN NULL ELSE e END,
       ms + e, st + dur,
       (ARRAY['Local', 'EVDisconnected', 'Remote', 'PowerLoss', ''])[(1 + g %% 5)::int], '',
       CASE WHEN g %% 997 = 0 THEN ARRAY['meter_backwards'] ELSE '{}'::varchar[] END,
       st, st + dur
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
CROSS JOIN dims CROSS JOIN toks
CROSS JOIN LATERAL (SELECT
    (1 + (g * 7919) %% dims.n)::int AS k,
    timestamptz '2023-01-01 00:00:00+00' + g * interval '3 seconds' AS st,
    make_interval(secs => 600 + (g * 2654435761) %% 14400) AS dur,
    (g * 40503) %% 60000 + 500 AS e,
    (g * 37) %% 100000000 AS ms) AS v
"""


def child_seed_sessions(first: int, last: int) -> dict[str, Any]:
    _setup_django()
    from django.db import connection

    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no FK triggers while loading
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute(SESSIONS_SQL, {"tenant": tenant.pk, "first": first, "last": last})
        cursor.execute("ANALYZE charging_chargingsession")
    return {"seconds": round(time.monotonic() - started, 1)}


def child_export(fmt: str, export_dir: str) -> dict[str, Any]:
    _setup_django()
    from django.conf import settings

    from apps.reports import services
    from apps.reports.models import ExportJob, ExportStatus
    from apps.tenants.models import Tenant

    settings.REPORTS_EXPORT_DIR = export_dir
    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    job = ExportJob.objects.create(tenant=tenant, format=fmt, personal_data=True, requested_via="bench")
    started = time.monotonic()
    done = services.export_job_run(job_id=job.pk)
    wall = time.monotonic() - started
    assert done is not None
    assert done.status == ExportStatus.DONE, done.error
    path = Path(export_dir) / done.file_name
    path.unlink()
    return {"rows": done.row_count, "wall": wall, "rss_mb": _peak_rss_mb(), "file_mb": (done.file_size or 0) / 2**20}


def child_floor() -> dict[str, Any]:
    _setup_django()
    from apps.reports import exporter, services
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    spec = exporter.ExportSpec(tenant_id=tenant.pk, timezone=tenant.timezone, personal_data=True)
    started = time.monotonic()
    rows = -1
    with (
        services.export_connection() as conn,
        exporter.snapshot(conn),
        conn.cursor().copy(exporter.csv_query(spec)) as copy,
    ):
        for _ in copy:
            rows += 1
    wall = time.monotonic() - started
    return {"rows": rows, "wall": wall, "rss_mb": _peak_rss_mb(), "file_mb": 0.0}


def child_openpyxl(limit: int, export_dir: str) -> dict[str, Any]:
    """openpyxl write_only, fed by a server-side cursor with the same columns as typed values."""
    _setup_django()
    import openpyxl
    from psycopg import sql

    from apps.reports import exporter, services
    from apps.reports.columns import ColumnType
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    spec = exporter.ExportSpec(tenant_id=tenant.pk, timezone=tenant.timezone, personal_data=True)
    tz = exporter._tz(spec)
    exprs = []
    for column in spec.columns:
        value = exporter._value(spec, column)
        if column.type is ColumnType.DATETIME:
            value = f"date_trunc('second', {value} AT TIME ZONE {tz})"
        elif column.type is ColumnType.DURATION:
            value = f"make_interval(secs => {value})"
        elif column.type in (ColumnType.DECIMAL2, ColumnType.DECIMAL3):
            value = f"round({value}::numeric, 3)"
        exprs.append(value)
    query = sql.SQL("SELECT {} {} LIMIT {}").format(
        sql.SQL(", ".join(exprs)), exporter._from(spec, spec.columns), sql.Literal(limit)
    )
    path = Path(export_dir) / "openpyxl.xlsx"
    started = time.monotonic()
    rows = 0
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Sessions")
    sheet.append([exporter.header(spec, c) for c in spec.columns])
    with services.export_connection() as conn, exporter.snapshot(conn):
        conn.execute("SET LOCAL cursor_tuple_fraction = 1")  # plan for all rows, as the exports do
        with conn.cursor(name="bench") as cursor:
            cursor.itersize = 10_000
            cursor.execute(query)
            for row in cursor:
                sheet.append(row)
                rows += 1
    workbook.save(path)
    wall = time.monotonic() - started
    size = path.stat().st_size / 2**20
    path.unlink()
    return {"rows": rows, "wall": wall, "rss_mb": _peak_rss_mb(), "file_mb": size}


# --------------------------------------------------------------------------- orchestration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--formats", nargs="+", default=["csv", "csv.gz", "xlsx"])
    parser.add_argument("--openpyxl-rows", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="reuse an existing benchmark database")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        handlers = {
            "dims": lambda: child_seed_dimensions(),
            "sessions": lambda: child_seed_sessions(int(rest[0]), int(rest[1])),
            "export": lambda: child_export(rest[0], rest[1]),
            "floor": lambda: child_floor(),
            "openpyxl": lambda: child_openpyxl(int(rest[0]), rest[1]),
        }
        print(json.dumps(handlers[kind]()))
        return

    import psycopg

    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        raise SystemExit("Set DATABASE_URL first: eval $(.venv/bin/python scripts/stack.py up | grep export)")
    url = bench_url(server_url, BENCH_DB)
    admin_url = bench_url(server_url, "postgres")
    sizes = sorted(args.sizes)
    if not args.reuse:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            conn.execute(f"CREATE DATABASE {BENCH_DB}")
        print(f"database {BENCH_DB}: migrating ...", flush=True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=child_env(url), cwd=ROOT, check=True
        )
        print(f"  dimensions: {run_child(url, '--child', 'dims')['seconds']} s", flush=True)
    export_dir = tempfile.mkdtemp(prefix="evp-bench-export-")
    loaded = 0
    if args.reuse:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT coalesce(max(id), 0) FROM charging_chargingsession").fetchone()
            loaded = int(row[0]) if row else 0
    results: list[tuple[int, str, dict[str, Any]]] = []
    try:
        for size in sizes:
            if loaded < size:
                seconds = run_child(url, "--child", "sessions", str(loaded + 1), str(size))["seconds"]
                print(f"  sessions {loaded + 1:,}..{size:,}: {seconds} s", flush=True)
                loaded = size
            print(f"load average before {size:,}: {Path('/proc/loadavg').read_text().strip()}", flush=True)
            runs = [("COPY floor", ("floor",))]
            runs += [(fmt, ("export", fmt, export_dir)) for fmt in args.formats]
            if args.openpyxl_rows and size == sizes[0]:
                runs.append(("openpyxl write_only", ("openpyxl", str(min(args.openpyxl_rows, size)), export_dir)))
            for label, child in runs:
                result = run_child(url, "--child", *child)
                results.append((size, label, result))
                print(f"  {label:<20} {result['rows']:>11,} rows {result['wall']:8.1f} s", flush=True)
            print(f"load average after {size:,}: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    finally:
        os.rmdir(export_dir)
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")

    print()
    print(
        f"{'sessions':>11} {'format':<20} {'rows':>11} {'wall s':>8} {'rows/s':>10} {'% floor':>8} "
        f"{'peak RSS MB':>12} {'file MB':>9}"
    )
    for size in sizes:
        floor = next(r for s, label, r in results if s == size and label == "COPY floor")
        floor_rate = floor["rows"] / floor["wall"]
        for s, label, r in results:
            if s != size:
                continue
            rate = r["rows"] / r["wall"]
            print(
                f"{size:>11,} {label:<20} {r['rows']:>11,} {r['wall']:>8.1f} {rate:>10,.0f} "
                f"{rate / floor_rate * 100:>7.0f}% {r['rss_mb']:>12.0f} {r['file_mb']:>9.0f}"
            )


if __name__ == "__main__":
    main()
