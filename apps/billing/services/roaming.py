"""Roaming CDRs into billing (eMSP): a CDR another CPO sent for our driver's session becomes the driver's receipt or
a line on the business customer's monthly invoice, at our retail price; a credit CDR reverses the line it corrects.

The retail price is `apps.tariffs.retail.retail_price` on the CDR's total cost excl. VAT and total energy, with the
tenant's rule for that partner (`tariffs.selectors.retail_terms`): the one computation the driver search shows
per unit. The line keeps the CPO's cost apart (`InvoiceLine.cpo_cost_excl_vat`), so the margin is visible; the
line is the stored fact every document, export and API reads.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Exists, OuterRef

from apps.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus
from apps.core.errors import ApplicationError, Conflict
from apps.sessions.models import PartnerCdr
from apps.tariffs import retail
from apps.tariffs import selectors as tariff_selectors
from apps.tenants.models import Tenant

PricedCdr = tuple[PartnerCdr, retail.RetailPrice, retail.RetailTerms]


def partner_cdr_price(cdr: PartnerCdr) -> tuple[retail.RetailPrice, retail.RetailTerms]:
    """What our driver pays for the CDR's session: our retail rule for its partner on the CPO's cost excl. VAT
    and the CDR's energy, our VAT on top, rounded once."""
    terms = tariff_selectors.retail_terms(partner_id=cdr.partner_id)
    price = retail.retail_price(
        terms, cpo_excl_vat=cdr.total_cost_excl_vat, kwh=cdr.total_energy, currency=cdr.currency.upper()
    )
    return price, terms


def billable_partner_cdr(tenant: Tenant, cdr: PartnerCdr) -> PricedCdr:
    """The CDR's retail price if this tenant can bill it: raises ApplicationError saying why not."""
    if cdr.tenant_id != tenant.pk:
        raise ApplicationError(f"Partner CDR {cdr.pk} belongs to another tenant.", code="wrong_tenant")
    if cdr.credit:
        raise ApplicationError(f"Partner CDR {cdr.ocpi_id} is a credit CDR.", code="credit_cdr")
    if cdr.currency.upper() != tenant.currency.upper():
        raise ApplicationError(
            f"Partner CDR {cdr.ocpi_id} is in {cdr.currency}, the tenant bills in {tenant.currency}.",
            code="currency_mismatch",
        )
    price, terms = partner_cdr_price(cdr)
    if isinstance(cdr.data, dict) and cdr.data.get("cost_unknown") and terms.mode != retail.FIXED_KWH:
        # a CDR without the CPO's price (OICP's): pass-through or a mark-up of it would bill the driver 0
        raise ApplicationError(
            f"Partner CDR {cdr.ocpi_id} carries no price, and the retail rule for its partner is not a fixed price "
            "per kWh: set one to bill such sessions.",
            code="roaming_price_unknown",
        )
    return cdr, price, terms


def live_partner_cdr_lines() -> object:
    """Invoice/receipt lines of partner CDRs on a live document (not void, not credited, not reversed)."""
    reversed_line = InvoiceLine.objects.filter(credits_line=OuterRef("pk")).exclude(invoice__status=InvoiceStatus.VOID)
    return (
        InvoiceLine.objects.filter(partner_cdr_id__isnull=False, invoice__kind__in=["invoice", "receipt"])
        .exclude(invoice__status__in=[InvoiceStatus.VOID, InvoiceStatus.CREDITED])
        .exclude(Exists(reversed_line))
    )


def billed_partner_cdr_ids(tenant_id: int, cdr_ids: Sequence[int]) -> set[int]:
    return set(
        live_partner_cdr_lines()
        .filter(invoice__tenant_id=tenant_id, partner_cdr_id__in=cdr_ids)  # type: ignore[attr-defined]
        .values_list("partner_cdr_id", flat=True)
    )


def credited_partner_cdrs() -> object:
    """A filter for PartnerCdr querysets: CDRs a credit CDR of the same partner and party corrects."""
    return Exists(
        PartnerCdr.objects.filter(
            partner_id=OuterRef("partner_id"),
            country_code=OuterRef("country_code"),
            party_id=OuterRef("party_id"),
            credit=True,
            credit_reference_id=OuterRef("ocpi_id"),
        )
    )


def partner_cdr_receipt_issue(*, cdr: PartnerCdr) -> Invoice | None:
    """The receipt of a roaming session nobody invoices monthly (no business customer pays), at our retail price,
    issued at once. Idempotent: a second call returns the existing receipt. A business customer's CDR gets none
    (it goes on the monthly invoice), nor does a credit CDR (it reverses, `partner_cdr_credit`) or a CDR a credit
    CDR already corrects. ApplicationError `currency_mismatch` when the CDR is not in the tenant's currency."""
    from apps.billing.services.invoices import invoice_create_draft, invoice_issue

    existing = Invoice.objects.filter(
        tenant_id=cdr.tenant_id, kind=InvoiceKind.RECEIPT, receipt_partner_cdr_id=cdr.pk
    ).first()
    if existing is not None:
        return existing
    if cdr.business_customer_id is not None or cdr.credit:
        return None
    if PartnerCdr.objects.filter(pk=cdr.pk).filter(credited_partner_cdrs()).exists():  # type: ignore[arg-type]
        return None
    tenant = Tenant.objects.get(pk=cdr.tenant_id)
    priced = billable_partner_cdr(tenant, cdr)
    day = cdr.end_date_time.astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date()
    try:
        draft = invoice_create_draft(
            tenant=tenant,
            period_start=day,
            period_end=day,
            priced_sessions=[],
            partner_cdrs=[priced],
            kind=InvoiceKind.RECEIPT,
            driver=cdr.driver,
            receipt_partner_cdr_id=cdr.pk,
        )
    except Conflict:
        return Invoice.objects.get(tenant_id=cdr.tenant_id, kind=InvoiceKind.RECEIPT, receipt_partner_cdr_id=cdr.pk)
    return invoice_issue(invoice=draft)


@transaction.atomic
def partner_cdr_credit(*, cdr: PartnerCdr) -> Invoice | None:
    """A credit CDR (`credit`, `credit_reference_id` naming the CDR it corrects) reverses the line that billed the
    corrected CDR: a credit note of that line, issued at once. Idempotent (the line reversed already: its credit
    note). None when the corrected CDR was never billed (it will not be: billing skips corrected CDRs).

    ApplicationError `not_a_credit_cdr` for a normal CDR, `credit_reference_unknown` when no CDR of that partner and
    party has the referenced id; Conflict `invoice_draft` when the line is on a draft (delete or issue it first)."""
    from apps.billing.services.invoices import invoice_credit_note_create

    if not cdr.credit:
        raise ApplicationError(f"Partner CDR {cdr.ocpi_id} is not a credit CDR.", code="not_a_credit_cdr")
    original = PartnerCdr.objects.filter(
        partner_id=cdr.partner_id,
        country_code=cdr.country_code,
        party_id=cdr.party_id,
        ocpi_id=cdr.credit_reference_id,
        credit=False,
    ).first()
    if original is None:
        raise ApplicationError(
            f"Credit CDR {cdr.ocpi_id} corrects {cdr.credit_reference_id!r}, which we never received.",
            code="credit_reference_unknown",
        )
    lines = InvoiceLine.objects.filter(
        partner_cdr_id=original.pk, invoice__tenant_id=cdr.tenant_id, invoice__kind__in=["invoice", "receipt"]
    ).exclude(invoice__status=InvoiceStatus.VOID)
    for line in lines.select_related("invoice").order_by("pk"):
        reversal = InvoiceLine.objects.filter(credits_line=line).exclude(invoice__status=InvoiceStatus.VOID).first()
        if reversal is not None:
            return reversal.invoice
        if line.invoice.status == InvoiceStatus.DRAFT:
            raise Conflict(
                f"Partner CDR {original.ocpi_id} is on draft {line.invoice}: delete or issue the draft first.",
                code="invoice_draft",
            )
        if line.invoice.status == InvoiceStatus.CREDITED:
            continue
        return invoice_credit_note_create(
            invoice=line.invoice,
            positions=[line.position],
            reason=f"credit CDR {cdr.ocpi_id} of {cdr.country_code}*{cdr.party_id} corrects CDR {original.ocpi_id}",
        )
    return None


def partner_cdr_bill(*, cdr: PartnerCdr) -> Invoice | None:
    """What billing does with a received CDR: a credit CDR reverses the corrected CDR's line; a CDR of a driver on
    their own account (or nobody's) gets its receipt now; a business customer's CDR waits for the monthly run
    (None)."""
    if cdr.credit:
        return partner_cdr_credit(cdr=cdr)
    return partner_cdr_receipt_issue(cdr=cdr)
