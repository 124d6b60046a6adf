"""Invoice writes: drafts, issuing (gapless numbering), void, credit notes, documents, delivery, the monthly run."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from apps.billing import costing
from apps.billing.costing import PricedDimension, SessionPrice, vat_summary
from apps.billing.lines import (
    invoice_fee_line,
    invoice_line_from_partner_cdr,
    invoice_line_from_session,
    line_vat_parts,
)
from apps.billing.models import (
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceLine,
    InvoiceNumberSequence,
    InvoiceStatus,
)
from apps.core.deletion import ensure_deletable
from apps.core.errors import ApplicationError, Conflict
from apps.customers.models import BusinessCustomer, Driver
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, PartnerCdr, SessionStatus
from apps.tenants.models import Tenant, User

logger = logging.getLogger(__name__)

PAYMENT_TERMS_DAYS = 14
PricedSession = tuple[ChargingSession, SessionPrice]


def invoice_event_record(
    *, invoice: Invoice, action: str, from_status: str, actor: User | None = None, detail: dict[str, Any] | None = None
) -> InvoiceEvent:
    return InvoiceEvent.objects.create(
        tenant_id=invoice.tenant_id,
        invoice=invoice,
        invoice_ref=invoice.pk,
        action=action,
        from_status=from_status,
        to_status=invoice.status,
        actor=actor,
        detail=detail or {},
    )


def _customer_snapshot(*, business_customer: BusinessCustomer | None, driver: Driver | None) -> dict[str, str]:
    if business_customer is not None:
        bc = business_customer
        address = "\n".join(
            x
            for x in (
                bc.billing_address_line,
                f"{bc.billing_postal_code} {bc.billing_city}".strip(),
                bc.billing_country,
            )
            if x
        )
        return {
            "customer_name": bc.legal_name or bc.name,
            "customer_address": address,
            "customer_email": bc.billing_email,
            "customer_vat_id": bc.vat_id,
        }
    if driver is not None:
        address = "\n".join(
            x for x in (driver.address_line, f"{driver.postal_code} {driver.city}".strip(), driver.country) if x
        )
        return {
            "customer_name": str(driver) or driver.email,
            "customer_address": address,
            "customer_email": driver.email,
            "customer_vat_id": "",
        }
    return {"customer_name": "Ad hoc customer", "customer_address": "", "customer_email": "", "customer_vat_id": ""}


def _set_totals(invoice: Invoice, lines: Sequence[InvoiceLine]) -> None:
    """Totals are the sums of the lines (so an invoice equals its sessions' costs to the cent); VAT per rate too."""
    invoice.total_excl_vat = sum((Decimal(x.total_excl_vat) for x in lines), Decimal("0.00"))
    invoice.total_incl_vat = sum((Decimal(x.total_incl_vat) for x in lines), Decimal("0.00"))
    invoice.total_vat = invoice.total_incl_vat - invoice.total_excl_vat
    invoice.vat_breakdown = vat_summary(part for line in lines for part in line_vat_parts(line))


def invoice_create_draft(
    *,
    tenant: Tenant,
    period_start: dt.date,
    period_end: dt.date,
    priced_sessions: Sequence[PricedSession],
    kind: str = InvoiceKind.INVOICE,
    business_customer: BusinessCustomer | None = None,
    driver: Driver | None = None,
    receipt_session_id: int | None = None,
    fees: Sequence[tuple[str, PricedDimension]] = (),
    actor: User | None = None,
    partner_cdrs: Sequence[Any] = (),
    receipt_partner_cdr_id: int | None = None,
) -> Invoice:
    """A draft with one line per session, built by `invoice_line_from_session`, and one per roaming CDR
    (`partner_cdrs`: (PartnerCdr, RetailPrice, RetailTerms) from `services.roaming.billable_partner_cdr`, built by
    `invoice_line_from_partner_cdr`), in the order they started. Raises Conflict on a duplicate."""
    for customer in (business_customer, driver):
        if customer is not None and customer.tenant_id != tenant.pk:
            raise ApplicationError("The customer belongs to another tenant.", code="wrong_tenant")
    for session, price in priced_sessions:
        if session.tenant_id != tenant.pk:
            raise ApplicationError(f"Session {session.pk} belongs to another tenant.", code="wrong_tenant")
        if price.currency != tenant.currency:
            raise ApplicationError(
                f"Session {session.pk} is priced in {price.currency}, the tenant bills in {tenant.currency}.",
                code="currency_mismatch",
            )
    for cdr, retail_price, _ in partner_cdrs:
        if cdr.tenant_id != tenant.pk:
            raise ApplicationError(f"Partner CDR {cdr.pk} belongs to another tenant.", code="wrong_tenant")
        if retail_price.currency != tenant.currency:
            raise ApplicationError(
                f"Partner CDR {cdr.ocpi_id} is in {retail_price.currency}, the tenant bills in {tenant.currency}.",
                code="currency_mismatch",
            )
    if period_end < period_start:
        raise ApplicationError("period_end is before period_start.", code="invalid_period")
    invoice = Invoice(
        tenant=tenant,
        kind=kind,
        business_customer=business_customer,
        driver=driver,
        period_start=period_start,
        period_end=period_end,
        receipt_session_id=receipt_session_id,
        receipt_partner_cdr_id=receipt_partner_cdr_id,
        currency=tenant.currency,
        **_customer_snapshot(business_customer=business_customer, driver=driver),
    )
    lines = [
        invoice_line_from_session(session=session, price=price, position=0)
        for session, price in sorted(priced_sessions, key=lambda sp: (sp[0].started_at, sp[0].pk))
    ]
    lines += [
        invoice_line_from_partner_cdr(
            cdr=cdr, price=retail_price, vat_rate=terms.vat_rate, time_zone=tenant.timezone, position=0
        )
        for cdr, retail_price, terms in sorted(partner_cdrs, key=lambda c: (c[0].start_date_time, c[0].pk))
    ]
    lines.sort(key=lambda line: line.started_at.timestamp() if line.started_at else 0.0)  # stable: ours first on a tie
    for index, line in enumerate(lines, 1):
        line.position = index
    lines += [
        invoice_fee_line(description=description, price=fee, position=len(lines) + index)
        for index, (description, fee) in enumerate(fees, 1)
    ]
    _set_totals(invoice, lines)
    try:
        with transaction.atomic():
            invoice.save()
            for line in lines:
                line.invoice = invoice
            InvoiceLine.objects.bulk_create(lines)
            invoice_event_record(invoice=invoice, action="created", from_status="", actor=actor)
    except IntegrityError as exc:
        raise Conflict("An invoice for this customer and period exists.", code="invoice_exists") from exc
    return invoice


def _next_number(*, tenant: Tenant, year: int) -> str:
    """The next gapless number of `tenant` in `year`: the sequence row is locked until the caller commits."""
    InvoiceNumberSequence.objects.bulk_create(
        [InvoiceNumberSequence(tenant=tenant, year=year, prefix=_prefix(tenant))], ignore_conflicts=True
    )
    sequence = InvoiceNumberSequence.objects.select_for_update().get(tenant=tenant, year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return f"{sequence.prefix}-{year}-{sequence.last_number:06d}"


def _prefix(tenant: Tenant) -> str:
    return (tenant.ocpi_party_id or tenant.slug[:3]).upper()


def _lock(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=invoice.pk)


def _render_after_commit(invoice_id: int) -> None:
    from apps.billing import tasks

    transaction.on_commit(lambda: tasks.invoice_render_pdf.delay(invoice_id))


@transaction.atomic
def invoice_issue(
    *, invoice: Invoice, actor: User | None = None, issued_at: dt.datetime | None = None, render: bool = True
) -> Invoice:
    """Give a draft its number and make it immutable. Numbers are gapless per tenant and year.

    The number sequence row is locked (SELECT ... FOR UPDATE) in this transaction, so concurrent issuers
    queue on it; a rolled-back issue also rolls back its number, so no gap appears.
    """
    invoice = _lock(invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise Conflict(f"Invoice {invoice} is already {invoice.status}.", code="invoice_not_draft")
    if not invoice.lines.exists() and invoice.kind != InvoiceKind.CREDIT_NOTE:
        raise ApplicationError("An invoice without lines cannot be issued.", code="invoice_empty")
    tenant = invoice.tenant
    issued_at = issued_at or timezone.now()
    local = issued_at.astimezone(zoneinfo.ZoneInfo(tenant.timezone))
    invoice.number = _next_number(tenant=tenant, year=local.year)
    invoice.number_year = local.year
    invoice.issued_at = issued_at
    invoice.due_date = local.date() + dt.timedelta(days=PAYMENT_TERMS_DAYS)
    invoice.status = InvoiceStatus.ISSUED
    invoice.save(update_fields=["number", "number_year", "issued_at", "due_date", "status", "updated_at"])
    invoice_event_record(
        invoice=invoice,
        action="issued",
        from_status=InvoiceStatus.DRAFT,
        actor=actor,
        detail={"number": invoice.number},
    )
    if render:
        _render_after_commit(invoice.pk)
    return invoice


@transaction.atomic
def invoice_delete_draft(*, invoice: Invoice, actor: User | None = None) -> None:
    """Delete a draft and its lines (copies, nothing was billed yet). Its audit events stay, with a "deleted" one
    that keeps what the draft was; their link to the invoice is cleared (`InvoiceEvent.invoice_ref` keeps the id)."""
    invoice = _lock(invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise Conflict("Only drafts can be deleted; void or credit an issued invoice.", code="invoice_not_draft")
    ensure_deletable(invoice, ignore=(InvoiceLine,))
    invoice_event_record(
        invoice=invoice,
        action="deleted",
        from_status=invoice.status,
        actor=actor,
        detail={
            "customer_name": invoice.customer_name,
            "period_start": invoice.period_start.isoformat(),
            "period_end": invoice.period_end.isoformat(),
            "lines": invoice.lines.count(),
            "total_incl_vat": str(invoice.total_incl_vat),
            "currency": invoice.currency,
        },
    )
    invoice.lines.all().delete()
    invoice.delete()


@transaction.atomic
def invoice_void(*, invoice: Invoice, reason: str, actor: User | None = None) -> Invoice:
    """Cancel an issued, unpaid invoice (its number stays used: no gap)."""
    invoice = _lock(invoice)
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.SENT):
        raise Conflict(
            f"Invoice {invoice} is {invoice.status}; only issued or sent invoices can be voided.",
            code="invoice_not_voidable",
        )
    if invoice.payments.filter(amount_captured__gt=0).exists():
        raise Conflict("Money was received for this invoice; issue a credit note instead.", code="invoice_has_payments")
    before = invoice.status
    invoice.status = InvoiceStatus.VOID
    invoice.save(update_fields=["status", "updated_at"])
    invoice_event_record(invoice=invoice, action="voided", from_status=before, actor=actor, detail={"reason": reason})
    return invoice


def _credited_line_ids(invoice: Invoice) -> set[int]:
    """Lines of `invoice` reversed by a credit note that stands (not void)."""
    return set(
        InvoiceLine.objects.filter(credits_line__invoice=invoice)
        .exclude(invoice__status=InvoiceStatus.VOID)
        .values_list("credits_line_id", flat=True)
    )


@transaction.atomic
def invoice_credit_note_create(
    *, invoice: Invoice, reason: str, positions: Sequence[int] | None = None, actor: User | None = None
) -> Invoice:
    """A credit note reversing lines of an issued invoice, issued at once: the lines at `positions`, or every line
    not credited yet. The original becomes `credited` once all its lines are; a partial credit note leaves its
    status as it was and records which lines it reversed.

    Refused, with nothing changed: a draft, void, credit note or fully credited invoice (409); positions the
    invoice does not have or that are credited already (400)."""
    original = _lock(invoice)
    if original.kind == InvoiceKind.CREDIT_NOTE or original.status in (
        InvoiceStatus.DRAFT,
        InvoiceStatus.VOID,
        InvoiceStatus.CREDITED,
    ):
        raise Conflict(f"Invoice {original} ({original.status}) cannot be credited.", code="invoice_not_creditable")
    originals = list(original.lines.all())
    credited = _credited_line_ids(original)
    if positions is None:
        chosen = [line for line in originals if line.pk not in credited]
    else:
        by_position = {line.position: line for line in originals}
        wanted = sorted(set(positions))
        unknown = [p for p in wanted if p not in by_position]
        again = [p for p in wanted if p in by_position and by_position[p].pk in credited]
        problems = [f"Invoice {original} has no line {p}." for p in unknown]
        problems += [f"Line {p} of invoice {original} is credited already." for p in again]
        if problems or not wanted:
            raise ApplicationError(
                problems[0] if problems else "Give at least one line position.",
                code="invalid_positions",
                fields={"positions": problems or ["Give at least one line position."]},
            )
        chosen = [by_position[p] for p in wanted]
    if not chosen:
        raise Conflict(f"Every line of invoice {original} is credited already.", code="invoice_not_creditable")
    full = len(credited) + len(chosen) == len(originals)
    note = Invoice.objects.create(
        tenant=original.tenant,
        kind=InvoiceKind.CREDIT_NOTE,
        business_customer=original.business_customer,
        driver=original.driver,
        customer_name=original.customer_name,
        customer_address=original.customer_address,
        customer_email=original.customer_email,
        customer_vat_id=original.customer_vat_id,
        period_start=original.period_start,
        period_end=original.period_end,
        credited_invoice=original,
        currency=original.currency,
        notes=(
            f"Credit note for invoice {original.number}: {reason}"
            if positions is None
            else f"Credit note for invoice {original.number}, lines {', '.join(str(x.position) for x in chosen)}: "
            f"{reason}"
        ),
    )
    lines = []
    for number, source in enumerate(chosen, 1):
        line = copy.copy(source)  # the original line, negated
        line.pk = None
        line.invoice = note
        line.position = number
        line.credits_line = source
        line.total_excl_vat = -line.total_excl_vat
        line.total_vat = -line.total_vat
        line.total_incl_vat = -line.total_incl_vat
        if line.cpo_cost_excl_vat is not None:  # roaming: the reversed line reverses the CPO's cost (the margin)
            line.cpo_cost_excl_vat = -line.cpo_cost_excl_vat
        line.components = [
            {**c, "excl_vat": f"{-Decimal(c['excl_vat']):.2f}", "incl_vat": f"{-Decimal(c['incl_vat']):.2f}"}
            for c in line.components
        ]
        lines.append(line)
    InvoiceLine.objects.bulk_create(lines)
    _set_totals(note, lines)
    note.save(update_fields=["total_excl_vat", "total_vat", "total_incl_vat", "vat_breakdown"])
    detail = {"reason": reason, "credit_note_id": note.pk, "positions": [x.position for x in chosen]}
    invoice_event_record(invoice=note, action="created", from_status="", actor=actor, detail={"reason": reason})
    before = original.status
    if full:
        original.status = InvoiceStatus.CREDITED
        original.save(update_fields=["status", "updated_at"])
    invoice_event_record(
        invoice=original,
        action="credited" if full else "partially_credited",
        from_status=before,
        actor=actor,
        detail=detail,
    )
    return invoice_issue(invoice=note, actor=actor)


def invoice_update_draft(*, invoice: Invoice, **changes: Any) -> Invoice:
    """Change a draft's notes or due date; an issued invoice refuses every change."""
    with transaction.atomic():
        invoice = _lock(invoice)
        if invoice.status != InvoiceStatus.DRAFT:
            raise Conflict(f"Invoice {invoice} is issued and immutable; use a credit note.", code="invoice_immutable")
        allowed = {"notes", "due_date"}
        unknown = set(changes) - allowed
        if unknown:
            raise ApplicationError(f"Cannot change {', '.join(sorted(unknown))} of an invoice.", code="invalid")
        for name, value in changes.items():
            setattr(invoice, name, value)
        invoice.save(update_fields=[*changes, "updated_at"])
    return invoice


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: User | None = None, paid_at: dt.datetime | None = None) -> Invoice:
    invoice = _lock(invoice)
    if invoice.status == InvoiceStatus.PAID:
        return invoice
    if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.SENT):
        raise Conflict(f"Invoice {invoice} is {invoice.status} and cannot be paid.", code="invoice_not_payable")
    before = invoice.status
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = paid_at or timezone.now()
    invoice.save(update_fields=["status", "paid_at", "updated_at"])
    invoice_event_record(invoice=invoice, action="paid", from_status=before, actor=actor)
    return invoice


# --------------------------------------------------------------------------- documents and delivery


def invoice_render_pdf(*, invoice: Invoice) -> Invoice:
    """Render the PDF and keep it with the invoice (re-rendering an issued invoice gives the same content)."""
    from apps.billing.documents import render_invoice_pdf

    if invoice.status == InvoiceStatus.DRAFT:
        raise Conflict("Drafts have no PDF; issue the invoice first.", code="invoice_not_issued")
    pdf = render_invoice_pdf(invoice)
    invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(pdf), save=False)
    Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice.pdf.name)
    return invoice


def invoice_pdf_bytes(*, invoice: Invoice) -> bytes:
    """The stored PDF, rendering it first if the background job has not yet."""
    if not invoice.pdf:
        invoice_render_pdf(invoice=invoice)
    with invoice.pdf.open("rb") as handle:
        data: bytes = handle.read()
    return data


def invoice_send(*, invoice: Invoice, actor: User | None = None) -> Invoice:
    """Queue the e-mail delivery (after commit)."""
    from apps.billing import tasks

    if invoice.status == InvoiceStatus.DRAFT or invoice.status == InvoiceStatus.VOID:
        raise Conflict(f"Invoice {invoice} is {invoice.status} and cannot be sent.", code="invoice_not_sendable")
    if not invoice.customer_email:
        raise ApplicationError("The customer has no e-mail address.", code="no_recipient")
    invoice_id = invoice.pk
    actor_id = actor.pk if actor is not None else None
    with transaction.atomic():
        invoice_event_record(
            invoice=invoice,
            action="send_queued",
            from_status=invoice.status,
            actor=actor,
            detail={"to": invoice.customer_email},
        )
        transaction.on_commit(lambda: tasks.invoice_deliver_email.delay(invoice_id, actor_id))
    return invoice


def invoice_deliver_email(*, invoice: Invoice, actor: User | None = None) -> Invoice:
    """Send the invoice with its PDF attached from the tenant's sender address, and mark it sent."""
    from apps.billing.documents import invoice_email

    message = invoice_email(invoice, invoice_pdf_bytes(invoice=invoice))
    message.send(fail_silently=False)
    with transaction.atomic():
        locked = _lock(invoice)
        before = locked.status
        if locked.status == InvoiceStatus.ISSUED:
            locked.status = InvoiceStatus.SENT
        locked.sent_at = timezone.now()
        locked.save(update_fields=["status", "sent_at", "updated_at"])
        invoice_event_record(
            invoice=locked, action="sent", from_status=before, actor=actor, detail={"to": list(message.to)}
        )
    return locked


# --------------------------------------------------------------------------- finding and pricing sessions


def _billed_session_ids(tenant_id: int, session_ids: Sequence[int]) -> set[int]:
    """Sessions already on a live (not void, not credited) invoice or receipt."""
    reversed_line = InvoiceLine.objects.filter(credits_line=OuterRef("pk")).exclude(invoice__status=InvoiceStatus.VOID)
    return {
        pk
        for pk in InvoiceLine.objects.filter(
            invoice__tenant_id=tenant_id, session_id__in=session_ids, invoice__kind__in=["invoice", "receipt"]
        )
        .exclude(invoice__status__in=[InvoiceStatus.VOID, InvoiceStatus.CREDITED])
        .exclude(Exists(reversed_line))  # credited by a partial credit note
        .values_list("session_id", flat=True)
        if pk is not None
    }


def _sessions(tenant: Tenant) -> Any:
    return ChargingSession.objects.filter(tenant=tenant, status=SessionStatus.COMPLETED).select_related(
        "charge_point__location", "evse", "tenant", "driver"
    )


@dataclass
class RunReport:
    issued: list[str] = field(default_factory=list)
    skipped_existing: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # business customer id -> reason
    # completed sessions of the period left off the invoices, with why: not priced at completion, or priced in
    # another currency than the tenant invoices in (never billed as 0, never converted silently)
    unpriced_sessions: dict[int, str] = field(default_factory=dict)
    # roaming CDRs of the period left off, with why (e.g. in another currency than the tenant bills in)
    unpriced_partner_cdrs: dict[int, str] = field(default_factory=dict)


def _month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, month, 1)
    end = (dt.date(year + (month == 12), month % 12 + 1, 1)) - dt.timedelta(days=1)
    return start, end


def _customer_sessions(
    *, tenant: Tenant, period_start: dt.date, period_end: dt.date, business_customer_id: int | None = None
) -> dict[int, list[ChargingSession]]:
    """Completed sessions that stopped in the period (tenant's local days), by the business customer who pays:
    the session's own link, set at its start (the one whose contract price list priced it)."""
    since, until = costing.utc_day_bounds(period_start, period_end, zoneinfo.ZoneInfo(tenant.timezone))
    # a session stopped moments ago may still wait for its pricing (SessionStopped's delivery): priced here first,
    # never left off the invoice as unpriced
    for session_id in session_services.sessions_awaiting_completion(
        tenant_id=tenant.pk, stopped_since=since, stopped_before=until
    ):
        session_services.session_completion(session_id=session_id)
    sessions = _sessions(tenant).filter(stopped_at__gte=since, stopped_at__lt=until, business_customer__isnull=False)
    if business_customer_id is not None:
        sessions = sessions.filter(business_customer_id=business_customer_id)
    by_customer: dict[int, list[ChargingSession]] = {}
    for session in sessions.order_by("pk"):
        assert session.business_customer_id is not None
        by_customer.setdefault(session.business_customer_id, []).append(session)
    return by_customer


def _customer_partner_cdrs(
    *, tenant: Tenant, period_start: dt.date, period_end: dt.date, business_customer_id: int | None = None
) -> dict[int, list[PartnerCdr]]:
    """Roaming CDRs (not credit CDRs, not corrected by one) of sessions that ended in the period (tenant's local
    days), by the business customer who pays: the monthly invoice bills them beside our own sessions."""
    from apps.billing.services.roaming import credited_partner_cdrs

    since, until = costing.utc_day_bounds(period_start, period_end, zoneinfo.ZoneInfo(tenant.timezone))
    cdrs = PartnerCdr.objects.filter(
        tenant=tenant,
        credit=False,
        business_customer__isnull=False,
        end_date_time__gte=since,
        end_date_time__lt=until,
    ).exclude(credited_partner_cdrs())  # type: ignore[arg-type]
    if business_customer_id is not None:
        cdrs = cdrs.filter(business_customer_id=business_customer_id)
    by_customer: dict[int, list[PartnerCdr]] = {}
    for cdr in cdrs.order_by("pk"):
        assert cdr.business_customer_id is not None
        by_customer.setdefault(cdr.business_customer_id, []).append(cdr)
    return by_customer


def _priced_partner_cdrs(tenant: Tenant, cdrs: Sequence[PartnerCdr], unpriced: dict[int, str]) -> list[Any]:
    from apps.billing.services.roaming import billable_partner_cdr, billed_partner_cdr_ids

    billed = billed_partner_cdr_ids(tenant.pk, [c.pk for c in cdrs])
    priced = []
    for cdr in cdrs:
        if cdr.pk in billed:
            continue
        try:
            priced.append(billable_partner_cdr(tenant, cdr))
        except ApplicationError as exc:
            unpriced[cdr.pk] = exc.message
    return priced


def _billable_price(tenant: Tenant, session: ChargingSession) -> SessionPrice:
    """The session's stored price, if this tenant can bill it: raises ApplicationError saying why not."""
    price = costing.session_final_cost(session)
    if price.currency != tenant.currency:
        raise ApplicationError(
            f"Session {session.pk} is priced in {price.currency}, the tenant bills in {tenant.currency}.",
            code="currency_mismatch",
        )
    return price


def _priced(tenant: Tenant, sessions: Sequence[ChargingSession], unpriced: dict[int, str]) -> list[PricedSession]:
    billed = _billed_session_ids(tenant.pk, [s.pk for s in sessions])
    priced: list[PricedSession] = []
    for session in sessions:
        if session.pk in billed:
            continue
        try:
            priced.append((session, _billable_price(tenant, session)))
        except ApplicationError as exc:
            unpriced[session.pk] = exc.message
    return priced


def invoice_draft_for_customer(
    *,
    tenant: Tenant,
    business_customer: BusinessCustomer,
    period_start: dt.date,
    period_end: dt.date,
    actor: User | None = None,
) -> Invoice:
    """A draft invoice of a business customer's not yet billed sessions in the period, at their stored prices.
    Refused (`session_not_priced`, listing them) while a session of the period cannot be billed."""
    if business_customer.tenant_id != tenant.pk:
        raise ApplicationError("The customer belongs to another tenant.", code="wrong_tenant")
    sessions = _customer_sessions(
        tenant=tenant, period_start=period_start, period_end=period_end, business_customer_id=business_customer.pk
    ).get(business_customer.pk, [])
    unpriced: dict[int, str] = {}
    priced = _priced(tenant, sessions, unpriced)
    if unpriced:
        raise ApplicationError(
            f"{len(unpriced)} session(s) cannot be billed.",
            code="session_not_priced",
            fields={"sessions": [f"{pk}: {reason}" for pk, reason in sorted(unpriced.items())]},
        )
    cdrs = _customer_partner_cdrs(
        tenant=tenant, period_start=period_start, period_end=period_end, business_customer_id=business_customer.pk
    ).get(business_customer.pk, [])
    unpriced_cdrs: dict[int, str] = {}
    priced_cdrs = _priced_partner_cdrs(tenant, cdrs, unpriced_cdrs)
    if unpriced_cdrs:
        raise ApplicationError(
            f"{len(unpriced_cdrs)} roaming CDR(s) cannot be billed.",
            code="session_not_priced",
            fields={"partner_cdrs": [f"{pk}: {reason}" for pk, reason in sorted(unpriced_cdrs.items())]},
        )
    if not priced and not priced_cdrs:
        raise ApplicationError("The customer has no unbilled sessions in this period.", code="nothing_to_bill")
    return invoice_create_draft(
        tenant=tenant,
        period_start=period_start,
        period_end=period_end,
        priced_sessions=priced,
        partner_cdrs=priced_cdrs,
        business_customer=business_customer,
        fees=_monthly_fees(tenant, business_customer.pk, period_start),
        actor=actor,
    )


def _monthly_fees(
    tenant: Tenant, business_customer_id: int, period_start: dt.date
) -> list[tuple[str, PricedDimension]]:
    start = dt.datetime.combine(period_start, dt.time(), tzinfo=zoneinfo.ZoneInfo(tenant.timezone))
    fee = costing.contract_monthly_fee(
        business_customer_id=business_customer_id, tenant_vat_rate=tenant.default_vat_rate, at=start
    )
    return [fee] if fee is not None else []


def invoicing_run_month(*, tenant: Tenant, year: int, month: int, render: bool = True) -> RunReport:
    """The monthly invoicing run for business customers: one issued invoice per customer with sessions.

    Idempotent and resumable: each customer is drafted and issued in its own transaction; an existing issued
    invoice for (customer, period, kind) is skipped (the unique constraint makes a parallel run lose the race
    instead of issuing twice), a draft left behind by a crash is issued. Sessions count for the month in
    which they stopped (tenant's local time) and are never billed twice. Every line is the session's stored
    price; sessions that cannot be billed are left off and listed in `unpriced_sessions`.
    """
    period_start, period_end = _month_bounds(year, month)
    by_customer = _customer_sessions(tenant=tenant, period_start=period_start, period_end=period_end)
    cdrs_by_customer = _customer_partner_cdrs(tenant=tenant, period_start=period_start, period_end=period_end)
    report = RunReport()
    customers = BusinessCustomer.objects.in_bulk(list(set(by_customer) | set(cdrs_by_customer)))
    for customer_id in sorted(customers):
        customer = customers[customer_id]
        existing = Invoice.objects.filter(
            tenant=tenant,
            business_customer=customer,
            period_start=period_start,
            period_end=period_end,
            kind=InvoiceKind.INVOICE,
        ).first()
        if existing is not None and existing.status != InvoiceStatus.DRAFT:
            report.skipped_existing += 1
            continue
        try:
            if existing is None:
                priced = _priced(tenant, by_customer.get(customer_id, []), report.unpriced_sessions)
                priced_cdrs = _priced_partner_cdrs(
                    tenant, cdrs_by_customer.get(customer_id, []), report.unpriced_partner_cdrs
                )
                if not priced and not priced_cdrs:
                    continue
                existing = invoice_create_draft(
                    tenant=tenant,
                    period_start=period_start,
                    period_end=period_end,
                    priced_sessions=priced,
                    partner_cdrs=priced_cdrs,
                    business_customer=customer,
                    fees=_monthly_fees(tenant, customer_id, period_start),
                )
            issued = invoice_issue(invoice=existing, render=render)
            report.issued.append(issued.number)
        except Conflict:
            report.skipped_existing += 1  # a parallel run got there first
        except ApplicationError as exc:
            report.failed[customer_id] = exc.message
    return report


def session_receipt_issue(*, session: ChargingSession) -> Invoice | None:
    """The receipt of a session nobody invoices monthly (no business customer pays: a driver on their own
    account, an anonymous card payer), at the session's stored price.

    Idempotent: a second call returns the existing receipt. Sessions of business customers get none (they
    are on the monthly invoice), nor do sessions that did not complete (failed, invalid: nothing to bill).
    A session that was not priced, or was priced in another currency than the tenant bills in, gets none:
    ApplicationError `session_not_priced` / `currency_mismatch` (the receipt job logs it; the session shows
    its `pricing_error`). A card payment made for the session is attached to its receipt (which then says so,
    instead of asking for a transfer) and settles it once captured.
    """
    existing = Invoice.objects.filter(
        tenant_id=session.tenant_id, kind=InvoiceKind.RECEIPT, receipt_session_id=session.pk
    ).first()
    if existing is not None:
        return existing
    completed = _sessions(session.tenant).filter(pk=session.pk).first()
    if completed is None:
        return None
    session = completed
    if session.business_customer_id is not None:
        return None
    price = _billable_price(session.tenant, session)
    assert session.stopped_at is not None
    day = session.stopped_at.astimezone(zoneinfo.ZoneInfo(session.tenant.timezone)).date()
    try:
        draft = invoice_create_draft(
            tenant=session.tenant,
            period_start=day,
            period_end=day,
            priced_sessions=[(session, price)],
            kind=InvoiceKind.RECEIPT,
            driver=session.driver,
            receipt_session_id=session.pk,
        )
    except Conflict:
        return Invoice.objects.get(tenant_id=session.tenant_id, kind=InvoiceKind.RECEIPT, receipt_session_id=session.pk)
    from apps.billing.services.payments import session_payments_attach

    with transaction.atomic():
        receipt = invoice_issue(invoice=draft)
        session_payments_attach(receipt=receipt)
    return Invoice.objects.get(pk=receipt.pk)


def invoice_list_unrendered(*, tenant_id: int | None = None) -> Any:
    qs = Invoice.objects.filter(pdf="").exclude(status=InvoiceStatus.DRAFT)
    return qs if tenant_id is None else qs.filter(Q(tenant_id=tenant_id))
