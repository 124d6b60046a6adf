"""Search benchmark: p50/p95/p99 of the global search (`apps.search.selectors.search`, what the API and the admin
call) per query kind, next to a naive `ILIKE '%q%'` search over the same columns, in the same run.

    eval $(make stack-up | grep export)
    .venv/bin/python benchmarks/search_bench.py                      # the issue's sizes
    .venv/bin/python benchmarks/search_bench.py --scale 0.1 --keep   # a tenth, database kept
    .venv/bin/python benchmarks/search_bench.py --reuse              # measure again on the kept database

It creates its own database `evp_bench_search` on the server of DATABASE_URL (dropped at the end unless --keep),
migrates it (so the search indexes and generated columns are the migrations' own), and generates the data in SQL
(`INSERT ... SELECT generate_series`): by default 1M sessions, 100k charge points (one EVSE each), 20k locations,
1M tokens, 200k drivers, 10k business customers and 100k invoices in the main tenant, and a tenth of that in a
second tenant (the search must filter it out). Names are built from syllables with umlauts (~27k distinct last
names), streets and cities are German. Then it ANALYZEs and times, per query kind, `--queries` different queries
taken from the data, each run `--repeat` times, as a staff user of the main tenant would send them:

- identifier: a token uid, a charge point identity, a session's CDR id, an EVSE id, a contract id (exact);
- prefix: the first 7 characters of a charge point identity, of a token's visual number;
- misspelt name: a driver's "first last" with one letter of the last name dropped;
- address: "<street> <number> <city>" of a location, street without its "straße";
- free text: two words of a location or business customer name, lower case, without accents.

`--language de` sets the main tenant's language first (the stemmed tier searches in it: migration search 0005);
`--write-cost 1000` times that many single-row inserts of drivers and of locations (new names and streets, one
statement each, in a transaction that is rolled back) before measuring: what the search's triggers and indexes
cost a write; with the stemming indexes of migration search 0005, each round also without them (dropped inside
the rolled-back transaction).

The baseline is what a changelist's default `search_fields` does: per kind, `col ILIKE '%q%' OR ...` over the
same columns (no index can serve it), LIMIT 6 per kind, in one UNION ALL statement.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchdb import (  # benchmarks/benchdb.py
    NOW,
    ROOT,
    bench_url,
    drop_database,
    fresh_database,
    insert_tenant,
    server_url,
)

BENCH_DB = "evp_bench_search"

SYLLABLES = [
    "mül", "ler", "schä", "fer", "bäck", "er", "schmidt", "wag", "ner", "hof", "mann", "berg", "kö", "nig",
    "lö", "we", "jür", "gens", "sen", "ø", "ver", "gård", "krü", "ger", "wolf", "hart", "brand", "stein",
    "rich", "ter",
]  # fmt: skip
FIRST_NAMES = [
    "Jürgen", "Anna", "Lena", "Jonas", "Mia", "Lukas", "Sören", "Zoë", "Hannah", "Felix", "Björn", "Ingrid",
    "Paul", "Marie", "Emil", "Sophie", "Ömer", "Lea", "René", "Chloé",
]  # fmt: skip
STREETS = [
    "Hauptstraße", "Bahnhofstraße", "Görlitzer Straße", "Schillerstraße", "Goethestraße", "Lindenallee",
    "Mühlenweg", "Königsallee", "Friedrichstraße", "Am Marktplatz", "Bergstraße", "Schloßstraße",
    "Gartenstraße", "Waldstraße", "Kirchplatz", "Düsseldorfer Straße",
]  # fmt: skip
CITIES = [
    "Berlin", "München", "Köln", "Düsseldorf", "Nürnberg", "Lübeck", "Göttingen", "Würzburg", "Osnabrück",
    "Saarbrücken", "Mönchengladbach", "Gießen", "Fürth", "Tübingen", "Hamburg", "Leipzig", "Dresden", "Bremen",
]  # fmt: skip
PLACES = ["Ladepark", "Parkhaus", "Autohof", "Supermarkt", "Hotel", "Rathaus", "Bahnhof", "Einkaufszentrum"]
VENDORS = ["Alfen", "ABB", "Wallbox", "Compleo", "Mennekes", "Kostal", "Easee", "Keba"]


def sql_array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def pick(array: list[str], expr: str) -> str:
    return f"({sql_array(array)})[(1 + ({expr}) %% {len(array)})::int]"


LAST_NAME = (
    f"initcap({pick(SYLLABLES, 'g * 7')} || {pick(SYLLABLES, 'g / 30 * 13')} || {pick(SYLLABLES, 'g / 900 * 11')})"
)


def generate(cursor: Any, tenant: int, n: dict[str, int], code: str) -> dict[str, float]:
    """Every row of one tenant, in SQL; returns seconds per table."""
    timings: dict[str, float] = {}

    def run(name: str, sql: str, count: int) -> None:
        started = time.perf_counter()
        cursor.execute(sql, {"tenant": tenant, "n": count})
        timings[name] = round(time.perf_counter() - started, 1)
        print(f"  tenant {tenant} {name}: {count:,} rows in {timings[name]} s", flush=True)

    run(
        "locations",
        f"""INSERT INTO stations_location (created_at, updated_at, tenant_id, name, ocpi_id, address, postal_code, city,
            country, latitude, longitude, timezone, parking_type, publish, opening_24_7)
        SELECT {NOW}, {NOW}, %(tenant)s, {pick(PLACES, "g")} || ' ' || {pick(STREETS, "g / 8")} || ' ' || g,
            '{code}L' || g, {pick(STREETS, "g / 8")} || ' ' || (1 + g %% 180),
            lpad((10000 + (g * 7919) %% 89999)::text, 5, '0'), {pick(CITIES, "g * 31")}, 'DE',
            47 + (g %% 1000) / 200.0, 6 + (g %% 1000) / 111.0, 'Europe/Berlin', '', true, true
        FROM generate_series(1, %(n)s::bigint) g""",
        n["locations"],
    )
    run(
        "charge points",
        f"""INSERT INTO stations_chargepoint (created_at, updated_at, tenant_id, location_id, identity, password_hash,
            registration_status, lenient, vendor, model, serial_number, charge_box_serial_number, firmware_version,
            iccid, imsi, meter_type, meter_serial_number, phases, charging_rate_unit, heartbeat_interval, online,
            connection_id, status, error_code, vendor_error_code, status_info, configuration, local_list_version,
            firmware_status, diagnostics_status, configuration_complete, password_pending, log_status,
            signed_firmware_status, security_profile)
        SELECT {NOW}, {NOW}, %(tenant)s, l0.id + g %% %(locations)s, '{code}-' || lpad(g::text, 6, '0'), '',
            'Accepted', false, {pick(VENDORS, "g")}, 'Model ' || (g %% 12), 'SN' || upper(substr(md5(g::text), 1, 10)),
            'CB' || g, '1.0', '', '', '', '', 3, 'A', 300, false, '', 'Available', '', '', '', '{{}}'::jsonb, 0,
            '', '', true, false, '', '', 1
        FROM generate_series(1, %(n)s::bigint) g,
            (SELECT min(id) AS id FROM stations_location WHERE tenant_id = %(tenant)s) l0""".replace(
            "%(locations)s", str(n["locations"])
        ),
        n["charge_points"],
    )
    run(
        "evses",
        f"""INSERT INTO stations_evse (created_at, updated_at, tenant_id, charge_point_id, connector_id, evse_uid,
            status,
            error_code, vendor_error_code, status_info)
        SELECT {NOW}, {NOW}, %(tenant)s, cp.id, 1, 'DE*{code}*E' || lpad((cp.id - c0.id + 1)::text, 6, '0') || '*1',
            'Available', '', '', ''
        FROM stations_chargepoint cp,
            (SELECT min(id) AS id FROM stations_chargepoint WHERE tenant_id = %(tenant)s) c0
        WHERE cp.tenant_id = %(tenant)s""",
        n["charge_points"],
    )
    run(
        "drivers",
        f"""INSERT INTO customers_driver (created_at, updated_at, tenant_id, first_name, last_name, email, phone,
            language,
            address_line, postal_code, city, country, is_active)
        SELECT {NOW}, {NOW}, %(tenant)s, {pick(FIRST_NAMES, "g * 3")}, {LAST_NAME},
            'driver' || g || '@mail.example', '', 'de', {pick(STREETS, "g")} || ' ' || (1 + g %% 99),
            lpad((10000 + (g * 104729) %% 89999)::text, 5, '0'), {pick(CITIES, "g")}, 'DE', true
        FROM generate_series(1, %(n)s::bigint) g""",
        n["drivers"],
    )
    run(
        "business customers",
        f"""INSERT INTO customers_businesscustomer (created_at, updated_at, tenant_id, name, legal_name, vat_id,
            registration_number, billing_email, billing_address_line, billing_postal_code, billing_city,
            billing_country, payment_method, payment_reference, is_active)
        SELECT {NOW}, {NOW}, %(tenant)s, 'Fuhrpark ' || {LAST_NAME} || ' ' || g, {LAST_NAME} || ' Logistik GmbH',
            'DE' || lpad((100000000 + g)::text, 9, '0'), 'HRB ' || g, 'billing' || g || '@fleet.example',
            {pick(STREETS, "g")} || ' 1', '10115', {pick(CITIES, "g")}, 'DE', 'invoice', '', true
        FROM generate_series(1, %(n)s::bigint) g""",
        n["business_customers"],
    )
    run(
        "tokens",
        f"""INSERT INTO customers_token (created_at, updated_at, tenant_id, uid, type, contract_id, visual_number,
            issuer,
            group_id, valid, whitelist, language, default_profile_type, energy_contract_supplier_name,
            energy_contract_id, country_code, party_id, source, blocked, driver_id)
        SELECT {NOW}, {NOW}, %(tenant)s, upper(substr(md5('{code}' || g), 1, 14)), 'RFID',
            'DE-{code}-C' || lpad(g::text, 8, '0'), 'VN-' || lpad(g::text, 8, '0'), 'Bench', '', true, 'ALLOWED',
            'de', '', '', '', 'DE', 'BCH', 'local', false, d0.id + g %% {n["drivers"]}
        FROM generate_series(1, %(n)s::bigint) g,
            (SELECT min(id) AS id FROM customers_driver WHERE tenant_id = %(tenant)s) d0""",
        n["tokens"],
    )
    run(
        "sessions",
        f"""INSERT INTO charging_chargingsession (created_at, updated_at, tenant_id, charge_point_id, evse_id,
            connector_id,
            id_tag, auth_status, status, started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh, stop_reason,
            stop_id_tag, flags, auth_method, auth_reason, currency, failure_reason, limit_action, limit_outcome,
            limit_reached, suspicious, suspicious_reasons, cdr_ocpi_id, roaming_partner, end_evidence, pricing_error,
            token_id, driver_id)
        SELECT st, st, %(tenant)s, c0.id + k, e0.id + k, 1, upper(substr(md5('{code}' || t), 1, 14)), 'Accepted',
            'completed', st, st + interval '1 hour', g, g + 10000, 10000, 'Local', '', '{{}}', 'WHITELIST', '', 'EUR',
            '', '', '', '', false, '{{}}', '{code}CDR' || g, '', '', '', t0.id + t - 1, NULL
        FROM generate_series(1, %(n)s::bigint) g
        CROSS JOIN (SELECT min(id) AS id FROM stations_chargepoint WHERE tenant_id = %(tenant)s) c0
        CROSS JOIN (SELECT min(id) AS id FROM stations_evse WHERE tenant_id = %(tenant)s) e0
        CROSS JOIN (SELECT min(id) AS id FROM customers_token WHERE tenant_id = %(tenant)s) t0
        CROSS JOIN LATERAL (SELECT (g * 7919) %% {n["charge_points"]} AS k, 1 + (g * 31) %% {n["tokens"]} AS t,
            timestamptz '2023-01-01 00:00:00+00' + g * interval '90 seconds' AS st) v""",
        n["sessions"],
    )
    run(
        "invoices",
        f"""INSERT INTO billing_invoice (created_at, updated_at, tenant_id, kind, status, number, number_year,
            customer_name, customer_address, customer_email, customer_vat_id, period_start, period_end, currency,
            issued_at, total_excl_vat, total_vat, total_incl_vat, vat_breakdown, notes, pdf)
        SELECT {NOW}, {NOW}, %(tenant)s, 'invoice', 'issued', '{code}-2026-' || lpad(g::text, 6, '0'), 2026,
            {pick(FIRST_NAMES, "g * 3")} || ' ' || {LAST_NAME}, {pick(STREETS, "g")} || ' 1, 10115 Berlin',
            'invoice' || g || '@mail.example', '', date '2026-01-01', date '2026-01-31', 'EUR', {NOW}, 10, 1.9, 11.9,
            '[]'::jsonb, '', ''
        FROM generate_series(1, %(n)s::bigint) g""",
        n["invoices"],
    )
    return timings


def sizes(scale: float, args: argparse.Namespace) -> dict[str, int]:
    return {
        "locations": max(1, int(args.charge_points * scale / 5)),
        "charge_points": max(1, int(args.charge_points * scale)),
        "drivers": max(1, int(args.drivers * scale)),
        "business_customers": max(1, int(10_000 * scale)),
        "tokens": max(1, int(args.tokens * scale)),
        "sessions": max(1, int(args.sessions * scale)),
        "invoices": max(1, int(100_000 * scale)),
    }


# --------------------------------------------------------------------------- queries


def drop_letter(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1) if len(word) > 3 else len(word) - 1
    return word[:i] + word[i + 1 :]


def queries(cursor: Any, tenant: int, count: int, rng: random.Random) -> dict[str, list[str]]:
    def sample(sql: str) -> list[Any]:
        cursor.execute(sql + " ORDER BY random() LIMIT %(k)s", {"tenant": tenant, "k": count})
        return cursor.fetchall()

    cursor.execute("SELECT setseed(0.42)")
    identifiers = [r[0] for r in sample("SELECT uid FROM customers_token WHERE tenant_id = %(tenant)s")]
    identifiers += [r[0] for r in sample("SELECT identity FROM stations_chargepoint WHERE tenant_id = %(tenant)s")]
    identifiers += [
        r[0] for r in sample("SELECT cdr_ocpi_id FROM charging_chargingsession WHERE tenant_id = %(tenant)s")
    ]
    identifiers += [r[0] for r in sample("SELECT evse_uid FROM stations_evse WHERE tenant_id = %(tenant)s")]
    identifiers += [r[0] for r in sample("SELECT contract_id FROM customers_token WHERE tenant_id = %(tenant)s")]
    prefixes = [r[0][:7] for r in sample("SELECT identity FROM stations_chargepoint WHERE tenant_id = %(tenant)s")]
    prefixes += [r[0][:7] for r in sample("SELECT visual_number FROM customers_token WHERE tenant_id = %(tenant)s")]
    names = [
        f"{first} {drop_letter(last, rng)}"
        for first, last in sample("SELECT first_name, last_name FROM customers_driver WHERE tenant_id = %(tenant)s")
    ]
    addresses = [
        f"{address.replace('straße', '').replace(' Straße', '')} {city}"
        for address, city in sample("SELECT address, city FROM stations_location WHERE tenant_id = %(tenant)s")
    ]
    phrases = []
    for (name,) in sample("SELECT name FROM stations_location WHERE tenant_id = %(tenant)s") + sample(
        "SELECT name FROM customers_businesscustomer WHERE tenant_id = %(tenant)s"
    ):
        words = name.split()[:2]
        phrases.append(" ".join(words).lower().replace("ü", "u").replace("ö", "o").replace("ä", "a"))
    picked = {
        "identifier": identifiers,
        "prefix": prefixes,
        "misspelt name": names,
        "address": addresses,
        "free text": phrases,
    }
    return {kind: rng.sample(values, min(count, len(values))) for kind, values in picked.items()}


def naive_sql() -> str:
    from apps.search.kinds import KINDS

    columns = {
        "charge_point": ["identity", "serial_number", "charge_box_serial_number", "vendor", "model"],
        "location": ["name", "address", "postal_code", "city", "ocpi_id"],
        "evse": ["evse_uid"],
        "token": ["uid", "visual_number", "contract_id"],
        "driver": ["first_name", "last_name", "email"],
        "business_customer": ["name", "legal_name", "vat_id", "billing_email"],
        "session": ["id_tag", "cdr_ocpi_id"],
        "invoice": ["number", "customer_name"],
    }
    parts = []
    for kind in KINDS:
        condition = " OR ".join(f"t.{c} ILIKE %(like)s" for c in columns[kind.name])
        parts.append(
            f"(SELECT '{kind.name}', t.id FROM {kind.table} t WHERE t.tenant_id = %(tenant)s AND ({condition}) LIMIT 6)"
        )
    return " UNION ALL ".join(parts)


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return q[49], q[94], q[98]


def measure(url: str, tenant: int, args: argparse.Namespace) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from apps.search.selectors import search

    rng = random.Random(42)
    with connection.cursor() as cursor:
        picked = queries(cursor, tenant, args.queries, rng)
    naive = naive_sql()
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    print(
        f"\n{'query kind':<15} {'search p50':>10} {'p95':>8} {'p99':>8}   {'ILIKE p50':>10} {'p95':>8} {'p99':>8}"
        "  found"
    )
    for kind, values in picked.items():
        ours: list[float] = []
        theirs: list[float] = []
        found = 0
        for value in values:
            search(query=value, tenant_ids={tenant})  # warm: plan caches, pages
            for _ in range(args.repeat):
                started = time.perf_counter()
                results = search(query=value, tenant_ids={tenant})
                ours.append((time.perf_counter() - started) * 1000)
            found += bool(results.groups)
            like = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            for _ in range(args.baseline_repeat if args.baseline else 0):
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(naive, {"like": like, "tenant": tenant})
                    cursor.fetchall()
                theirs.append((time.perf_counter() - started) * 1000)
        a = percentiles(ours)
        b = percentiles(theirs) if len(theirs) > 1 else (float("nan"),) * 3
        print(
            f"{kind:<15} {a[0]:>9.1f}  {a[1]:>7.1f}  {a[2]:>7.1f}   {b[0]:>9.1f}  {b[1]:>7.1f}  {b[2]:>7.1f}"
            f"  {found}/{len(values)}  (ms; {len(ours)} / {len(theirs)} samples, e.g. {values[0]!r})",
            flush=True,
        )
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}", flush=True)


def write_cost(url: str, tenant: int, rows: int, rounds: int = 5) -> None:
    """Milliseconds for `rows` single-row INSERTs of drivers, then of locations, each statement on its own (as the
    admin and the API write them), in a transaction rolled back at the end; `rounds` times, every round printed."""
    import psycopg

    drivers = (
        "INSERT INTO customers_driver (created_at, updated_at, tenant_id, first_name, last_name, email, phone,"
        " language, address_line, postal_code, city, country, is_active)"
        " VALUES (now(), now(), %s, %s, %s, %s, '', 'de', %s, '10115', %s, 'DE', true)"
    )
    locations = (
        "INSERT INTO stations_location (created_at, updated_at, tenant_id, name, ocpi_id, address, postal_code, city,"
        " country, latitude, longitude, timezone, parking_type, publish, opening_24_7)"
        " VALUES (now(), now(), %s, %s, %s, %s, '10115', %s, 'DE', 52.5, 13.4, 'Europe/Berlin', '', true, true)"
    )

    def values(table: str, round_: int, i: int) -> list[Any]:
        if table == "drivers":  # a new last name each: every insert adds a word (migration search 0004)
            name, street = f"Neuname{round_}x{i}", f"{STREETS[i % len(STREETS)]} {1 + i % 99}"
            return [tenant, FIRST_NAMES[i % len(FIRST_NAMES)], name, f"w{round_}x{i}@mail.example", street]
        place = f"{PLACES[i % len(PLACES)]} Neustraße{round_}x{i}"
        return [tenant, place, f"WRL{round_}X{i}", f"Neuweg{round_}x{i} {1 + i % 180}"]

    print(f"write cost, {rows:,} single-row inserts each, rolled back (ms):", flush=True)
    with psycopg.connect(url) as conn:
        # the stemming indexes of migration search 0005, if any: each round is timed with them and, in the same
        # rolled-back transaction that drops them first, without them (an A/B under the same load)
        stemming = [
            name for (name,) in conn.execute(r"SELECT relname FROM pg_class WHERE relname LIKE 'search\_%\_stem\_%'")
        ]
        conn.rollback()
        variants = ("with the stemming indexes", "without them") if stemming else ("as migrated",)
        for round_ in range(rounds):
            for variant in variants:
                timings = {}
                with conn.transaction(force_rollback=True), conn.cursor() as cursor:
                    if variant == "without them":
                        cursor.execute("DROP INDEX " + ", ".join(stemming))
                    for table, sql in (("drivers", drivers), ("locations", locations)):
                        started = time.perf_counter()
                        for i in range(rows):
                            cursor.execute(sql, [*values(table, round_, i), CITIES[i % len(CITIES)]])
                        timings[table] = (time.perf_counter() - started) * 1000
                print(
                    f"  round {round_ + 1}, {variant}: " + ", ".join(f"{k} {v:,.0f}" for k, v in timings.items()),
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--charge-points", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--drivers", type=int, default=200_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size (0.1: a tenth)")
    parser.add_argument("--queries", type=int, default=20, help="different queries per query kind")
    parser.add_argument("--repeat", type=int, default=10, help="runs of each query")
    parser.add_argument("--baseline-repeat", type=int, default=2, help="runs of each query, ILIKE baseline")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the ILIKE baseline")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--reuse", action="store_true", help="measure on the kept database (no generation)")
    parser.add_argument("--language", help="set the main tenant's language (en, de, fr) before measuring")
    parser.add_argument("--write-cost", type=int, default=0, help="single-row inserts to time per table (0: none)")
    args = parser.parse_args()

    import psycopg

    url = bench_url(server_url(), BENCH_DB)
    try:
        if not args.reuse:
            fresh_database(BENCH_DB)
            started = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
                for slug, code, scale in (("bench-main", "BCH", args.scale), ("bench-other", "OTH", args.scale / 10)):
                    generate(cursor, insert_tenant(cursor, slug, code), sizes(scale, args), code)
                cursor.execute("ANALYZE")
            print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        with psycopg.connect(url) as conn:
            if args.language:
                conn.execute("UPDATE tenants_tenant SET language = %s WHERE slug = 'bench-main'", [args.language])
            row = conn.execute("SELECT id, language FROM tenants_tenant WHERE slug = 'bench-main'").fetchone()
            counts = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in ("charging_chargingsession", "stations_chargepoint", "customers_token", "customers_driver")
            }
        print("rows (both tenants): " + ", ".join(f"{t} {c:,}" for t, c in counts.items()), flush=True)
        assert row is not None
        print(f"main tenant's language: {row[1]}", flush=True)
        if args.write_cost:
            write_cost(url, row[0], args.write_cost)
        measure(url, row[0], args)
    finally:
        if not args.keep:
            drop_database(BENCH_DB)


if __name__ == "__main__":
    main()
