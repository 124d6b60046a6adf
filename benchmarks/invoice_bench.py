"""Invoice benchmark: issue N invoices (gapless numbers) and render their PDFs; prints throughput and peak RSS.

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/invoice_bench.py --count 300                 # while others work
    .venv/bin/python benchmarks/invoice_bench.py --count 10000 --workers 2   # the full run (~1 h on 2 cores)

It creates its own database `evp_bench_invoice` on the server of DATABASE_URL (dropped at the end unless
--keep), migrates it (so the immutability triggers are in place), creates one tenant with N business
customers, one token each and `--lines` completed sessions per customer, then runs two phases, each in
`--workers` child processes (own database connection each; their peak RSS is read from the child):

1. issue: per customer `invoice_create_draft` (lines built by `invoice_line_from_session`) + `invoice_issue`
   (number from the locked per-tenant sequence row): the same services the monthly run calls;
2. render: `invoice_render_pdf` (weasyprint, the branded template, stored under a temporary MEDIA_ROOT).

Session prices are a fixed synthetic breakdown (ENERGY + TIME + FLAT at 19 % VAT): the benchmark measures
billing, not the tariffs app's pricing engine. At the end it checks that the numbers are 1..N without gaps.
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
BENCH_DB = "evp_bench_invoice"
SLUG = "bench-invoice"


def bench_url(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def child_env(url: str, media: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    env["DJANGO_SETTINGS_MODULE"] = "evplatform.settings.dev"
    env["PYTHONPATH"] = str(ROOT)
    env["MEDIA_ROOT"] = media
    return env


def spawn(url: str, media: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        env=child_env(url, media),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{out}\n{err}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_children(
    url: str, media: str, phase: str, workers: int, extra: list[str]
) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    procs = [spawn(url, media, phase, "--worker", str(i), "--workers", str(workers), *extra) for i in range(workers)]
    results = [collect(p) for p in procs]
    return time.perf_counter() - started, results


# --------------------------------------------------------------------------- child side


def _setup_django() -> None:
    import django

    django.setup()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_migrate() -> dict[str, Any]:
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return {"peak_mb": _peak_mb()}


def child_populate(count: int, lines: int) -> dict[str, Any]:
    import datetime as dt

    _setup_django()
    from apps.customers.models import BusinessCustomer, Token
    from apps.sessions.models import ChargingSession, SessionStatus
    from apps.stations.models import ChargePoint, Location
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.create(
        name="Bench Charge",
        slug=SLUG,
        legal_name="Bench Charge GmbH",
        address_line="Stromweg 5",
        postal_code="80331",
        city="München",
        vat_id="DE123456789",
        bank_name="Volksbank",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        primary_colour="#C2185B",
        ocpi_country_code="DE",
        ocpi_party_id="BEN",
        sender_email="billing@bench.example",
    )
    location = Location.objects.create(
        tenant=tenant,
        name="Parkhaus Mitte",
        address="Energiestraße 1",
        postal_code="10115",
        city="Berlin",
        latitude=52.52,
        longitude=13.405,
    )
    charge_points = ChargePoint.objects.bulk_create(
        [
            ChargePoint(
                tenant=tenant,
                location=location,
                identity=f"BENCH-{i:03d}",
                meter_type="EM340",
                meter_serial_number=f"SN{i:05d}",
            )
            for i in range(20)
        ]
    )
    customers = BusinessCustomer.objects.bulk_create(
        [
            BusinessCustomer(
                tenant=tenant,
                name=f"Fleet {i:05d}",
                legal_name=f"Fleet {i:05d} GmbH",
                billing_address_line="Hafenstraße 2",
                billing_postal_code="20457",
                billing_city="Hamburg",
                billing_country="DE",
                billing_email=f"ap{i}@fleet.example",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    Token.objects.bulk_create(
        [Token(tenant=tenant, uid=f"BENCH{c.pk:08d}", business_customer=c) for c in customers], batch_size=2000
    )
    start = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
    sessions = []
    for index, customer in enumerate(customers):
        for n in range(lines):
            began = start + dt.timedelta(days=n * 5 % 27, minutes=index % 600)
            sessions.append(
                ChargingSession(
                    tenant=tenant,
                    charge_point=charge_points[(index + n) % len(charge_points)],
                    connector_id=1,
                    id_tag=f"BENCH{customer.pk:08d}",
                    auth_status="Accepted",
                    status=SessionStatus.COMPLETED,
                    started_at=began,
                    stopped_at=began + dt.timedelta(minutes=45),
                    meter_start_wh=1_000_000 + n,
                    meter_stop_wh=1_022_500 + n,
                    energy_wh=22_500,
                )
            )
    ChargingSession.objects.bulk_create(sessions, batch_size=5000)
    return {"customers": len(customers), "sessions": len(sessions), "peak_mb": _peak_mb()}


def _price() -> Any:
    from decimal import Decimal

    from apps.billing.costing import PricedDimension, SessionPrice

    rate = Decimal("19.00")
    parts = [
        ("ENERGY", "8.10", "22.5 kWh at 0.36/kWh"),
        ("TIME", "0.90", "45 min at 1.20/h"),
        ("FLAT", "1.00", "fee 1.00"),
    ]
    return SessionPrice(
        currency="EUR",
        dimensions=tuple(
            PricedDimension(name, text, Decimal(v), rate, (Decimal(v) * Decimal("1.19")).quantize(Decimal("0.01")))
            for name, v, text in parts
        ),
    )


def child_issue(worker: int, workers: int) -> dict[str, Any]:
    import datetime as dt

    _setup_django()
    from apps.billing import services
    from apps.customers.models import BusinessCustomer, Token
    from apps.sessions.models import ChargingSession
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=SLUG)
    price = _price()
    customer_ids = list(BusinessCustomer.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))
    mine = customer_ids[worker::workers]
    issued_at = dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.UTC)
    started = time.perf_counter()
    done = 0
    for customer in BusinessCustomer.objects.filter(pk__in=mine).order_by("pk").iterator(chunk_size=500):
        tag = Token.objects.filter(business_customer=customer).values_list("uid", flat=True).get()
        sessions = list(
            ChargingSession.objects.filter(tenant=tenant, id_tag=tag).select_related("charge_point__location", "evse")
        )
        draft = services.invoice_create_draft(
            tenant=tenant,
            period_start=dt.date(2026, 3, 1),
            period_end=dt.date(2026, 3, 31),
            priced_sessions=[(s, price) for s in sessions],
            business_customer=customer,
        )
        services.invoice_issue(invoice=draft, issued_at=issued_at, render=False)
        done += 1
    return {"worker": worker, "issued": done, "seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}


def child_render(worker: int, workers: int) -> dict[str, Any]:
    _setup_django()
    from apps.billing import services
    from apps.billing.models import Invoice
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=SLUG)
    ids = list(Invoice.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))[worker::workers]
    started = time.perf_counter()
    pages = 0
    size = 0
    for pk in ids:
        invoice = Invoice.objects.select_related("tenant", "credited_invoice").get(pk=pk)
        services.invoice_render_pdf(invoice=invoice)
        size += invoice.pdf.size
        pages += 1
    return {
        "worker": worker,
        "rendered": pages,
        "bytes": size,
        "seconds": time.perf_counter() - started,
        "peak_mb": _peak_mb(),
    }


def child_verify(count: int) -> dict[str, Any]:
    _setup_django()
    from apps.billing.models import Invoice

    numbers = sorted(Invoice.objects.filter(tenant__slug=SLUG).values_list("number", flat=True))
    expected = [f"BEN-2026-{n:06d}" for n in range(1, count + 1)]
    return {"gapless_unique": numbers == expected, "invoices": len(numbers)}


# --------------------------------------------------------------------------- parent side


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(bench_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="invoices to issue and render (default 300)")
    parser.add_argument("--lines", type=int, default=5, help="session lines per invoice (default 5)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per phase (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("DATABASE_URL is not set: eval $(.venv/bin/python scripts/stack.py up | grep export)")
    url = bench_url(base, BENCH_DB)
    admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    admin_execute(base, f'CREATE DATABASE "{BENCH_DB}"')
    media = tempfile.mkdtemp(prefix="invoice-bench-")
    try:
        collect(spawn(url, media, "migrate"))
        populated = collect(spawn(url, media, "populate", "--count", str(args.count), "--lines", str(args.lines)))
        print(f"populated: {populated['customers']} customers, {populated['sessions']} sessions")

        issue_wall, issued = run_children(url, media, "issue", args.workers, [])
        n_issued = sum(r["issued"] for r in issued)
        issue_busy = max(r["seconds"] for r in issued)
        print(
            f"issue:  {n_issued} invoices x {args.lines} lines in {issue_wall:.1f} s wall incl. process start "
            f"({issue_busy:.1f} s issuing = {n_issued / issue_busy:.1f} invoices/s) with {args.workers} worker(s); "
            f"peak RSS per worker {max(r['peak_mb'] for r in issued):.0f} MB"
        )

        render_wall, rendered = run_children(url, media, "render", args.workers, [])
        n_pdf = sum(r["rendered"] for r in rendered)
        per_pdf = sum(r["seconds"] for r in rendered) / max(n_pdf, 1)
        render_busy = max(r["seconds"] for r in rendered)
        avg_kib = sum(r["bytes"] for r in rendered) / max(n_pdf, 1) / 1024
        print(
            f"render: {n_pdf} PDFs in {render_wall:.1f} s wall incl. process start ({render_busy:.1f} s rendering "
            f"= {n_pdf / render_busy:.2f} PDFs/s) "
            f"({per_pdf:.3f} s per PDF per worker, avg {avg_kib:.0f} KiB); "
            f"peak RSS per worker {max(r['peak_mb'] for r in rendered):.0f} MB"
        )

        total = issue_wall + render_wall
        check = collect(spawn(url, media, "verify", "--count", str(args.count)))
        print(
            f"total:  {args.count} invoices with PDFs in {total:.1f} s = {args.count / total:.2f} invoices/s; "
            f"numbers gapless and unique: {check['gapless_unique']}"
        )
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of the largest child process: {children_peak:.0f} MB")
        print(
            json.dumps(
                {
                    "count": args.count,
                    "lines": args.lines,
                    "workers": args.workers,
                    "issue_seconds": round(issue_wall, 2),
                    "render_seconds": round(render_wall, 2),
                    "issue_busy_seconds": round(issue_busy, 2),
                    "render_busy_seconds": round(render_busy, 2),
                    "invoices_per_second": round(args.count / total, 3),
                    "peak_child_mb": round(children_peak),
                    "gapless_unique": check["gapless_unique"],
                }
            )
        )
    finally:
        if not args.keep:
            admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        import shutil

        shutil.rmtree(media, ignore_errors=True)


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase")
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--lines", type=int, default=5)
    args = parser.parse_args(argv)
    if args.phase == "migrate":
        result = child_migrate()
    elif args.phase == "populate":
        result = child_populate(args.count, args.lines)
    elif args.phase == "issue":
        result = child_issue(args.worker, args.workers)
    elif args.phase == "render":
        result = child_render(args.worker, args.workers)
    else:
        result = child_verify(args.count)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in {"migrate", "populate", "issue", "render", "verify"}:
        child_main(sys.argv[1:])
    else:
        main()
