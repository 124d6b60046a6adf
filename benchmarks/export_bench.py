"""Session export benchmark: rows/s, wall time and peak RSS per format, next to the COPY floor and openpyxl.

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/export_bench.py --sizes 1000000            # while others work
    .venv/bin/python benchmarks/export_bench.py --sizes 1000000 10000000   # the full run

It creates its own database `evp_bench_export` on the server of DATABASE_URL (dropped at the end unless
--keep), migrates it, generates realistic sessions in SQL (generate_series over real locations, charge
points, EVSEs, drivers, business customers and tokens), renders their export lines as beat does when sessions
complete (`session_lines_render`, timed: the write side, once per session), and runs each export in a child
process through the same service the Celery task calls (`export_job_run`, so progress updates are included),
reading each child's own peak RSS. "COPY floor" is the issue's floor with the standard tool: `psql` runs
`\\copy (the CSV export's SELECT) TO 'file' (FORMAT csv)` into a file on the same disk (the "% floor" column is
against it); "COPY drained" reads the export's own binary COPY straight from libpq as the export does, converting
and writing nothing (a stricter bound: no file); "COPY, rendered live" is the same with every column rendered at
export time (no stored lines: what an export costs without them, first size only); "openpyxl"
streams the same columns through a server-side cursor into openpyxl's write_only workbook (only on the first
--openpyxl-rows rows: it is ~20x slower).
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
from datetime import UTC, datetime
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
    """Tenants, locations, charge points, EVSEs and connectors, business customers with contracts, drivers,
    vehicles, tokens and tariffs (ORM bulk_create)."""
    _setup_django()
    from decimal import Decimal

    from apps.customers.models import BusinessCustomer, Contract, Driver, Token, Vehicle
    from apps.stations.models import ChargePoint, Connector, Evse, Location
    from apps.tariffs.models import Tariff
    from apps.tenants.models import Tenant

    started = time.monotonic()
    main = Tenant.objects.create(
        name="Bench Charge",
        slug=MAIN_TENANT_SLUG,
        timezone="Europe/Berlin",
        ocpi_country_code="DE",
        ocpi_party_id="BCH",
    )
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
    evses = Evse.objects.bulk_create(
        Evse(tenant=main, charge_point=cp, connector_id=c, evse_uid=f"DE*BCH*E{cp.pk:05d}*{c}")
        for cp in cps
        for c in (1, 2)
    )
    # every 5th charge point is a DC fast charger (CCS, 150 kW), the others AC 22 kW (Type 2)
    Connector.objects.bulk_create(
        (
            Connector(
                evse=evse,
                standard="IEC_62196_T2_COMBO",
                format="CABLE",
                power_type="DC",
                max_voltage=920,
                max_amperage=200,
                max_electric_power=150_000,
            )
            if i // 2 % 5 == 0
            else Connector(evse=evse, max_electric_power=22_000)
        )
        for i, evse in enumerate(evses)
    )
    customers = BusinessCustomer.objects.bulk_create(
        BusinessCustomer(tenant=main, name=f"Fleet {i} GmbH") for i in range(100)
    )
    contracts = Contract.objects.bulk_create(
        Contract(tenant=main, business_customer=c, number=f"K-{i:05d}", valid_from=datetime(2022, 1, 1, tzinfo=UTC))
        for i, c in enumerate(customers)
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
    models = [("Volkswagen", "ID.3", 58), ("Tesla", "Model Y", 75), ("Hyundai", "Ioniq 5", 77), ("Renault", "Zoe", 52)]
    Vehicle.objects.bulk_create(
        (
            Vehicle(
                tenant=main,
                driver=drivers[i],
                business_customer=drivers[i].business_customer,
                make=models[i % 4][0],
                model=models[i % 4][1],
                battery_kwh=Decimal(models[i % 4][2]),
                ac_max_current_a=32 if i % 4 != 3 else 16,
                dc_max_power_w=None if i % 4 == 3 else 150_000,
                licence_plate=f"B-EV {i:04d}",
            )
            for i in range(0, 20_000, 3)  # a third of the drivers registered their car
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
                business_contract=contracts[i % 100] if i % 4 == 0 else None,
            )
            for i in range(25_000)
        ),
        batch_size=5000,
    )
    element = [{"price_components": [{"type": "ENERGY", "price": "0.49", "vat": "19", "step_size": 1}]}]
    Tariff.objects.bulk_create(
        Tariff(tenant=main, ocpi_id=name, currency="EUR", elements=element)
        for name in ("AC-STANDARD", "DC-FAST", "FLEET-2024")
    )
    return {"seconds": round(time.monotonic() - started, 1)}


# Sessions as the platform writes them: links filled at start (location, EVSE connector, token, driver, business
# customer, contract, vehicle), cost priced at completion (tariff, currency, excl./incl. VAT and the breakdown
# JSON), max power, data-quality flags, and a CDR for every completed session. 2% are roaming tokens we do not
# know (no token, driver or customer, a roaming partner); 1 in 5,000 is still running (no stop, cost or CDR).
SESSIONS_SQL = """
WITH ev AS (
    SELECT array_agg(e.id ORDER BY e.id) AS ids, array_agg(e.charge_point_id ORDER BY e.id) AS cps,
           array_agg(e.connector_id ORDER BY e.id) AS conns, array_agg(cp.location_id ORDER BY e.id) AS locs,
           array_agg(c.id ORDER BY e.id) AS plugs, array_agg(c.max_electric_power ORDER BY e.id) AS kw,
           count(*)::int AS n
    FROM stations_evse e JOIN stations_chargepoint cp ON cp.id = e.charge_point_id
    JOIN stations_connector c ON c.evse_id = e.id
    WHERE e.tenant_id = %(tenant)s
), tk AS (
    SELECT array_agg(t.uid ORDER BY t.id) AS uids, array_agg(t.id ORDER BY t.id) AS ids,
           array_agg(t.driver_id ORDER BY t.id) AS drivers,
           array_agg(coalesce(t.business_customer_id, d.business_customer_id) ORDER BY t.id) AS bcs,
           array_agg(t.business_contract_id ORDER BY t.id) AS contracts,
           array_agg((SELECT min(v.id) FROM customers_vehicle v WHERE v.driver_id = t.driver_id) ORDER BY t.id) AS cars,
           count(*)::int AS n
    FROM customers_token t LEFT JOIN customers_driver d ON d.id = t.driver_id WHERE t.tenant_id = %(tenant)s
), tf AS (
    SELECT array_agg(id ORDER BY id) AS ids FROM tariffs_tariff WHERE tenant_id = %(tenant)s
)
INSERT INTO charging_chargingsession (
    id, tenant_id, charge_point_id, evse_id, connector_id, id_tag, auth_status, reservation_id, status,
    started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh, last_meter_wh, last_meter_at,
    stop_reason, stop_id_tag, flags, created_at, updated_at,
    location_id, evse_connector_id, token_id, driver_id, business_customer_id, contract_id, vehicle_id,
    auth_method, auth_reason, failure_reason, max_power_w, last_power_w, limit_action, limit_reached, limit_outcome,
    tariff_id, currency, cost_excl_vat, cost_incl_vat, cost_breakdown, suspicious, suspicious_reasons,
    cdr_ocpi_id, roaming_partner, end_evidence, pricing_error)
SELECT g, %(tenant)s, ev.cps[k], ev.ids[k], ev.conns[k],
       CASE WHEN roaming THEN 'ROAM' || g ELSE tk.uids[t] END,
       'Accepted', NULL,
       CASE WHEN running THEN 'active' ELSE 'completed' END,
       st, CASE WHEN running THEN NULL ELSE st + dur END,
       ms, CASE WHEN running THEN NULL ELSE ms + e END, CASE WHEN running THEN NULL ELSE e END,
       ms + e, st + dur,
       (ARRAY['Local', 'EVDisconnected', 'Remote', 'PowerLoss', ''])[(1 + g %% 5)::int], '',
       CASE WHEN g %% 997 = 0 THEN ARRAY['meter_backwards'] ELSE '{}'::varchar[] END,
       st, st + dur,
       ev.locs[k], ev.plugs[k],
       CASE WHEN NOT roaming THEN tk.ids[t] END, CASE WHEN NOT roaming THEN tk.drivers[t] END,
       CASE WHEN NOT roaming THEN tk.bcs[t] END, CASE WHEN NOT roaming THEN tk.contracts[t] END,
       CASE WHEN NOT roaming THEN tk.cars[t] END,
       CASE WHEN roaming THEN 'AUTH_REQUEST' ELSE 'WHITELIST' END, '', '',
       pw, pw * 3 / 4, '', '', '',
       CASE WHEN NOT running THEN tf.ids[1 + (CASE WHEN fast THEN 1 WHEN g %% 4 = 0 THEN 2 ELSE 0 END)] END,
       CASE WHEN NOT running THEN 'EUR' ELSE '' END,
       CASE WHEN NOT running THEN excl END, CASE WHEN NOT running THEN round(excl * 1.19, 4) END,
       CASE WHEN NOT running THEN jsonb_build_object(
           'lines', jsonb_build_array(jsonb_build_object(
               'group', 'charging', 'dimension', 'ENERGY', 'description', 'Energy',
               'price', price::text, 'vat', '19', 'volume', (e / 1000.0)::text, 'billed_volume', (e / 1000.0)::text,
               'excl_vat', excl::text, 'incl_vat', round(excl * 1.19, 4)::text)),
           'by_dimension', jsonb_build_object(
               'ENERGY', jsonb_build_object('excl_vat', excl::text, 'incl_vat', round(excl * 1.19, 4)::text)))
       END,
       g %% 997 = 0, CASE WHEN g %% 997 = 0 THEN ARRAY['energy_above_capacity'] ELSE '{}'::varchar[] END,
       CASE WHEN NOT running THEN 'BCH' || g ELSE '' END,
       CASE WHEN roaming THEN (ARRAY['DE*HBS', 'NL*EVB', 'AT*SMA'])[(1 + g %% 3)::int] ELSE '' END,
       '', ''
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
CROSS JOIN ev CROSS JOIN tk CROSS JOIN tf
CROSS JOIN LATERAL (SELECT
    (1 + (g * 7919) %% ev.n)::int AS k,
    (1 + (g * 31) %% tk.n)::int AS t,
    g %% 50 = 0 AS roaming,
    g %% 5000 = 0 AS running,
    timestamptz '2023-01-01 00:00:00+00' + g * interval '3 seconds' AS st,
    make_interval(secs => 600 + (g * 2654435761) %% 14400) AS dur,
    (g * 40503) %% 60000 + 500 AS e,
    (g * 37) %% 100000000 AS ms) AS v
CROSS JOIN LATERAL (SELECT ev.kw[k] > 22000 AS fast) AS f
CROSS JOIN LATERAL (SELECT
    CASE WHEN fast THEN 0.69 ELSE 0.49 END::numeric AS price,
    least(ev.kw[k], 3700 + (g * 104729) %% 150000)::int AS pw) AS p
CROSS JOIN LATERAL (SELECT round(e / 1000.0 * price, 4) AS excl) AS c
"""

CDRS_SQL = """
INSERT INTO charging_cdr (
    tenant_id, session_id, ocpi_id, country_code, party_id, start_date_time, end_date_time, cdr_token, auth_method,
    authorization_reference, cdr_location, meter_id, currency, tariffs, charging_periods, signed_data, energy_wh,
    total_cost, total_fixed_cost, total_energy, total_energy_cost, total_time, total_time_cost,
    total_parking_time, total_parking_cost, remark, last_updated)
SELECT s.tenant_id, s.id, 'BCH' || s.id, 'DE', 'BCH', s.started_at, s.stopped_at,
       jsonb_build_object('uid', s.id_tag, 'type', 'RFID', 'contract_id', 'DEBCHC' || s.token_id, 'country_code', 'DE',
                          'party_id', 'BCH'),
       s.auth_method, '',
       jsonb_build_object('id', s.location_id::text, 'name', 'Location ' || s.location_id, 'address', 'Hauptstraße 1',
                          'city', 'Berlin', 'postal_code', '10115', 'country', 'DEU',
                          'coordinates', jsonb_build_object('latitude', '52.520', 'longitude', '13.405'),
                          'evse_uid', s.evse_id::text, 'evse_id', 'DE*BCH*E' || s.evse_id, 'connector_id', '1',
                          'connector_standard', 'IEC_62196_T2', 'connector_format', 'SOCKET',
                          'connector_power_type', 'AC_3_PHASE'),
       '', s.currency, '[]'::jsonb,
       jsonb_build_array(jsonb_build_object('start_date_time', s.started_at, 'dimensions',
           jsonb_build_array(jsonb_build_object('type', 'ENERGY', 'volume', (s.energy_wh / 1000.0)::text)))),
       NULL, s.energy_wh,
       jsonb_build_object('excl_vat', s.cost_excl_vat::text, 'incl_vat', s.cost_incl_vat::text), NULL,
       s.energy_wh / 1000.0, s.cost_breakdown -> 'by_dimension' -> 'ENERGY',
       date_part('epoch', s.stopped_at - s.started_at) / 3600.0, NULL, NULL, NULL, '', s.stopped_at
FROM charging_chargingsession s
WHERE s.id BETWEEN %(first)s AND %(last)s AND s.status = 'completed'
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
        cursor.execute(CDRS_SQL, {"first": first, "last": last})
        # the triggers are off while loading: queue the new sessions' export lines as the insert trigger does
        cursor.execute(
            "INSERT INTO reports_pendingline (session_id, tenant_id, queued_at) SELECT id, tenant_id, now() "
            "FROM charging_chargingsession WHERE id BETWEEN %s AND %s ON CONFLICT DO NOTHING",
            [first, last],
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('charging_chargingsession', 'id'), %s)", [last])
        cursor.execute("VACUUM (ANALYZE) charging_chargingsession")
        cursor.execute("VACUUM (ANALYZE) charging_cdr")
    return {"seconds": round(time.monotonic() - started, 1)}


def child_render_lines() -> dict[str, Any]:
    """The write side: render the queued sessions' export lines (what beat does as sessions complete)."""
    _setup_django()
    from django.db import connection

    from apps.reports import services

    started = time.monotonic()
    rows = services.session_lines_render(batch_size=20_000, max_seconds=float("inf"))
    wall = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) reports_sessionline")
        cursor.execute("VACUUM (ANALYZE) reports_pendingline")
    return {"rows": rows, "wall": wall, "rss_mb": _peak_rss_mb(), "file_mb": 0.0}


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


def child_floor(stored: bool) -> dict[str, Any]:
    """The floor: the CSV export's own COPY drained as fast as the export reads it (straight from libpq), nothing
    converted or written. `stored=False`: every session rendered live instead of its stored line."""
    _setup_django()
    from apps.reports import exporter, services
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    spec = exporter.ExportSpec(tenant_id=tenant.pk, timezone=tenant.timezone, personal_data=True)
    started = time.monotonic()
    rows = 0
    with (
        services.export_connection() as conn,
        exporter.snapshot(conn, spec.timezone, parallel_workers=spec.parallel_workers),
        exporter.CopyLines(conn, exporter.copy_query(spec, stored=stored)) as copy,
    ):
        while n := copy.read()[1]:
            rows += n
    wall = time.monotonic() - started
    return {"rows": rows, "wall": wall, "rss_mb": _peak_rss_mb(), "file_mb": 0.0}


def child_floor_psql(export_dir: str) -> dict[str, Any]:
    """The issue's floor, with the standard tool: `psql`'s \\copy of the CSV export's SELECT in FORMAT csv into a
    file on the same disk (PostgreSQL formats, psql's C loop writes; the same session settings as the export)."""
    _setup_django()
    import psycopg

    from apps.reports import exporter
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    spec = exporter.ExportSpec(tenant_id=tenant.pk, timezone=tenant.timezone, personal_data=True)
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        select = exporter.select_query(spec).as_string(conn).replace("\n", " ")
    path = Path(export_dir) / "floor.csv"
    settings_sql = [
        "SET jit = off",
        "SET parallel_setup_cost = 100",
        "SET parallel_tuple_cost = 0.001",
        f"SET TimeZone = '{tenant.timezone}'",
        "SET DateStyle = 'ISO, YMD'",
    ]
    command = ["psql", os.environ["DATABASE_URL"], "-X", "-v", "ON_ERROR_STOP=1"]
    for statement in settings_sql:
        command += ["-c", statement]
    command += ["-c", f"\\copy ({select}) TO '{path}' (FORMAT csv)"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    rows = int(done.stdout.strip().splitlines()[-1].split()[-1])  # "COPY 10000000"
    size = path.stat().st_size / 2**20
    path.unlink()
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rows": rows, "wall": wall, "rss_mb": rss, "file_mb": size}


def child_openpyxl(limit: int, export_dir: str) -> dict[str, Any]:
    """openpyxl write_only, fed by a server-side cursor with the same columns as typed values."""
    _setup_django()
    import openpyxl
    from psycopg import sql

    from apps.reports import exporter, services
    from apps.reports.columns import DIMENSIONS, SESSIONS_TABLE, ColumnType
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=MAIN_TENANT_SLUG)
    spec = exporter.ExportSpec(tenant_id=tenant.pk, timezone=tenant.timezone, personal_data=True)
    typed = {  # the values as the export shows them (personal data allowed: nothing masked)
        ColumnType.DATETIME: "date_trunc('second', ({}))::timestamp",  # local: the snapshot's TimeZone is the tenant's
        ColumnType.MONEY: "round(({}), 2)",
        ColumnType.KWH: "(({}) * 0.001)",
        ColumnType.KW: "round(({}) * 0.001, 1)",
    }
    exprs = [typed.get(column.type, "({})").format(column.sql) for column in spec.columns]
    joins = " ".join(
        f"LEFT JOIN {DIMENSIONS[dim].table} {dim} ON {dim}.id = s.{DIMENSIONS[dim].session_key}"
        for dim in dict.fromkeys(c.dim for c in spec.columns if c.dim is not None)
    )
    query = sql.SQL("SELECT {} FROM {} s {} WHERE {} LIMIT {}").format(
        sql.SQL(", ".join(exprs)),
        sql.Identifier(SESSIONS_TABLE),
        sql.SQL(joins),
        exporter._where(spec, "s"),
        sql.Literal(limit),
    )
    path = Path(export_dir) / "openpyxl.xlsx"
    started = time.monotonic()
    rows = 0
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Sessions")
    sheet.append([exporter.header(spec, c) for c in spec.columns])
    with services.export_connection() as conn, exporter.snapshot(conn, spec.timezone):
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
    parser.add_argument(
        "--no-live-floor", dest="live_floor", action="store_false", help="skip the floor of rendering at export time"
    )
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
            "floor": lambda: child_floor(stored=True),
            "floor-live": lambda: child_floor(stored=False),
            "floor-psql": lambda: child_floor_psql(rest[0]),
            "lines": lambda: child_render_lines(),
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
            rendered = run_child(url, "--child", "lines")
            if rendered["rows"]:
                results.append((size, "lines rendered", rendered))
                print(
                    f"  export lines rendered: {rendered['rows']:,} in {rendered['wall']:.1f} s "
                    f"({rendered['rows'] / rendered['wall']:,.0f}/s, the write side: once per session)",
                    flush=True,
                )
            print(f"load average before {size:,}: {Path('/proc/loadavg').read_text().strip()}", flush=True)
            runs = [("COPY floor", ("floor-psql", export_dir)), ("COPY drained", ("floor",))]
            if args.live_floor and size == sizes[0]:
                runs.append(("COPY, rendered live", ("floor-live",)))
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
        f"{'% drained':>10} {'peak RSS MB':>12} {'file MB':>9}"
    )
    for size in sizes:
        floor, drained = (
            next(r for s, label, r in results if s == size and label == name) for name in ("COPY floor", "COPY drained")
        )
        floor_rate, drained_rate = (x["rows"] / x["wall"] for x in (floor, drained))
        for s, label, r in results:
            if s != size or label == "lines rendered":
                continue
            rate = r["rows"] / r["wall"]
            print(
                f"{size:>11,} {label:<20} {r['rows']:>11,} {r['wall']:>8.1f} {rate:>10,.0f} "
                f"{rate / floor_rate * 100:>7.0f}% {rate / drained_rate * 100:>9.0f}% {r['rss_mb']:>12.0f} "
                f"{r['file_mb']:>9.0f}"
            )


if __name__ == "__main__":
    main()
