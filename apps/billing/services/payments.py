"""Payment writes: card pre-authorisation, capture (exactly once), void, refund, hosted page, bank transfers.

Network calls never run inside a database transaction. A capture is claimed first (status `capturing` and
a capture request id, committed with an audit row), then sent; if the answer is lost (timeout, 5xx) the
payment stays `capturing` and `payment_capture_reconcile` looks the transaction up at the gateway before it
sends anything again, so a retried capture captures exactly once.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from django.db import transaction

from apps.billing.models import Invoice, InvoiceStatus, Payment, PaymentEvent, PaymentProviderName, PaymentStatus
from apps.billing.payments.fiserv import fiserv_from_settings
from apps.billing.payments.provider import (
    HostedForm,
    NotificationRejected,
    PaymentProvider,
    ProviderError,
    ProviderResult,
    ProviderUnavailable,
)
from apps.billing.services.invoices import invoice_mark_paid
from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.tenants.models import Tenant, User


def _provider(provider: PaymentProvider | None) -> PaymentProvider:
    return provider if provider is not None else fiserv_from_settings()


def payment_event_record(
    *,
    payment: Payment,
    action: str,
    from_status: str,
    amount: Decimal | None = None,
    request_id: str = "",
    detail: dict[str, Any] | None = None,
) -> PaymentEvent:
    return PaymentEvent.objects.create(
        tenant_id=payment.tenant_id,
        payment=payment,
        action=action,
        from_status=from_status,
        to_status=payment.status,
        amount=amount,
        request_id=request_id,
        detail=detail or {},
    )


def _lock(payment: Payment) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment.pk)


def _transition(
    payment: Payment,
    *,
    status: str,
    action: str,
    fields: dict[str, Any] | None = None,
    amount: Decimal | None = None,
    request_id: str = "",
    detail: dict[str, Any] | None = None,
) -> Payment:
    """Change a payment's status and write its audit row, in one transaction."""
    with transaction.atomic():
        locked = _lock(payment)
        before = locked.status
        locked.status = status
        for name, value in (fields or {}).items():
            setattr(locked, name, value)
        locked.save(update_fields=["status", *(fields or {}), "updated_at"])
        payment_event_record(
            payment=locked, action=action, from_status=before, amount=amount, request_id=request_id, detail=detail
        )
    return locked


def _money(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise ApplicationError(
            "The amount must be positive.", code="invalid_amount", fields={"amount": ["Must be positive."]}
        )
    return amount.quantize(Decimal("0.01"))


def _new_reference(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


# --------------------------------------------------------------------------- card: pre-auth, capture, void, refund


def payment_preauthorize(
    *,
    tenant: Tenant,
    amount: Decimal,
    payment_token: str,
    session_id: int | None = None,
    invoice: Invoice | None = None,
    provider: PaymentProvider | None = None,
) -> Payment:
    """Hold `amount` on a stored card before charging starts."""
    amount = _money(amount)
    gateway = _provider(provider)
    payment = Payment.objects.create(
        tenant=tenant,
        provider=PaymentProviderName.FISERV,
        session_id=session_id,
        invoice=invoice,
        currency=tenant.currency,
        merchant_reference=_new_reference("PA"),
    )
    with transaction.atomic():
        payment_event_record(payment=payment, action="created", from_status="", amount=amount)
    try:
        result = gateway.preauthorize(
            amount=amount,
            currency=payment.currency,
            merchant_reference=payment.merchant_reference,
            payment_token=payment_token,
        )
    except ProviderUnavailable as exc:
        return _transition(
            payment,
            status=PaymentStatus.FAILED,
            action="preauth_unknown",
            detail={"error": str(exc)},
            fields={"last_error": str(exc)},
        )
    except ProviderError as exc:
        return _transition(
            payment,
            status=PaymentStatus.FAILED,
            action="preauth_error",
            detail={"code": exc.code, "error": exc.message},
            fields={"last_error": exc.message},
        )
    if not result.approved:
        return _transition(
            payment,
            status=PaymentStatus.DECLINED,
            action="preauth_declined",
            request_id=result.request_id,
            detail={"status": result.status},
            fields={"provider_reference": result.provider_reference, "last_error": result.status},
        )
    return _transition(
        payment,
        status=PaymentStatus.AUTHORIZED,
        action="preauthorized",
        amount=amount,
        request_id=result.request_id,
        fields={"provider_reference": result.provider_reference, "amount_authorized": result.approved_amount or amount},
        detail={"approval_code": result.approval_code},
    )


def _captured(payment: Payment, result: ProviderResult, amount: Decimal, action: str) -> Payment:
    payment = _transition(
        payment,
        status=PaymentStatus.CAPTURED,
        action=action,
        amount=amount,
        request_id=result.request_id,
        fields={"amount_captured": result.approved_amount or amount, "last_error": ""},
        detail={"state": result.state, "provider_reference": result.provider_reference},
    )
    _settle_invoice(payment)
    return payment


def payment_capture(*, payment: Payment, amount: Decimal, provider: PaymentProvider | None = None) -> Payment:
    """Capture the final amount of a pre-authorisation (at most the held amount). Exactly once.

    Already captured: returns the payment unchanged. A capture whose outcome is unknown (`capturing`) is
    resolved by `payment_capture_reconcile`, never by sending a second capture blindly.
    """
    amount = _money(amount)
    gateway = _provider(provider)
    with transaction.atomic():
        locked = _lock(payment)
        if locked.status == PaymentStatus.CAPTURED:
            return locked
        if locked.status == PaymentStatus.CAPTURING:
            raise Conflict("A capture of this payment is in flight; reconcile it.", code="capture_in_progress")
        if locked.status != PaymentStatus.AUTHORIZED:
            raise Conflict(
                f"Payment is {locked.status}; only authorised payments can be captured.", code="payment_not_capturable"
            )
        if amount > locked.amount_authorized:
            raise ApplicationError(
                f"{amount} exceeds the authorised {locked.amount_authorized}.",
                code="amount_exceeds_authorization",
                fields={"amount": ["Exceeds the authorised amount."]},
            )
        locked.status = PaymentStatus.CAPTURING
        locked.capture_request_id = str(uuid.uuid4())
        locked.amount_captured = Decimal("0.00")
        locked.save(update_fields=["status", "capture_request_id", "updated_at"])
        payment_event_record(
            payment=locked,
            action="capture_claimed",
            from_status=PaymentStatus.AUTHORIZED,
            amount=amount,
            detail={"requested": f"{amount:.2f}"},
        )
    return _send_capture(locked, amount, gateway)


def _send_capture(payment: Payment, amount: Decimal, gateway: PaymentProvider) -> Payment:
    try:
        result = gateway.capture(
            provider_reference=payment.provider_reference,
            amount=amount,
            currency=payment.currency,
            merchant_reference=f"{payment.merchant_reference}-C",
        )
    except ProviderUnavailable as exc:
        payment = _transition(
            payment,
            status=PaymentStatus.CAPTURING,
            action="capture_unknown",
            amount=amount,
            fields={"last_error": str(exc)},
            detail={"error": str(exc)},
        )
        raise ApplicationError(
            "The gateway did not answer; the capture will be reconciled.",
            code="payment_outcome_unknown",
            status_code=503,
        ) from exc
    except ProviderError as exc:
        _transition(
            payment,
            status=PaymentStatus.AUTHORIZED,
            action="capture_error",
            amount=amount,
            fields={"last_error": exc.message},
            detail={"code": exc.code, "error": exc.message},
        )
        raise ApplicationError(f"The gateway refused the capture: {exc.message}", code="payment_refused") from exc
    if not result.approved:
        return _transition(
            payment,
            status=PaymentStatus.AUTHORIZED,
            action="capture_declined",
            amount=amount,
            request_id=result.request_id,
            fields={"last_error": result.status},
            detail={"status": result.status},
        )
    return _captured(payment, result, amount, "captured")


def payment_capture_reconcile(*, payment: Payment, amount: Decimal, provider: PaymentProvider | None = None) -> Payment:
    """Resolve a capture whose answer was lost: ask the gateway first; send the capture again only if it did not
    happen. Safe to run any number of times (the retry job calls it)."""
    amount = _money(amount)
    gateway = _provider(provider)
    payment.refresh_from_db()
    if payment.status != PaymentStatus.CAPTURING:
        return payment
    try:
        found = gateway.status(provider_reference=payment.provider_reference)
    except (ProviderUnavailable, ProviderError) as exc:
        raise ApplicationError(
            "The gateway cannot be asked right now.", code="payment_outcome_unknown", status_code=503
        ) from exc
    if found.state == "CAPTURED":
        return _captured(payment, found, found.approved_amount or amount, "capture_confirmed")
    if found.state != "AUTHORIZED":
        return _transition(
            payment,
            status=PaymentStatus.FAILED,
            action="capture_reconciled_failed",
            detail={"state": found.state, "status": found.status},
            fields={"last_error": found.state},
        )
    with transaction.atomic():
        payment_event_record(
            payment=_lock(payment),
            action="capture_resend",
            from_status=PaymentStatus.CAPTURING,
            amount=amount,
            detail={"state": found.state},
        )
    return _send_capture(payment, amount, gateway)


def payment_void(*, payment: Payment, provider: PaymentProvider | None = None) -> Payment:
    """Release a pre-authorisation (e.g. the session was cancelled)."""
    gateway = _provider(provider)
    payment.refresh_from_db()
    if payment.status == PaymentStatus.VOIDED:
        return payment
    if payment.status != PaymentStatus.AUTHORIZED:
        raise Conflict(
            f"Payment is {payment.status}; only authorised payments can be voided.", code="payment_not_voidable"
        )
    try:
        result = gateway.void(
            provider_reference=payment.provider_reference, merchant_reference=f"{payment.merchant_reference}-V"
        )
    except (ProviderUnavailable, ProviderError) as exc:
        raise ApplicationError(f"The gateway did not void: {exc}", code="payment_refused", status_code=502) from exc
    if not result.approved:
        raise ApplicationError(f"The gateway declined the void: {result.status}", code="payment_declined")
    return _transition(payment, status=PaymentStatus.VOIDED, action="voided", request_id=result.request_id)


def payment_refund(*, payment: Payment, amount: Decimal, provider: PaymentProvider | None = None) -> Payment:
    """Refund part or all of a captured payment."""
    amount = _money(amount)
    gateway = _provider(provider)
    payment.refresh_from_db()
    if (
        payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)
        or payment.provider != PaymentProviderName.FISERV
    ):
        raise Conflict(
            f"Payment is {payment.status}; only captured card payments can be refunded.", code="payment_not_refundable"
        )
    if payment.amount_refunded + amount > payment.amount_captured:
        raise ApplicationError(
            "The refund exceeds what was captured.",
            code="amount_exceeds_capture",
            fields={"amount": ["Exceeds the captured amount minus earlier refunds."]},
        )
    try:
        result = gateway.refund(
            provider_reference=payment.provider_reference,
            amount=amount,
            currency=payment.currency,
            merchant_reference=f"{payment.merchant_reference}-R{uuid.uuid4().hex[:6]}",
        )
    except (ProviderUnavailable, ProviderError) as exc:
        raise ApplicationError(f"The gateway did not refund: {exc}", code="payment_refused", status_code=502) from exc
    if not result.approved:
        raise ApplicationError(f"The gateway declined the refund: {result.status}", code="payment_declined")
    refunded = payment.amount_refunded + amount
    status = PaymentStatus.REFUNDED if refunded == payment.amount_captured else PaymentStatus.CAPTURED
    return _transition(
        payment,
        status=status,
        action="refunded",
        amount=amount,
        request_id=result.request_id,
        fields={"amount_refunded": refunded},
    )


# --------------------------------------------------------------------------- hosted payment page


def payment_hosted_page_start(
    *,
    tenant: Tenant,
    amount: Decimal,
    txntype: str,
    success_url: str,
    fail_url: str,
    notification_url: str,
    session_id: int | None = None,
    invoice: Invoice | None = None,
    provider: PaymentProvider | None = None,
) -> tuple[Payment, HostedForm]:
    """A pending payment and the signed form that sends the driver to the gateway's hosted page."""
    amount = _money(amount)
    gateway = _provider(provider)
    payment = Payment.objects.create(
        tenant=tenant,
        provider=PaymentProviderName.FISERV,
        session_id=session_id,
        invoice=invoice,
        currency=tenant.currency,
        merchant_reference=_new_reference("HP"),
    )
    form = gateway.hosted_payment_form(
        amount=amount,
        currency=payment.currency,
        merchant_reference=payment.merchant_reference,
        txntype=txntype,
        success_url=success_url,
        fail_url=fail_url,
        notification_url=notification_url,
    )
    payment_event_record(
        payment=payment, action="hosted_page", from_status="", amount=amount, detail={"txntype": txntype}
    )
    return payment, form


def payment_notification_handle(*, fields: dict[str, str], provider: PaymentProvider | None = None) -> Payment:
    """The gateway's server-to-server notification: verified, matched to our payment, applied once."""
    gateway = _provider(provider)
    notification = gateway.verify_notification(fields)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(merchant_reference=notification.merchant_reference).first()
        if payment is None:
            raise NotFound("Unknown payment.")
        if notification.currency != payment.currency:
            raise NotificationRejected("currency does not match the payment")
        if payment.status != PaymentStatus.PENDING:
            payment_event_record(
                payment=payment,
                action="notification_repeat",
                from_status=payment.status,
                detail={"status": notification.status},
            )
            return payment
        before = payment.status
        payment.provider_reference = notification.provider_reference
        if not notification.approved:
            payment.status = PaymentStatus.DECLINED
            payment.last_error = notification.status
        elif notification.txntype == "preauth":
            payment.status = PaymentStatus.AUTHORIZED
            payment.amount_authorized = notification.amount
        else:
            payment.status = PaymentStatus.CAPTURED
            payment.amount_captured = notification.amount
        payment.save()
        payment_event_record(
            payment=payment,
            action="notification",
            from_status=before,
            amount=notification.amount,
            detail={"status": notification.status, "txntype": notification.txntype},
        )
    if payment.status == PaymentStatus.CAPTURED:
        _settle_invoice(payment)
    return payment


# --------------------------------------------------------------------------- bank transfer / SEPA


def _settle_invoice(payment: Payment) -> None:
    """Mark the invoice paid once captured money covers it."""
    if payment.invoice_id is None:
        return
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.SENT):
        return
    received = sum(
        (p.amount_captured - p.amount_refunded for p in invoice.payments.filter(status__in=["captured", "refunded"])),
        Decimal("0.00"),
    )
    if received >= invoice.total_incl_vat:
        invoice_mark_paid(invoice=invoice)


def payment_record_bank_transfer(
    *,
    invoice: Invoice,
    amount: Decimal,
    received_on: dt.date,
    bank_reference: str = "",
    actor: User | None = None,
) -> Payment:
    """Finance records money received by bank transfer or SEPA for an invoice."""
    amount = _money(amount)
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PAID):
        raise Conflict(
            f"Invoice {invoice} is {invoice.status}; payments go to issued invoices.", code="invoice_not_payable"
        )
    with transaction.atomic():
        payment = Payment.objects.create(
            tenant_id=invoice.tenant_id,
            provider=PaymentProviderName.BANK_TRANSFER,
            invoice=invoice,
            currency=invoice.currency,
            amount_captured=amount,
            status=PaymentStatus.CAPTURED,
            merchant_reference=_new_reference("BT"),
            bank_reference=bank_reference,
            received_on=received_on,
        )
        payment_event_record(
            payment=payment,
            action="bank_transfer_received",
            from_status="",
            amount=amount,
            detail={"by": actor.pk if actor else None, "reference": bank_reference},
        )
        _settle_invoice(payment)
    return payment


INVOICE_NUMBER = re.compile(r"\b([A-Z0-9]{2,10}-\d{4}-\d{6})\b")


@dataclass
class StatementReport:
    matched: list[str] = field(default_factory=list)  # invoice numbers
    unmatched: list[dict[str, str]] = field(default_factory=list)  # row, reason


def bank_statement_import(*, tenant: Tenant, file: IO[Any], actor: User | None = None) -> StatementReport:
    """Import bank statement lines (CSV: date, amount, reference[, counterparty]); an invoice number in the
    reference matches the line to an invoice. A line already imported (same date, amount, reference) is skipped."""
    raw = file.read()
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        rows = list(csv.DictReader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = "The file is not UTF-8 text." if isinstance(exc, UnicodeDecodeError) else f"Not a CSV file: {exc}."
        raise ApplicationError(f"{reason} Nothing was imported.", code="bad_file", fields={"file": [reason]}) from exc
    report = StatementReport()
    for index, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        try:
            received_on = dt.date.fromisoformat(row.get("date", ""))
            amount = Decimal(row.get("amount", "").replace(",", "."))
        except (ValueError, InvalidOperation):
            report.unmatched.append({"line": str(index), "reason": "bad date or amount"})
            continue
        reference = row.get("reference", "")
        found = INVOICE_NUMBER.search(reference.upper())
        invoice = Invoice.objects.filter(tenant=tenant, number=found.group(1)).first() if found else None
        if invoice is None or amount <= 0:
            report.unmatched.append({"line": str(index), "reason": "no invoice number matched"})
            continue
        if Payment.objects.filter(
            invoice=invoice, bank_reference=reference, received_on=received_on, amount_captured=amount
        ).exists():
            report.unmatched.append({"line": str(index), "reason": "already imported"})
            continue
        try:
            payment_record_bank_transfer(
                invoice=invoice, amount=amount, received_on=received_on, bank_reference=reference, actor=actor
            )
        except ApplicationError as exc:
            report.unmatched.append({"line": str(index), "reason": exc.message})
            continue
        report.matched.append(invoice.number)
    return report


def session_payments_attach(*, receipt: Invoice) -> list[Payment]:
    """The card payments made for a receipt's session (pre-authorised or captured, not yet on an invoice) now
    pay that receipt: attached to it, audited, and the receipt is settled when the captured money covers it."""
    if receipt.receipt_session_id is None:
        return []
    attached = []
    with transaction.atomic():
        payments = (
            Payment.objects.select_for_update()
            .filter(
                tenant_id=receipt.tenant_id,
                session_id=receipt.receipt_session_id,
                invoice__isnull=True,
                status__in=(PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURING, PaymentStatus.CAPTURED),
            )
            .order_by("pk")
        )
        for payment in payments:
            payment.invoice = receipt
            payment.save(update_fields=["invoice", "updated_at"])
            payment_event_record(
                payment=payment,
                action="attached_to_receipt",
                from_status=payment.status,
                detail={"invoice": receipt.number},
            )
            attached.append(payment)
    for payment in attached:
        if payment.status == PaymentStatus.CAPTURED:
            _settle_invoice(payment)
    return attached
