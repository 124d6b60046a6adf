"""Celery interfaces: the monthly run for every tenant, receipts after ad hoc sessions, capture reconciliation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from apps.billing import tasks
from apps.billing.models import Invoice, InvoiceKind, Payment, PaymentStatus
from apps.sessions.models import SessionStatus
from apps.tenants.models import Tenant
from tests.billing.factories import ChargingSessionFactory
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory

pytestmark = pytest.mark.django_db


def test_monthly_task_invoices_every_tenant_and_a_rerun_issues_nothing(
    tenant_a: Tenant, tenant_b: Tenant, django_capture_on_commit_callbacks: Any
) -> None:
    for tenant in (tenant_a, tenant_b):
        customer = BusinessCustomerFactory(tenant=tenant)
        token = TokenFactory(tenant=tenant, business_customer=customer)
        ChargingSessionFactory(
            tenant=tenant,
            id_tag=token.uid,
            token=token,
            business_customer=customer,
            started_at=dt.datetime(2026, 2, 10, tzinfo=dt.UTC),
        )

    with django_capture_on_commit_callbacks() as callbacks:
        first = tasks.invoicing_run_month(year=2026, month=2)
    second = tasks.invoicing_run_month(year=2026, month=2)

    assert first == {"issued": 2, "skipped": 0, "failed": 0}
    assert second == {"issued": 0, "skipped": 2, "failed": 0}
    assert len(callbacks) == 2  # one PDF rendering job per issued invoice, queued after commit
    assert sorted(Invoice.objects.values_list("number", flat=True)) == ["ALP-2026-000001", "BET-2026-000001"]


def test_receipt_task_issues_and_queues_the_mail(tenant_a: Tenant, django_capture_on_commit_callbacks: Any) -> None:
    driver = DriverFactory(tenant=tenant_a, email="d@example.com")
    token = TokenFactory(tenant=tenant_a, driver=driver)
    session = ChargingSessionFactory(tenant=tenant_a, id_tag=token.uid, token=token, driver=driver)  # 11.90

    with django_capture_on_commit_callbacks() as callbacks:
        tasks.session_receipt(session.pk)
        tasks.session_receipt(session.pk)

    receipt = Invoice.objects.get(kind=InvoiceKind.RECEIPT)
    assert receipt.total_incl_vat == Decimal("11.90")
    assert len(callbacks) == 2  # PDF rendering + one e-mail delivery; the re-run queues nothing
    assert list(receipt.events.values_list("action", flat=True)) == ["created", "issued", "send_queued"]


@pytest.mark.parametrize("status", [SessionStatus.INVALID, SessionStatus.FAILED])
def test_a_session_that_did_not_complete_gets_no_receipt_and_the_task_ends_quietly(
    tenant_a: Tenant, status: str
) -> None:
    # given an ad hoc driver's session that ended without charging (e.g. refused at StartTransaction)
    driver = DriverFactory(tenant=tenant_a, email="d@example.com")
    token = TokenFactory(tenant=tenant_a, driver=driver)
    session = ChargingSessionFactory(tenant=tenant_a, id_tag=token.uid, token=token, driver=driver, status=status)

    # when its end event's receipt job runs
    tasks.session_receipt(session.pk)

    # then nothing was billed (it raised DoesNotExist before)
    assert not Invoice.objects.exists()


def test_reconcile_task_leaves_unknown_captures_alone_without_a_claim(tenant_a: Tenant) -> None:
    Payment.objects.create(tenant=tenant_a, provider="fiserv", status=PaymentStatus.CAPTURING, merchant_reference="X1")

    assert tasks.capture_reconcile() == 0


def test_a_session_end_delivered_twice_issues_one_receipt_and_queues_one_mail(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.core import events, outbox
    from apps.core.models import OutboxDelivery

    # given an ad hoc driver's session whose end is published (billing's subscriber only)
    monkeypatch.setattr(events, "SUBSCRIBERS", {events.SessionEnded: ["apps.billing.subscribers.session_ended"]})
    driver = DriverFactory(tenant=tenant_a, email="d@example.com")
    token = TokenFactory(tenant=tenant_a, driver=driver)
    session = ChargingSessionFactory(tenant=tenant_a, id_tag=token.uid, token=token, driver=driver)  # 11.90
    events.publish(
        events.SessionEnded(tenant_id=tenant_a.pk, session_id=session.pk, charge_point_id=session.charge_point_id)
    )

    # when the outbox delivers it, and delivers it again (a worker died before it could record the delivery)
    with django_capture_on_commit_callbacks() as callbacks:
        assert outbox.deliver_pending().delivered == 1
        OutboxDelivery.objects.update(state=OutboxDelivery.State.PENDING)
        assert outbox.deliver_pending().delivered == 1

    # then the receipt was issued once, in the delivery itself (no task to lose), and its mail queued once
    receipt = Invoice.objects.get(kind=InvoiceKind.RECEIPT)
    assert receipt.receipt_session_id == session.pk
    assert list(receipt.events.values_list("action", flat=True)) == ["created", "issued", "send_queued"]
    assert len(callbacks) == 2  # PDF rendering + one e-mail delivery
