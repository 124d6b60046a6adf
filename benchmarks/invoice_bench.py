"""Invoice benchmark: issue N invoices (gapless numbers) and render their PDFs; prints throughput and peak RSS.

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/invoice_bench.py --count 300                 # while others work
    .venv/bin/python benchmarks/invoice_bench.py --count 10000 --workers 2   # the full run

It creates its own database `evp_bench_invoice` on the server of DATABASE_URL (dropped at the end unless
--keep), migrates it (so the immutability triggers are in place), creates one tenant with N business
customers, one token each and `--lines` completed sessions per customer, then runs two phases, each in
`--workers` child processes (own database connection each; their peak RSS is read from the child):

1. issue: per customer `invoice_create_draft` (lines built by `invoice_line_from_session`) + `invoice_issue`
   (number from the locked per-tenant sequence row): the same services the monthly run calls;
2. render: `invoice_render_pdf` (weasyprint, the branded template, stored under a temporary MEDIA_ROOT),
   printed next to its floor: weasyprint itself on a minimal one-page HTML, in one process of the same run.

Memory stays bounded whatever N: rows are created, issued and rendered in batches of `BATCH` (keyset pages
of primary keys, worker k takes the rows with pk % workers == k), nothing holds a list of all rows, the
children run with DEBUG off (no query log), and the numbering check is one SQL aggregate. Each worker
reports its peak RSS and its RSS after the first batch, so growth across the run is visible. Progress goes
to stderr as the children work.

Session prices are a fixed synthetic breakdown (ENERGY + TIME + FLAT at 19 % VAT): the benchmark measures
billing, not the tariffs app's pricing engine. At the end it checks in SQL that the numbers are 1..N without
gaps or duplicates and that every invoice has its PDF; it exits 1 if not.
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
BATCH = 200  # rows per keyset page in every phase
PROGRESS_EVERY = 500  # a progress line per worker every this many invoices


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
    """A child on the bench database; its stderr (progress, tracebacks) goes straight to ours."""
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        env=child_env(url, media),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )


def collect(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child failed (exit {proc.returncode}); its traceback is above:\n{out[-2000:]}")
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
    from django.conf import settings

    django.setup()
    settings.DEBUG = False  # no query log growing with every statement


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _progress(phase: str, worker: int, done: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    print(
        f"  [{phase} w{worker}] {done} in {elapsed:.0f} s ({done / elapsed:.1f}/s), RSS {_rss_mb():.0f} MB",
        file=sys.stderr,
        flush=True,
    )


def _my_pages(queryset: Any, worker: int, workers: int) -> Any:
    """Yield lists of at most BATCH primary keys of `queryset` that belong to this worker (pk % workers),
    in pk order, one keyset page at a time."""
    from django.db.models import F

    mine = queryset.alias(slot=F("pk") % workers).filter(slot=worker).order_by("pk")
    last = 0
    while True:
        page = list(mine.filter(pk__gt=last).values_list("pk", flat=True)[:BATCH])
        if not page:
            return
        yield page
        last = page[-1]


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
    start = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
    customers_made = sessions_made = 0
    for first in range(0, count, BATCH):  # one batch of customers, their tokens and sessions at a time
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
                for i in range(first, min(first + BATCH, count))
            ]
        )
        Token.objects.bulk_create(
            [Token(tenant=tenant, uid=f"BENCH{c.pk:08d}", business_customer=c) for c in customers]
        )
        sessions = []
        for offset, customer in enumerate(customers):
            index = first + offset
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
                        # unique per session: (charge point, connector, start, meter start) is a unique key,
                        # and start times repeat every 600 customers
                        meter_start_wh=1_000_000 + index * lines + n,
                        meter_stop_wh=1_022_500 + index * lines + n,
                        energy_wh=22_500,
                    )
                )
        ChargingSession.objects.bulk_create(sessions)
        customers_made += len(customers)
        sessions_made += len(sessions)
    return {"customers": customers_made, "sessions": sessions_made, "peak_mb": _peak_mb()}


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
    issued_at = dt.datetime(2026, 4, 1, 6, 0, tzinfo=dt.UTC)
    started = time.perf_counter()
    done = 0
    rss_first = 0.0
    for page in _my_pages(BusinessCustomer.objects.filter(tenant=tenant), worker, workers):
        tags = dict(Token.objects.filter(business_customer_id__in=page).values_list("business_customer_id", "uid"))
        for customer in BusinessCustomer.objects.filter(pk__in=page).order_by("pk"):
            sessions = list(
                ChargingSession.objects.filter(tenant=tenant, id_tag=tags[customer.pk]).select_related(
                    "charge_point__location", "evse"
                )
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
            if done % PROGRESS_EVERY == 0:
                _progress("issue", worker, done, started)
        rss_first = rss_first or _rss_mb()
    return {
        "worker": worker,
        "issued": done,
        "seconds": time.perf_counter() - started,
        "rss_first_batch_mb": rss_first,
        "rss_end_mb": _rss_mb(),
        "peak_mb": _peak_mb(),
    }


def child_render(worker: int, workers: int) -> dict[str, Any]:
    _setup_django()
    from apps.billing import services
    from apps.billing.models import Invoice
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.get(slug=SLUG)
    started = time.perf_counter()
    pages = 0
    size = 0
    rss_first = 0.0
    for page in _my_pages(Invoice.objects.filter(tenant=tenant), worker, workers):
        for invoice in Invoice.objects.filter(pk__in=page).select_related("tenant", "credited_invoice").order_by("pk"):
            services.invoice_render_pdf(invoice=invoice)
            size += invoice.pdf.size
            pages += 1
            if pages % PROGRESS_EVERY == 0:
                _progress("render", worker, pages, started)
        rss_first = rss_first or _rss_mb()
    return {
        "worker": worker,
        "rendered": pages,
        "bytes": size,
        "seconds": time.perf_counter() - started,
        "rss_first_batch_mb": rss_first,
        "rss_end_mb": _rss_mb(),
        "peak_mb": _peak_mb(),
    }


FLOOR_HTML = (
    "<html><head><style>@page { size: A4; margin: 2cm } body { font-family: DejaVu Sans; font-size: 10pt }"
    "</style></head><body><h1>Invoice</h1><p>One line of text, no table, no image.</p></body></html>"
)


def child_floor(runs: int) -> dict[str, Any]:
    """The floor of the render phase: weasyprint itself on a minimal one-page HTML (same fonts), in this process."""
    _setup_django()
    from weasyprint import HTML

    HTML(string=FLOOR_HTML).write_pdf()  # fonts and caches warm, as in a worker after its first invoice
    started = time.perf_counter()
    for _ in range(runs):
        HTML(string=FLOOR_HTML).write_pdf()
    return {"runs": runs, "ms_per_pdf": (time.perf_counter() - started) * 1000 / runs, "peak_mb": _peak_mb()}


def child_verify(count: int) -> dict[str, Any]:
    """Numbers BEN-2026-000001 .. N, each once: one aggregate over the table, nothing loaded."""
    _setup_django()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*), count(DISTINCT i.number),
                   min(substring(i.number from '^BEN-2026-([0-9]{6})$')::int),
                   max(substring(i.number from '^BEN-2026-([0-9]{6})$')::int),
                   count(*) FILTER (WHERE i.number !~ '^BEN-2026-[0-9]{6}$'),
                   count(*) FILTER (WHERE i.pdf = '')
            FROM billing_invoice i JOIN tenants_tenant t ON t.id = i.tenant_id
            WHERE t.slug = %s
            """,
            [SLUG],
        )
        total, distinct, low, high, malformed, without_pdf = cursor.fetchone()
    return {
        "invoices": total,
        "distinct": distinct,
        "min": low,
        "max": high,
        "malformed": malformed,
        "without_pdf": without_pdf,
        "gapless_unique": total == distinct == count and low == 1 and high == count and malformed == 0,
    }


# --------------------------------------------------------------------------- parent side


def admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(bench_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300, help="invoices to issue and render (default 300)")
    parser.add_argument("--lines", type=int, default=5, help="session lines per invoice (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per phase (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and the PDFs")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL")
    if not base:
        raise SystemExit("DATABASE_URL is not set: eval $(.venv/bin/python scripts/stack.py up | grep export)")
    url = bench_url(base, BENCH_DB)
    admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    admin_execute(base, f'CREATE DATABASE "{BENCH_DB}"')
    media = tempfile.mkdtemp(prefix="invoice-bench-")
    try:
        print(f"load average at start: {_load()}", flush=True)
        collect(spawn(url, media, "migrate"))
        populated = collect(spawn(url, media, "populate", "--count", str(args.count), "--lines", str(args.lines)))
        print(
            f"populated: {populated['customers']} customers, {populated['sessions']} sessions "
            f"(peak RSS {populated['peak_mb']:.0f} MB)",
            flush=True,
        )

        issue_wall, issued = run_children(url, media, "issue", args.workers, [])
        n_issued = sum(r["issued"] for r in issued)
        issue_busy = max(r["seconds"] for r in issued)
        print(
            f"issue:  {n_issued} invoices x {args.lines} lines in {issue_wall:.1f} s wall incl. process start "
            f"({issue_busy:.1f} s issuing = {n_issued / issue_busy:.1f} invoices/s) with {args.workers} worker(s); "
            + "; ".join(
                f"w{r['worker']} RSS {r['rss_first_batch_mb']:.0f} MB after the first batch, "
                f"{r['rss_end_mb']:.0f} MB at the end, peak {r['peak_mb']:.0f} MB"
                for r in issued
            )
            + f"; load {_load()}",
            flush=True,
        )

        render_wall, rendered = run_children(url, media, "render", args.workers, [])
        n_pdf = sum(r["rendered"] for r in rendered)
        per_pdf = sum(r["seconds"] for r in rendered) / max(n_pdf, 1)
        render_busy = max(r["seconds"] for r in rendered)
        avg_kib = sum(r["bytes"] for r in rendered) / max(n_pdf, 1) / 1024
        print(
            f"render: {n_pdf} PDFs in {render_wall:.1f} s wall incl. process start ({render_busy:.1f} s rendering "
            f"= {n_pdf / render_busy:.2f} PDFs/s) ({per_pdf * 1000:.0f} ms per PDF per worker, avg {avg_kib:.0f} "
            "KiB); "
            + "; ".join(
                f"w{r['worker']} RSS {r['rss_first_batch_mb']:.0f} MB after the first batch, "
                f"{r['rss_end_mb']:.0f} MB at the end, peak {r['peak_mb']:.0f} MB"
                for r in rendered
            )
            + f"; load {_load()}",
            flush=True,
        )

        floor = collect(spawn(url, media, "floor", "--count", "30"))
        print(
            f"floor:  weasyprint on a minimal one-page HTML, one process: {floor['ms_per_pdf']:.0f} ms per PDF "
            f"(the invoice: {per_pdf * 1000:.0f} ms per PDF per worker, x{per_pdf * 1000 / floor['ms_per_pdf']:.1f})",
            flush=True,
        )

        total = issue_wall + render_wall
        check = collect(spawn(url, media, "verify", "--count", str(args.count)))
        print(
            f"total:  {args.count} invoices with PDFs in {total:.1f} s end to end (issue + render, wall) = "
            f"{args.count / total:.2f} invoices/s; numbers gapless and unique: {check['gapless_unique']} "
            f"({check['invoices']} invoices, {check['distinct']} distinct numbers, {check['min']}..{check['max']}, "
            f"{check['malformed']} malformed, {check['without_pdf']} without PDF)"
        )
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of the largest child process: {children_peak:.0f} MB; load average at the end: {_load()}")
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
                    "invoices_issued_per_second": round(n_issued / issue_busy, 2),
                    "pdfs_per_second": round(n_pdf / render_busy, 2),
                    "ms_per_pdf_per_worker": round(per_pdf * 1000),
                    "floor_ms_per_minimal_pdf": round(floor["ms_per_pdf"]),
                    "end_to_end_seconds": round(total, 2),
                    "invoices_per_second": round(args.count / total, 3),
                    "peak_rss_mb_per_worker": {
                        "issue": [round(r["peak_mb"]) for r in issued],
                        "render": [round(r["peak_mb"]) for r in rendered],
                    },
                    "peak_child_mb": round(children_peak),
                    "gapless_unique": check["gapless_unique"],
                    "without_pdf": check["without_pdf"],
                }
            )
        )
        if not check["gapless_unique"] or check["without_pdf"]:
            raise SystemExit(1)
    finally:
        if not args.keep:
            admin_execute(base, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            import shutil

            shutil.rmtree(media, ignore_errors=True)
        else:
            print(f"kept: database {BENCH_DB}, PDFs in {media}")


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
    elif args.phase == "floor":
        result = child_floor(args.count)
    else:
        result = child_verify(args.count)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in {"migrate", "populate", "issue", "render", "floor", "verify"}:
        child_main(sys.argv[1:])
    else:
        main()
