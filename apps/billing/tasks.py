"""Celery interfaces of billing: take ids, load, call a service. Each may run twice without harm."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from celery import shared_task
from django.utils import timezone

from apps.billing import services
from apps.billing.models import Invoice, InvoiceStatus, Payment, PaymentStatus
from apps.core.errors import ApplicationError
from apps.core.metrics import timed_job
from apps.sessions.models import ChargingSession
from apps.tenants.models import Tenant, User

logger = logging.getLogger(__name__)


@shared_task(name="billing.invoicing_run_month")
def invoicing_run_month(
    tenant_id: int | None = None, year: int | None = None, month: int | None = None
) -> dict[str, int]:
    """Invoice the given month (default: the previous month in each tenant's time zone) for one or every tenant."""
    tenants = Tenant.objects.filter(is_active=True)
    if tenant_id is not None:
        tenants = tenants.filter(pk=tenant_id)
    summary = {"issued": 0, "skipped": 0, "failed": 0}
    for tenant in tenants:
        if year is None or month is None:
            today = timezone.now().astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date()
            last = today.replace(day=1) - dt.timedelta(days=1)
            run_year, run_month = last.year, last.month
        else:
            run_year, run_month = year, month
        with timed_job("invoicing"):
            report = services.invoicing_run_month(tenant=tenant, year=run_year, month=run_month)
        summary["issued"] += len(report.issued)
        summary["skipped"] += report.skipped_existing
        summary["failed"] += len(report.failed)
        if report.failed or report.unpriced_sessions:
            logger.warning(
                "invoicing %s %d-%02d: failed %s, unpriced %s",
                tenant.slug,
                run_year,
                run_month,
                report.failed,
                report.unpriced_sessions,
            )
    return summary


@shared_task(name="billing.invoice_render_pdf", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invoice_render_pdf(invoice_id: int) -> None:
    invoice = Invoice.objects.select_related("tenant", "credited_invoice").filter(pk=invoice_id).first()
    if invoice is None or invoice.status == InvoiceStatus.DRAFT or invoice.pdf:
        return
    services.invoice_render_pdf(invoice=invoice)


@shared_task(name="billing.invoice_deliver_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invoice_deliver_email(invoice_id: int, actor_id: int | None = None) -> None:
    invoice = Invoice.objects.select_related("tenant", "credited_invoice").filter(pk=invoice_id).first()
    if invoice is None or invoice.sent_at is not None:  # already delivered: a re-run sends nothing twice
        return
    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    services.invoice_deliver_email(invoice=invoice, actor=actor)


@shared_task(name="billing.session_receipt")
def session_receipt(session_id: int, send: bool = True) -> None:
    """After an ad hoc session ends: its receipt, e-mailed when we know the driver's address."""
    session = ChargingSession.objects.select_related("tenant").filter(pk=session_id).first()
    if session is None:
        return
    try:
        receipt = services.session_receipt_issue(session=session)
    except ApplicationError as exc:
        logger.warning("no receipt for session %s: %s", session_id, exc.message)
        return
    if receipt is None or not send or not receipt.customer_email:
        return
    if receipt.sent_at is None and not receipt.events.filter(action="send_queued").exists():
        services.invoice_send(invoice=receipt)


@shared_task(name="billing.capture_reconcile")
def capture_reconcile() -> int:
    """Resolve captures whose gateway answer was lost (status `capturing`)."""
    done = 0
    for payment in Payment.objects.filter(status=PaymentStatus.CAPTURING):
        amount = (
            payment.events.filter(action="capture_claimed").order_by("-id").values_list("amount", flat=True).first()
        )
        if amount is None:
            continue
        try:
            services.payment_capture_reconcile(payment=payment, amount=amount)
            done += 1
        except ApplicationError as exc:
            logger.warning("capture %s still unresolved: %s", payment.merchant_reference, exc.message)
    return done


@shared_task(name="billing.partner_cdr_received")
def partner_cdr_received(cdr_id: int) -> dict[str, str | int | None]:
    """A CDR another CPO sent for our driver's session (eMSP; the CDR receiver enqueues this on commit): check it
    against the CPO's tariff, then bill it (receipt now, monthly invoice later, or a credit CDR's reversal). Runs
    twice without harm (the receipt and the reversal are idempotent). A CDR billing refuses is logged and keeps its
    review; it is not retried (the refusal does not go away by itself)."""
    from apps.sessions.models import PartnerCdr
    from apps.sessions.reconciliation import partner_cdr_reconcile

    cdr = PartnerCdr.objects.filter(pk=cdr_id).first()
    if cdr is None:
        return {"review": None, "invoice": None}
    cdr = partner_cdr_reconcile(cdr=cdr)
    try:
        invoice = services.partner_cdr_bill(cdr=cdr)
    except ApplicationError as exc:
        logger.warning("partner CDR %s (%s) not billed: %s", cdr.pk, cdr.ocpi_id, exc.message)
        return {"review": cdr.review, "invoice": None, "error": exc.code}
    return {"review": cdr.review, "invoice": invoice.pk if invoice is not None else None}
