"""A benchmark's own database on the server of DATABASE_URL (search_bench, geo_bench): created fresh, with the
extensions the migrations need, migrated, and tenants inserted by SQL (the generators write millions of rows
with INSERT ... SELECT, not the ORM)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
NOW = "timestamptz '2026-12-01 00:00:00+00'"
EXTENSIONS = ("pg_trgm", "btree_gist", "unaccent", "cube")


def bench_url(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL first: eval $(make stack-up | grep export)")
    return url


def fresh_database(name: str) -> str:
    """Drop and create database `name` on the DATABASE_URL server, migrate it; its URL."""
    import psycopg

    url = bench_url(server_url(), name)
    with psycopg.connect(bench_url(server_url(), "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(url, autocommit=True) as conn:
        for extension in EXTENSIONS:
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    print(f"database {name}: migrating ...", flush=True)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    return url


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(bench_url(server_url(), "postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def insert_tenant(cursor: Any, slug: str, code: str) -> int:
    """A tenant row with every required column (a German operator, party `code`); its id."""
    cursor.execute(
        "INSERT INTO tenants_tenant (created_at, updated_at, name, slug, is_active, logo, primary_colour,"
        " secondary_colour, sender_email, legal_name, address_line, postal_code, city, country, vat_id,"
        " bank_name, iban, bic, currency, timezone, default_vat_rate, ocpi_country_code, ocpi_party_id,"
        " oicp_operator_id, oicp_provider_id, parking_grace_minutes, language)"
        f" VALUES ({NOW}, {NOW}, %s, %s, true, '', '#000000', '#ffffff', '', %s, '', '', '', 'DE', '',"
        " '', '', '', 'EUR', 'Europe/Berlin', 19, 'DE', %s, '', '', 0, 'de') RETURNING id",
        [slug, slug, slug, code],
    )
    row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 of `samples`."""
    q = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    return q[49], q[94], q[98]


def django_on(url: str) -> None:
    """Django set up in this process on the benchmark's database (dev settings unless the environment says)."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import django

    django.setup()
