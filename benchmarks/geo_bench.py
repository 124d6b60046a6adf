"""Geo search benchmark: p50/p95/p99 of the driver station search (`apps.sessions.selectors.stations_near`, what
`GET /api/v1/driver/stations/` runs) per query kind, next to a sequential haversine scan of the same question, in
the same run.

    eval $(make stack-up | grep export)
    .venv/bin/python benchmarks/geo_bench.py                     # 200k locations (+ 20k of a second tenant)
    .venv/bin/python benchmarks/geo_bench.py --locations 100000 --keep
    .venv/bin/python benchmarks/geo_bench.py --reuse             # measure again on the kept database

It creates its own database `evp_bench_geo` on the server of DATABASE_URL (dropped at the end unless --keep),
migrates it (the spatial index is the migration's own) and generates in SQL locations spread at random over
Germany (47-55 N, 6-15 E), one charge point each with one or two EVSEs, each with a plug of a random standard
(Type 2, CCS, CHAdeMO), power (11 to 300 kW) and status (two thirds Available). Each query kind runs `--queries`
random points `--repeat` times; a sample is the statement that reads the first page (50 locations, id and
distance). The baseline is the same question as one statement with the haversine formula in SQL on every row
(what the driver search did before the index); the two must return the same ids, which the run checks.

- radius 10 km: nearest first within 10 km;
- radius 25 km + filters: CCS, at least 50 kW, available now, within 25 km;
- map box: a city-sized view (0.3 x 0.2 degrees), nearest to its centre first;
- nearest, no radius: the whole network sorted (the index cannot serve this one, see the selector).

Then (unless --no-api) the same kinds through the whole API request, a page of 50 stations with their prices
(`GET /api/v1/driver/stations/` with an API key, Django's test client, a default tariff), without the Redis cache
next to with it (a cache hit; and the median of the first request, the miss that stores). It needs REDIS_URL.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Any

from benchdb import (  # benchmarks/benchdb.py
    NOW,
    bench_url,
    django_on,
    drop_database,
    fresh_database,
    insert_tenant,
    percentiles,
    server_url,
)

BENCH_DB = "evp_bench_geo"
PAGE = 50


def generate(cursor: Any, tenant: int, n: int, code: str) -> None:
    started = time.perf_counter()
    cursor.execute(
        f"""INSERT INTO stations_location (created_at, updated_at, tenant_id, name, ocpi_id, address, postal_code,
            city, country, latitude, longitude, timezone, parking_type, publish, opening_24_7)
        SELECT {NOW}, {NOW}, %(tenant)s, 'Site ' || g, '{code}L' || g, 'Street ' || g, '10115', 'City', 'DE',
            round((47 + random() * 8)::numeric, 6), round((6 + random() * 9)::numeric, 6), 'Europe/Berlin', '',
            true, true
        FROM generate_series(1, %(n)s) g""",
        {"tenant": tenant, "n": n},
    )
    cursor.execute(
        f"""INSERT INTO stations_chargepoint (created_at, updated_at, tenant_id, location_id, identity, password_hash,
            registration_status, lenient, vendor, model, serial_number, charge_box_serial_number, firmware_version,
            iccid, imsi, meter_type, meter_serial_number, phases, charging_rate_unit, heartbeat_interval, online,
            connection_id, status, error_code, vendor_error_code, status_info, configuration, local_list_version,
            firmware_status, diagnostics_status, configuration_complete, password_pending, log_status,
            signed_firmware_status, security_profile)
        SELECT {NOW}, {NOW}, %(tenant)s, l.id, '{code}-' || l.id, '', 'Accepted', false, 'ABB', 'M', '', '', '1.0',
            '', '', '', '', 3, 'A', 300, false, '', 'Available', '', '', '', '{{}}'::jsonb, 0, '', '', true, false,
            '', '', 1
        FROM stations_location l WHERE l.tenant_id = %(tenant)s""",
        {"tenant": tenant},
    )
    cursor.execute(
        f"""INSERT INTO stations_evse (created_at, updated_at, tenant_id, charge_point_id, connector_id, evse_uid,
            status, error_code, vendor_error_code, status_info)
        SELECT {NOW}, {NOW}, %(tenant)s, cp.id, k, 'DE*{code}*E' || cp.id || '*' || k,
            (ARRAY['Available', 'Available', 'Charging', 'Available', 'Faulted', 'Charging'])[1 + (random() * 5)::int],
            '', '', ''
        FROM stations_chargepoint cp, generate_series(1, 2) k
        WHERE cp.tenant_id = %(tenant)s AND (k = 1 OR cp.id %% 2 = 0)""",
        {"tenant": tenant},
    )
    cursor.execute(
        f"""INSERT INTO stations_connector (created_at, updated_at, evse_id, standard, format, power_type, max_voltage,
            max_amperage, max_electric_power)
        SELECT {NOW}, {NOW}, e.id, s.standard, 'CABLE', s.power_type, 400, 32, s.power
        FROM stations_evse e, LATERAL (
            SELECT * FROM (VALUES
                ('IEC_62196_T2', 'AC_3_PHASE', 11000), ('IEC_62196_T2', 'AC_3_PHASE', 22000),
                ('IEC_62196_T2_COMBO', 'DC', 50000), ('IEC_62196_T2_COMBO', 'DC', 150000),
                ('IEC_62196_T2_COMBO', 'DC', 300000), ('CHADEMO', 'DC', 50000)
            ) v(standard, power_type, power) OFFSET (e.id * 7919 %% 6) LIMIT 1) s
        WHERE e.tenant_id = %(tenant)s""",
        {"tenant": tenant},
    )
    print(f"  tenant {tenant}: {n:,} locations in {time.perf_counter() - started:.1f} s", flush=True)


HAVERSINE = (
    "2 * 6371.0088 * asin(sqrt(power(sin(radians(latitude - %(lat)s) / 2), 2) + cos(radians(%(lat)s))"
    " * cos(radians(latitude)) * power(sin(radians(longitude - %(lon)s) / 2), 2)))"
)
FILTERED = """EXISTS (SELECT 1 FROM stations_evse e JOIN stations_chargepoint cp ON cp.id = e.charge_point_id
    WHERE cp.location_id = stations_location.id AND e.decommissioned_at IS NULL AND cp.decommissioned_at IS NULL
    AND e.status = 'Available' AND EXISTS (SELECT 1 FROM stations_connector c WHERE c.evse_id = e.id
    AND c.standard = 'IEC_62196_T2_COMBO'
    AND COALESCE(NULLIF(c.max_electric_power, 0), c.max_voltage * c.max_amperage) >= 50000))"""


def baseline_sql(kind: str) -> str:
    where = "tenant_id = %(tenant)s AND publish AND decommissioned_at IS NULL"
    if kind.startswith("radius"):
        where += f" AND {HAVERSINE} <= %(radius)s"
    if kind == "radius 25 km + filters":
        where += " AND " + FILTERED
    if kind == "map box":
        where += " AND latitude BETWEEN %(south)s AND %(north)s AND longitude BETWEEN %(west)s AND %(east)s"
    return f"SELECT id, {HAVERSINE} AS d FROM stations_location WHERE {where} ORDER BY d, id LIMIT {PAGE}"


def measure(url: str, tenant: int, args: argparse.Namespace) -> None:
    django_on(url)
    from django.db import connection

    from apps.sessions.selectors import BoundingBox, stations_near
    from apps.stations.models import Location

    rng = random.Random(42)
    kinds = ["radius 10 km", "radius 25 km + filters", "map box", "nearest, no radius"]
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    print(f"\n{'query kind':<24} {'index p50':>9} {'p95':>7} {'p99':>7}   {'scan p50':>9} {'p95':>7} {'p99':>7}  found")
    mine = Location.objects.filter(tenant_id=tenant)
    for kind in kinds:
        ours: list[float] = []
        theirs: list[float] = []
        found = 0
        for _ in range(args.queries):
            lat, lon = rng.uniform(48, 54), rng.uniform(7, 14)
            params: dict[str, Any] = {"tenant": tenant, "lat": lat, "lon": lon}
            box = None
            if kind == "map box":
                box = BoundingBox(west=lon - 0.15, south=lat - 0.1, east=lon + 0.15, north=lat + 0.1)
                params.update(west=box.west, south=box.south, east=box.east, north=box.north)
            radius = {"radius 10 km": 10.0, "radius 25 km + filters": 25.0}.get(kind)
            params["radius"] = radius
            extra = {"connector_type": "IEC_62196_T2_COMBO", "min_power_w": 50_000, "available": True}
            queryset = stations_near(
                mine,
                lat=None if box else lat,
                lon=None if box else lon,
                radius_km=radius,
                bbox=box,
                **(extra if kind.endswith("filters") else {}),
            ).values_list("pk", flat=True)[:PAGE]
            sql = baseline_sql(kind)
            got = list(queryset)  # warm
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                expected = [row[0] for row in cursor.fetchall()]
            if got != expected:
                raise SystemExit(f"{kind} at {lat:.4f},{lon:.4f}: index {got[:5]}... != scan {expected[:5]}...")
            found += len(got)
            for _ in range(args.repeat):
                started = time.perf_counter()
                list(queryset.all())
                ours.append((time.perf_counter() - started) * 1000)
            for _ in range(args.baseline_repeat):
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()
                theirs.append((time.perf_counter() - started) * 1000)
        a, b = percentiles(ours), percentiles(theirs)
        print(
            f"{kind:<24} {a[0]:>9.1f} {a[1]:>7.1f} {a[2]:>7.1f}   {b[0]:>9.1f} {b[1]:>7.1f} {b[2]:>7.1f}"
            f"  {found / args.queries:.0f}/page  (ms; {len(ours)} / {len(theirs)} samples)",
            flush=True,
        )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    if args.api:
        measure_api(tenant, args, kinds)


def _api_params(kind: str, rng: random.Random) -> dict[str, str]:
    lat, lon = rng.uniform(48, 54), rng.uniform(7, 14)
    if kind == "map box":
        return {"bbox": f"{lon - 0.15:.5f},{lat - 0.1:.5f},{lon + 0.15:.5f},{lat + 0.1:.5f}", "page_size": str(PAGE)}
    params = {"lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "page_size": str(PAGE)}
    if kind.startswith("radius 10"):
        params["radius_km"] = "10"
    if kind.endswith("filters"):
        params.update(radius_km="25", connector_type="IEC_62196_T2_COMBO", min_power_kw="50", available="true")
    return params


def measure_api(tenant: int, args: argparse.Namespace, kinds: list[str]) -> None:
    """The whole driver API request (`GET /api/v1/driver/stations/`, a page of 50 with prices, through Django's
    test client and a real API key) without the Redis cache (`HOT_READ_CACHE` off: every request reads PostgreSQL)
    next to with it: the first request of each query computes and stores (miss), the repeats are hits. The same
    queries in both, interleaved per query so both see the same load."""
    from django.conf import settings
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from apps.tariffs import services as tariff_services
    from apps.tariffs.models import TariffAssignment
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    owner = Tenant.objects.get(pk=tenant)
    if not TariffAssignment.objects.filter(tenant=owner).exists():  # prices are part of the page: one default tariff
        tariff = tariff_services.tariff_create(
            tenant=owner,
            currency="EUR",
            elements=[{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}],
        )
        tariff_services.tariff_assignment_create(tenant=owner, tariff=tariff)
    _, raw = tenant_services.api_key_create(tenant=owner, name=f"geo-bench-{time.time_ns()}", scopes=["driver:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    print(f"\ncache: {settings.CACHES['default']['LOCATION']}; a Redis round trip:", end=" ")
    started = time.perf_counter()
    for _ in range(100):
        cache.get("geo-bench-ping")
    print(f"{(time.perf_counter() - started) * 10:.2f} ms", flush=True)

    def get(params: dict[str, str]) -> float:
        started = time.perf_counter()
        response = client.get("/api/v1/driver/stations/", params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{params}: {response.status_code} {response.content[:200]!r}")
        return elapsed

    rng = random.Random(7)
    print(
        f"\n{'API page of 50 + prices':<24} {'no cache p50':>12} {'p95':>7} {'p99':>7}   {'cache hit p50':>13}"
        f" {'p95':>7} {'p99':>7}   {'miss p50':>8}"
    )
    for kind in kinds:
        without: list[float] = []
        hits: list[float] = []
        misses: list[float] = []
        for _ in range(args.queries):
            params = _api_params(kind, rng)
            settings.HOT_READ_CACHE = False
            get(params)  # warm PostgreSQL's buffers for this query, as the index run above does
            for _ in range(args.repeat):
                without.append(get(params))
            settings.HOT_READ_CACHE = True
            misses.append(get(params))
            for _ in range(args.repeat):
                hits.append(get(params))
        a, b = percentiles(without), percentiles(hits)
        print(
            f"{kind:<24} {a[0]:>12.1f} {a[1]:>7.1f} {a[2]:>7.1f}   {b[0]:>13.2f} {b[1]:>7.2f} {b[2]:>7.2f}"
            f"   {statistics.median(misses):>8.1f}  (ms; {len(without)} / {len(hits)} / {len(misses)} samples)",
            flush=True,
        )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locations", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=30, help="random points per query kind")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query")
    parser.add_argument("--baseline-repeat", type=int, default=2, help="runs of each query, haversine scan")
    parser.add_argument(
        "--no-api", dest="api", action="store_false", help="skip the API page with and without the Redis cache"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="measure on the kept database (no generation)")
    args = parser.parse_args()

    import psycopg

    url = bench_url(server_url(), BENCH_DB)
    try:
        if not args.reuse:
            fresh_database(BENCH_DB)
            with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
                for slug, code, n in (("geo-main", "GEO", args.locations), ("geo-other", "OTH", args.locations // 10)):
                    generate(cursor, insert_tenant(cursor, slug, code), n, code)
                cursor.execute("ANALYZE")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT id FROM tenants_tenant WHERE slug = 'geo-main'").fetchone()
            total = conn.execute("SELECT count(*) FROM stations_location").fetchone()
        assert row is not None
        assert total is not None
        print(f"locations (both tenants): {total[0]:,}", flush=True)
        measure(url, row[0], args)
    finally:
        if not args.keep:
            drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
