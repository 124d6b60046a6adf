"""Billing reads: querysets with their relations loaded."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import F, OuterRef, QuerySet, Subquery

from apps.billing.models import Invoice, Payment, PaymentRule, Payout
from apps.sessions.models import PartnerCdr


def invoice_list() -> QuerySet[Invoice]:
    return Invoice.objects.select_related("tenant", "credited_invoice").order_by("-id")


def invoice_detail() -> QuerySet[Invoice]:
    return invoice_list().prefetch_related("lines")


def payment_list() -> QuerySet[Payment]:
    return Payment.objects.select_related("invoice").order_by("-id")


def payment_rule_list() -> QuerySet[PaymentRule]:
    return PaymentRule.objects.select_related("location").order_by("name", "pk")


def payout_list() -> QuerySet[Payout]:
    return Payout.objects.select_related("rule").order_by("-period_start", "-id")


# --------------------------------------------------------------------------- roaming CDR reconciliation (eMSP)


def partner_cdr_reconciliation_list() -> QuerySet[PartnerCdr]:
    """Received CDRs with the CPO's cost, our retail price and margin from the live line that bills each (none:
    not billed yet), and the reconciliation verdict; newest first."""
    from apps.billing.services.roaming import live_partner_cdr_lines

    line = live_partner_cdr_lines().filter(partner_cdr_id=OuterRef("pk")).order_by("-pk")  # type: ignore[attr-defined]
    return (
        PartnerCdr.objects.select_related("partner")
        .annotate(
            retail_excl_vat=Subquery(line.values("total_excl_vat")[:1]),
            retail_incl_vat=Subquery(line.values("total_incl_vat")[:1]),
            invoice_number=Subquery(line.values("invoice__number")[:1]),
            margin_excl_vat=F("retail_excl_vat") - F("total_cost_excl_vat"),
        )
        .order_by("-id")
    )


RECONCILIATION_COLUMNS = (
    ("id", "id"),
    ("partner", "partner__name"),
    ("party", None),
    ("cdr_id", "ocpi_id"),
    ("credit", "credit"),
    ("credit_reference_id", "credit_reference_id"),
    ("start_date_time", "start_date_time"),
    ("end_date_time", "end_date_time"),
    ("currency", "currency"),
    ("total_energy_kwh", "total_energy"),
    ("cpo_cost_excl_vat", "total_cost_excl_vat"),
    ("retail_excl_vat", "retail_excl_vat"),
    ("margin_excl_vat", "margin_excl_vat"),
    ("invoice", "invoice_number"),
    ("review", "review"),
    ("review_detail", "review_detail"),
)


def reconciliation_csv_rows(queryset: QuerySet[PartnerCdr]) -> Iterator[list[str]]:
    """The header, then one row per CDR (decimal strings as stored, times in UTC ISO 8601)."""
    yield [name for name, _ in RECONCILIATION_COLUMNS]
    fields = [field for _, field in RECONCILIATION_COLUMNS if field is not None]
    for row in queryset.values("country_code", "party_id", *fields).iterator(chunk_size=2000):
        out = []
        for _, field in RECONCILIATION_COLUMNS:
            value = f"{row['country_code']}*{row['party_id']}" if field is None else row[field]
            out.append("" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value))
        yield out
