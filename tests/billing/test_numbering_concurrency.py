"""Two workers issue invoices of one tenant at the same moment, each on its own database connection:
the numbers come out gapless and unique (the sequence row is locked FOR UPDATE in the issuing transaction)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections

from apps.billing import services
from apps.billing.models import Invoice, InvoiceNumberSequence
from apps.tenants.models import Tenant
from tests.billing.factories import draft_invoice
from tests.tenants.factories import TenantFactory

ISSUED_AT = dt.datetime(2026, 5, 2, 12, 0, tzinfo=dt.UTC)
PER_WORKER = 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_issuing_leaves_no_gap_and_no_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    # given 30 committed drafts of one tenant, split between two workers
    tenant: Tenant = TenantFactory(slug="conc", ocpi_country_code="DE", ocpi_party_id="VLT")
    drafts = [draft_invoice(tenant).pk for _ in range(2 * PER_WORKER)]
    batches = [drafts[0::2], drafts[1::2]]
    start = threading.Barrier(2)
    # widen the window between reading and writing the counter, so the workers really overlap
    original_save = InvoiceNumberSequence.save

    def slow_save(self: InvoiceNumberSequence, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.02)
        original_save(self, *args, **kwargs)

    monkeypatch.setattr(InvoiceNumberSequence, "save", slow_save)
    errors: list[BaseException] = []
    backends: list[int] = []

    def worker(ids: list[int]) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.append(cursor.fetchone()[0])
            start.wait()
            for pk in ids:
                services.invoice_issue(invoice=Invoice.objects.get(pk=pk), issued_at=ISSUED_AT, render=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    # when both issue at once
    threads = [threading.Thread(target=worker, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then every number 1..30 was used exactly once
    assert errors == []
    assert len(set(backends)) == 2  # really two database sessions
    numbers = sorted(Invoice.objects.filter(tenant=tenant).values_list("number", flat=True))
    assert numbers == [f"VLT-2026-{n:06d}" for n in range(1, 2 * PER_WORKER + 1)]
    assert InvoiceNumberSequence.objects.get(tenant=tenant, year=2026).last_number == 2 * PER_WORKER
