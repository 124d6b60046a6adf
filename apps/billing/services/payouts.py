"""Payment rules (who pays whom, platform fee) and payout statements for site owners."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.billing.models import InvoiceLine, InvoiceStatus, PaymentRule, Payout, PayoutStatus
from apps.core.errors import ApplicationError, Conflict
from apps.tenants.models import Tenant

CENT = Decimal("0.01")


def payment_rule_create(*, tenant: Tenant, **fields: Any) -> PaymentRule:
    location = fields.get("location")
    if location is not None and location.tenant_id != tenant.pk:
        raise ApplicationError(
            "The location belongs to another tenant.",
            code="wrong_tenant",
            fields={"location": ["Belongs to another tenant."]},
        )
    rule = PaymentRule(tenant=tenant, **fields)
    rule.full_clean()
    rule.save()
    return rule


def payment_rule_update(*, rule: PaymentRule, **fields: Any) -> PaymentRule:
    location = fields.get("location")
    if location is not None and location.tenant_id != rule.tenant_id:
        raise ApplicationError(
            "The location belongs to another tenant.",
            code="wrong_tenant",
            fields={"location": ["Belongs to another tenant."]},
        )
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    return rule


def payout_fee(*, gross: Decimal, rule: PaymentRule) -> tuple[Decimal, Decimal]:
    """(flat, percent part) of the platform fee, each rounded once half-up to the cent; never above the gross."""
    percent = (gross * rule.platform_fee_percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    flat = min(rule.platform_fee_flat, max(gross - percent, Decimal("0.00")))
    return flat, percent


def payout_compute(*, rule: PaymentRule, period_start: dt.date, period_end: dt.date) -> Payout:
    """The payout statement of a rule's payee for a period: session revenue excl. VAT on issued invoices and
    receipts at the rule's location(s), minus the platform fee (flat + %). Credited/void invoices do not count.
    One statement per rule and period."""
    if period_end < period_start:
        raise ApplicationError("period_end is before period_start.", code="invalid_period")
    lines = InvoiceLine.objects.filter(
        invoice__tenant_id=rule.tenant_id,
        invoice__kind__in=["invoice", "receipt"],
        invoice__status__in=[InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PAID],
        invoice__period_start__gte=period_start,
        invoice__period_end__lte=period_end,
        session_id__isnull=False,
    ).select_related("invoice")
    if rule.location_id is not None:
        lines = lines.filter(location_id=rule.location_id)
    rows = list(lines.order_by("started_at", "pk"))
    gross = sum((row.total_excl_vat for row in rows), Decimal("0.00"))
    flat, percent = payout_fee(gross=gross, rule=rule)
    payout = Payout(
        tenant_id=rule.tenant_id,
        rule=rule,
        period_start=period_start,
        period_end=period_end,
        payee_name=rule.payee_name,
        currency=rule.currency,
        session_count=len(rows),
        energy_wh=sum(row.energy_wh for row in rows),
        gross_excl_vat=gross,
        fee_flat=flat,
        fee_percent_amount=percent,
        fee_total=flat + percent,
        net_amount=gross - flat - percent,
        statement=[
            {
                "invoice": row.invoice.number,
                "session": row.session_reference,
                "location": row.location_name,
                "started_at": row.started_at.isoformat() if row.started_at else None,
                "energy_wh": row.energy_wh,
                "excl_vat": f"{row.total_excl_vat:.2f}",
            }
            for row in rows
        ],
    )
    try:
        with transaction.atomic():
            payout.save()
    except IntegrityError as exc:
        raise Conflict("A payout statement for this rule and period exists.", code="payout_exists") from exc
    return payout


@transaction.atomic
def payout_set_status(*, payout: Payout, status: str) -> Payout:
    payout = Payout.objects.select_for_update().get(pk=payout.pk)
    allowed = {PayoutStatus.DRAFT: PayoutStatus.APPROVED, PayoutStatus.APPROVED: PayoutStatus.PAID}
    if allowed.get(PayoutStatus(payout.status)) != status:
        raise Conflict(f"A {payout.status} payout cannot become {status}.", code="payout_bad_transition")
    payout.status = status
    fields = ["status", "updated_at"]
    if status == PayoutStatus.PAID:
        payout.paid_at = timezone.now()
        fields.append("paid_at")
    payout.save(update_fields=fields)
    return payout
