"""Token CSV import at scale: rows/s and peak memory for N rows (default 100,000), in a throwaway database.

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    DJANGO_SETTINGS_MODULE=evplatform.settings.test .venv/bin/python benchmarks/bench_token_import.py [rows]

Every 100th row is bad (unknown type) and every 250th repeats an earlier uid, so the report path is exercised
too. A second run of the same file measures the all-duplicates case (nothing imported).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as out:
        out.write("uid,type,contract_id,issuer,whitelist,expires_at\n")
        for n in range(rows):
            uid = f"04{(n - 7) if n % 250 == 0 and n else n:012X}"
            kind = "NFC" if n % 100 == 99 else "RFID"
            out.write(f"{uid},{kind},DE-BEN-C{n:08d},Bench,ALLOWED,2030-01-01T00:00:00Z\n")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from apps.customers.models import Token
        from apps.customers.services import token_import_csv
        from apps.tenants.models import Tenant

        tenant = Tenant.objects.create(name="Bench", slug="bench")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tokens.csv"
            write_csv(path, rows)
            size_mb = path.stat().st_size / 1e6
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            for run in ("first", "re-run"):
                started = time.perf_counter()
                with path.open("rb") as handle:
                    report = token_import_csv(tenant=tenant, file=handle)
                elapsed = time.perf_counter() - started
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(
                    f"{run}: {report.rows} rows ({size_mb:.1f} MB) in {elapsed:.2f} s "
                    f"= {report.rows / elapsed:,.0f} rows/s; "
                    f"created {report.created}, refused {report.failed}; peak RSS {rss:.0f} MB "
                    f"(before import {rss_before:.0f} MB)"
                )
            print(f"tokens stored: {Token.objects.count()}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
