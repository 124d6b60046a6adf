"""Partner stations in the driver station search (eMSP): p50/p95/p99 of the search over our own stations plus
10,000 partner locations with 50,000 EVSEs, next to the same search over our own only, in the same run.

    eval $(make stack-up | grep export)
    .venv/bin/python benchmarks/partner_search_bench.py                  # 10k partner locations, 50k EVSEs
    .venv/bin/python benchmarks/partner_search_bench.py --keep           # then --reuse to measure again
    .venv/bin/python benchmarks/partner_search_bench.py --pull           # the partner's network pulled over HTTP

It creates its own database `evp_bench_partner` on the server of DATABASE_URL (dropped at the end unless --keep),
migrates it (both spatial indexes are the migrations' own), generates our own network (`--own` locations, as
benchmarks/geo_bench.py does) and, in SQL, `--partner-locations` locations of one roaming partner spread over
Germany with `--evses-per-location` EVSEs each (one connector each: Type 2 22 kW or CCS 50-300 kW, two thirds
AVAILABLE, every 20th EVSE REMOVED), each connector naming one of two partner tariffs; a mark-up retail rule.

With `--pull` the partner's network is not written in SQL: a CPO (apps/roaming/cpo_sim.py, OCPI 2.2.1 over HTTP,
pages of 50 with Link and X-Total-Count) serves the same locations, EVSEs and tariffs, and the platform's own pull
(`apps.roaming.ocpi.pull.pull_partner`, full, as the admin's "Full resync" and the beat's pull run it) stores them:
the time, locations/s and EVSEs/s, next to a floor in the same run (GET and decode every page, store nothing), then
a delta pull (`date_from` of the last pull, 2 % of the locations changed), then the searches over what was pulled.

Two levels, each for every query kind, `operator=own` (our own only) next to no operator (ours + the partners'):
- the search: the page's rows of both networks merged (`station_pages.station_page`: the spatial statements and
  the page's locations with their EVSEs and connectors, one statement per network);
- the API page: `GET /api/v1/driver/stations/` (a page of 50 with prices, our tariff or the partner's tariff through
  the retail rule), without the Redis cache (every request reads PostgreSQL), and on a cache hit.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

from benchdb import NOW, bench_url, django_on, drop_database, fresh_database, insert_tenant, percentiles, server_url
from geo_bench import generate

BENCH_DB = "evp_bench_partner"
PAGE = 50
KINDS = ["radius 10 km", "radius 25 km + filters", "map box", "nearest, no radius"]


def generate_partner(cursor: Any, tenant: int, partner: int, n: int, per_location: int) -> None:
    started = time.perf_counter()
    cursor.execute(
        f"""INSERT INTO stations_partnerlocation (created_at, updated_at, tenant_id, partner_id, country_code,
            party_id, ocpi_id, publish, name, address, city, postal_code, state, country, latitude, longitude,
            time_zone, operator_name, data, last_updated)
        SELECT {NOW}, {NOW}, %(tenant)s, %(partner)s, 'NL', 'CPO', 'LOC' || g, true, 'Partner site ' || g,
            'Street ' || g, 'City', '10115', '', 'DEU', round((47 + random() * 8)::numeric, 6),
            round((6 + random() * 9)::numeric, 6), 'Europe/Berlin', 'Partner CPO', '{{}}'::jsonb, {NOW}
        FROM generate_series(1, %(n)s) g""",
        {"tenant": tenant, "partner": partner, "n": n},
    )
    cursor.execute(
        f"""INSERT INTO stations_partnerevse (created_at, updated_at, location_id, uid, evse_id, status, capabilities,
            physical_reference, data, last_updated)
        SELECT {NOW}, {NOW}, l.id, 'E' || l.id || '-' || k, 'NL*CPO*E' || l.id || '*' || k,
            CASE WHEN (l.id + k) %% 20 = 0 THEN 'REMOVED'
                 ELSE (ARRAY['AVAILABLE', 'AVAILABLE', 'CHARGING'])[1 + ((l.id * 31 + k) %% 3)] END,
            '{{}}', '', '{{}}'::jsonb, {NOW}
        FROM stations_partnerlocation l, generate_series(1, %(per)s) k WHERE l.partner_id = %(partner)s""",
        {"partner": partner, "per": per_location},
    )
    cursor.execute(
        f"""INSERT INTO stations_partnerconnector (created_at, updated_at, evse_id, connector_id, standard, format,
            power_type, max_voltage, max_amperage, max_electric_power, tariff_ids, data, last_updated)
        SELECT {NOW}, {NOW}, e.id, '1', s.standard, 'CABLE', s.power_type, 400, 32, s.power, ARRAY[s.tariff],
            '{{}}'::jsonb, {NOW}
        FROM stations_partnerevse e JOIN stations_partnerlocation l ON l.id = e.location_id, LATERAL (
            SELECT * FROM (VALUES
                ('IEC_62196_T2', 'AC_3_PHASE', 22000, 'AC'), ('IEC_62196_T2_COMBO', 'DC', 50000, 'DC'),
                ('IEC_62196_T2_COMBO', 'DC', 150000, 'DC'), ('IEC_62196_T2_COMBO', 'DC', 300000, 'DC')
            ) v(standard, power_type, power, tariff) OFFSET (e.id * 7919 %% 4) LIMIT 1) s
        WHERE l.partner_id = %(partner)s""",
        {"partner": partner},
    )
    print(f"  partner {partner}: {n:,} locations, {n * per_location:,} EVSEs in {time.perf_counter() - started:.1f} s")


def partner_locations(n: int, per_location: int, rng: random.Random, moment: str) -> dict[str, Any]:
    """The partner's network as OCPI 2.2.1 Location objects (what `generate_partner` writes in SQL), by key."""
    plugs = [
        ("IEC_62196_T2", "AC_3_PHASE", 22000, "AC"),
        ("IEC_62196_T2_COMBO", "DC", 50000, "DC"),
        ("IEC_62196_T2_COMBO", "DC", 150000, "DC"),
        ("IEC_62196_T2_COMBO", "DC", 300000, "DC"),
    ]
    found: dict[str, Any] = {}
    for g in range(1, n + 1):
        evses = []
        for k in range(1, per_location + 1):
            standard, power_type, power, tariff = plugs[(g * 7919 + k) % 4]
            status = "REMOVED" if (g + k) % 20 == 0 else ("AVAILABLE", "AVAILABLE", "CHARGING")[(g * 31 + k) % 3]
            evses.append(
                {
                    "uid": f"E{g}-{k}",
                    "evse_id": f"NL*CPO*E{g}*{k}",
                    "status": status,
                    "connectors": [
                        {
                            "id": "1",
                            "standard": standard,
                            "format": "CABLE",
                            "power_type": power_type,
                            "max_voltage": 400,
                            "max_amperage": 32,
                            "max_electric_power": power,
                            "tariff_ids": [tariff],
                            "last_updated": moment,
                        }
                    ],
                    "last_updated": moment,
                }
            )
        found[f"NL/CPO/LOC{g}"] = {
            "country_code": "NL",
            "party_id": "CPO",
            "id": f"LOC{g}",
            "publish": True,
            "name": f"Partner site {g}",
            "address": f"Street {g}",
            "city": "City",
            "postal_code": "10115",
            "country": "DEU",
            "coordinates": {"latitude": f"{rng.uniform(47, 55):.6f}", "longitude": f"{rng.uniform(6, 15):.6f}"},
            "time_zone": "Europe/Berlin",
            "operator": {"name": "Partner CPO"},
            "evses": evses,
            "last_updated": moment,
        }
    return found


def pull_over_http(tenant_id: int, args: argparse.Namespace) -> None:
    """The partner's network pulled by the platform from a CPO over HTTP (see the module's docstring)."""
    import datetime as dt
    import resource

    import requests

    from apps.roaming.cpo_sim import CpoSimulator
    from apps.roaming.models import PartnerStatus, RoamingPartner, TokenKind
    from apps.roaming.ocpi import pull

    moment = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    started = time.perf_counter()
    cpo = CpoSimulator(country_code="NL", party_id="CPO")
    cpo.cpo_locations = partner_locations(args.partner_locations, args.evses_per_location, random.Random(7), moment)
    for ocpi_id, price in (("AC", "0.39"), ("DC", "0.59")):
        cpo.cpo_tariffs[f"NL/CPO/{ocpi_id}"] = {
            "country_code": "NL",
            "party_id": "CPO",
            "id": ocpi_id,
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": float(price), "step_size": 1}]}],
            "last_updated": moment,
        }
    cpo.start()
    # registered (the handshake is tested elsewhere): our token C for it, its endpoints
    cpo.server_token, cpo.server_token_is_a, cpo.registered = "bench-token-c", False, True
    RoamingPartner.objects.filter(tenant_id=tenant_id).update(
        status=PartnerStatus.REGISTERED,
        version="2.2.1",
        their_token="bench-token-c",
        their_token_kind=TokenKind.C,
        our_roles=["EMSP"],
        enabled_modules=["locations", "tariffs"],
        endpoints=[
            {"identifier": m, "role": "SENDER", "url": f"{cpo.base_url}/ocpi/cpo/2.2.1/{m}"}
            for m in ("locations", "tariffs")
        ],
    )
    partner = RoamingPartner.objects.get(tenant_id=tenant_id)
    print(f"  the CPO serves {args.partner_locations:,} locations ({time.perf_counter() - started:.1f} s to build)")
    try:
        # floor: every page fetched and decoded, nothing stored
        started = time.perf_counter()
        url: str | None = f"{cpo.base_url}/ocpi/cpo/2.2.1/locations"
        pages = objects = 0
        with requests.Session() as http:
            while url:
                answer = http.get(url, headers={"Authorization": cpo.auth_header("bench-token-c")}, timeout=60)
                objects += len(answer.json()["data"])
                pages += 1
                link = answer.headers.get("Link", "")
                url = link[1 : link.index(">")] if link else None
        floor = time.perf_counter() - started
        print(f"  floor (GET + decode, {pages} pages, {objects:,} locations): {floor:.1f} s")
        evses = args.partner_locations * args.evses_per_location
        started = time.perf_counter()
        results = pull.pull_partner(partner_id=partner.pk, modules=["tariffs", "locations"], full=True)
        took = time.perf_counter() - started
        by_module = {r.module: r for r in results}
        located = by_module["locations"]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"  full pull: {took:.1f} s ({located.pages} pages, {located.stored:,} locations stored, "
            f"{located.refused} refused): {args.partner_locations / took:,.0f} locations/s, "
            f"{evses / took:,.0f} EVSEs/s; {took / floor:.1f}x the floor; peak RSS {rss:.0f} MB",
            flush=True,
        )
        # a delta: 2 % of the locations changed since the last pull
        later = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        changed = list(cpo.cpo_locations)[::50]
        for key in changed:
            location = cpo.cpo_locations[key]
            location["evses"][0]["status"] = "CHARGING"
            location["evses"][0]["last_updated"] = later
            location["last_updated"] = later
        started = time.perf_counter()
        delta = pull.pull_partner(partner_id=partner.pk, modules=["locations"])
        took = time.perf_counter() - started
        print(
            f"  delta pull (date_from): {took:.2f} s for {delta[0].received:,} changed locations "
            f"({delta[0].pages} pages; {len(changed):,} changed)",
            flush=True,
        )
    finally:
        cpo.stop()


def setup_django_rows(tenant_id: int, *, tariffs: bool = True) -> None:
    """A roaming partner, its two tariffs, a retail rule and our own default tariff (through the services)."""
    from apps.roaming import services as roaming_services
    from apps.tariffs import services as tariff_services
    from apps.tariffs.models import PartnerTariff
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tenant_id)
    partner, _ = roaming_services.partner_create(
        tenant=tenant, name="Partner CPO", country_code="NL", party_id="CPO", roles=["CPO"], our_party_id="GEO"
    )
    for ocpi_id, price in (("AC", "0.39"), ("DC", "0.59")) if tariffs else ():
        PartnerTariff.objects.create(
            tenant=tenant,
            partner=partner,
            country_code="NL",
            party_id="CPO",
            ocpi_id=ocpi_id,
            currency="EUR",
            data={
                "id": ocpi_id,
                "currency": "EUR",
                "elements": [
                    {
                        "price_components": [
                            {"type": "ENERGY", "price": price, "step_size": 1},
                            {"type": "FLAT", "price": "0.50", "step_size": 1},
                        ]
                    }
                ],
            },
            last_updated="2026-12-01T00:00:00Z",
        )
    tariff_services.roaming_retail_rule_create(
        tenant=tenant, partner=partner, mode="markup", markup_percent=10, vat_rate=19
    )
    tariff = tariff_services.tariff_create(
        tenant=tenant,
        currency="EUR",
        elements=[{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}],
    )
    tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariff)


def _params(kind: str, rng: random.Random) -> dict[str, str]:
    lat, lon = rng.uniform(48, 54), rng.uniform(7, 14)
    if kind == "map box":
        return {"bbox": f"{lon - 0.15:.5f},{lat - 0.1:.5f},{lon + 0.15:.5f},{lat + 0.1:.5f}", "page_size": str(PAGE)}
    params = {"lat": f"{lat:.5f}", "lon": f"{lon:.5f}", "page_size": str(PAGE)}
    if kind.startswith("radius 10"):
        params["radius_km"] = "10"
    if kind.endswith("filters"):
        params.update(radius_km="25", connector_type="IEC_62196_T2_COMBO", min_power_kw="50", available="true")
    return params


def measure(tenant_id: int, args: argparse.Namespace) -> None:
    from django.conf import settings
    from django.test import RequestFactory
    from rest_framework.request import Request
    from rest_framework.test import APIClient

    from apps.sessions import selectors
    from apps.sessions.api import station_pages
    from apps.sessions.api.views import STATION_LOADERS, DriverStationViewSet
    from apps.stations.models import Location, PartnerLocation
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Tenant

    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    _, raw = tenant_services.api_key_create(
        tenant=Tenant.objects.get(pk=tenant_id), name=f"partner-bench-{time.time_ns()}", scopes=["driver:read"]
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    factory = RequestFactory()

    def querysets_for(params: dict[str, str]) -> dict[int, Any]:
        request = Request(factory.get("/api/v1/driver/stations/", params))
        view = DriverStationViewSet()
        view.request, view.format_kwarg, view.kwargs, view.args = request, None, {}, ()
        search_args = view._search()
        operator = search_args.pop("operator")
        querysets: dict[int, Any] = {}
        if operator in (None, "own"):
            querysets[station_pages.OWN] = selectors.stations_near(
                Location.objects.filter(tenant_id=tenant_id), **search_args
            )
        if operator != "own":
            querysets[station_pages.PARTNER] = selectors.partner_stations_near(
                PartnerLocation.objects.filter(tenant_id=tenant_id), operator=operator, **search_args
            )
        return querysets

    def statements(params: dict[str, str]) -> float:
        """The spatial statements alone (what the indexes answer): the ids and distances of a page's candidates of
        each network, as `station_page` reads them (SQL built beforehand, timed: execute and fetch)."""
        from django.db import connection

        compiled = [
            qs.prefetch_related(None).values_list("pk", "geo_chord")[: PAGE + 1].query.sql_with_params()
            for qs in querysets_for(params).values()
        ]
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql, sql_params in compiled:
                cursor.execute(sql, sql_params)
                cursor.fetchall()
        return (time.perf_counter() - started) * 1000

    def search(params: dict[str, str]) -> float:
        """The search alone: the view's querysets of both networks, one merged page (rows and prefetch)."""
        request = Request(factory.get("/api/v1/driver/stations/", params))
        view = DriverStationViewSet()
        view.request, view.format_kwarg, view.kwargs, view.args = request, None, {}, ()
        started = time.perf_counter()
        search_args = view._search()
        querysets: dict[int, Any] = {}
        operator = search_args.pop("operator")
        if operator in (None, "own"):
            querysets[station_pages.OWN] = selectors.stations_near(
                Location.objects.filter(tenant_id=tenant_id), **search_args
            )
        if operator != "own":
            querysets[station_pages.PARTNER] = selectors.partner_stations_near(
                PartnerLocation.objects.filter(tenant_id=tenant_id),
                operator=operator,
                **search_args,
            )
        station_pages.station_page(request, querysets, STATION_LOADERS, page_size=PAGE)  # with their EVSEs
        return (time.perf_counter() - started) * 1000

    def page(params: dict[str, str]) -> float:
        started = time.perf_counter()
        response = client.get("/api/v1/driver/stations/", params)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{params}: {response.status_code} {response.content[:300]!r}")
        return elapsed

    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    header = f"{'':<24} {'own only p50':>12} {'p95':>7} {'p99':>7}   {'own+partner p50':>15} {'p95':>7} {'p99':>7}"
    for level, run, cached in (
        ("spatial statements (ids + distances of a page, per network)", statements, False),
        ("search (rows of a page)", search, False),
        ("API page, no cache", page, False),
        ("API page, cache hit", page, True),
    ):
        print(f"\n{level}\n{header}", flush=True)
        rng = random.Random(11)
        for kind in KINDS:
            own: list[float] = []
            both: list[float] = []
            partner_rows = 0
            for _ in range(args.queries):
                params = _params(kind, rng)
                settings.HOT_READ_CACHE = cached
                for variant, samples in (({"operator": "own"}, own), ({}, both)):
                    query = {**params, **variant}
                    run(query)  # warm (and, cached, the miss that stores)
                    for _ in range(args.repeat):
                        samples.append(run(query))
                if run is page and not cached:
                    results = client.get("/api/v1/driver/stations/", params).json()["results"]
                    partner_rows += sum(1 for r in results if r["network"] == "partner")
            a, b = percentiles(own), percentiles(both)
            extra = f"  {partner_rows / args.queries:.0f} partner rows/page" if run is page and not cached else ""
            print(
                f"{kind:<24} {a[0]:>12.1f} {a[1]:>7.1f} {a[2]:>7.1f}   {b[0]:>15.1f} {b[1]:>7.1f} {b[2]:>7.1f}"
                f"  (ms; {len(own)} + {len(both)} samples){extra}",
                flush=True,
            )
    print(f"\nload average after: {Path('/proc/loadavg').read_text().strip()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--own", type=int, default=20_000, help="our own locations")
    parser.add_argument("--partner-locations", type=int, default=10_000)
    parser.add_argument("--evses-per-location", type=int, default=5)
    parser.add_argument("--queries", type=int, default=20, help="random points per query kind")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="measure on the kept database (no generation)")
    parser.add_argument("--pull", action="store_true", help="the partner's network pulled over OCPI, not SQL")
    args = parser.parse_args()

    import psycopg

    url = bench_url(server_url(), BENCH_DB)
    try:
        if not args.reuse:
            fresh_database(BENCH_DB)
            with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
                tenant = insert_tenant(cursor, "partner-main", "GEO")
                generate(cursor, tenant, args.own, "GEO")
        django_on(url)
        from apps.roaming.models import RoamingPartner
        from apps.tenants.models import Tenant

        tenant_id = Tenant.objects.get(slug="partner-main").pk
        if not args.reuse:
            setup_django_rows(tenant_id, tariffs=not args.pull)
            partner_id = RoamingPartner.objects.get(tenant_id=tenant_id).pk
            if args.pull:
                pull_over_http(tenant_id, args)
            with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
                if not args.pull:
                    generate_partner(cursor, tenant_id, partner_id, args.partner_locations, args.evses_per_location)
                cursor.execute("ANALYZE")
        from apps.stations.models import PartnerEvse, PartnerLocation

        print(
            f"own locations: {args.own:,}; partner locations: {PartnerLocation.objects.count():,}, "
            f"EVSEs: {PartnerEvse.objects.count():,}",
            flush=True,
        )
        measure(tenant_id, args)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
