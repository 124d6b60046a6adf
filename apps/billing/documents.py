"""Invoice documents: the branded PDF (weasyprint), the Excel annex (openpyxl) and the e-mail carrying them."""

from __future__ import annotations

import io
import zoneinfo
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string, select_template
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

from apps.billing.models import Invoice, InvoiceKind

TITLES = {InvoiceKind.INVOICE: "Invoice", InvoiceKind.RECEIPT: "Receipt", InvoiceKind.CREDIT_NOTE: "Credit note"}


def _title(invoice: Invoice) -> str:
    return TITLES.get(InvoiceKind(invoice.kind), "Invoice")


def _context(invoice: Invoice) -> dict[str, Any]:
    tenant = invoice.tenant
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    lines = list(invoice.lines.all())
    for line in lines:
        line.started_local = line.started_at.astimezone(zone) if line.started_at else None  # type: ignore[attr-defined]
        line.stopped_local = line.stopped_at.astimezone(zone) if line.stopped_at else None  # type: ignore[attr-defined]
    logo_url = ""
    if tenant.logo:
        try:
            logo_url = f"file://{tenant.logo.path}"
        except NotImplementedError:  # remote storage
            logo_url = tenant.logo.url
    return {
        "invoice": invoice,
        "tenant": tenant,
        "lines": lines,
        "title": _title(invoice),
        "logo_url": logo_url,
        "zone_name": tenant.timezone,
        "issued_local": invoice.issued_at.astimezone(zone) if invoice.issued_at else None,
    }


def render_invoice_html(invoice: Invoice) -> str:
    return render_to_string("billing/invoice.html", _context(invoice))


def render_invoice_pdf(invoice: Invoice) -> bytes:
    from weasyprint import HTML

    html = render_invoice_html(invoice)
    pdf: bytes = HTML(string=html, base_url=str(settings.MEDIA_ROOT)).write_pdf()
    return pdf


XLSX_COLUMNS = [
    "Invoice",
    "Position",
    "Session",
    "Session id",
    "Location",
    "Address",
    "EVSE",
    "Start (local)",
    "Stop (local)",
    "Duration (s)",
    "Energy (kWh)",
    "Energy cost excl. VAT",
    "Time cost excl. VAT",
    "Parking cost excl. VAT",
    "Flat fee excl. VAT",
    "Other excl. VAT",
    "VAT rate %",
    "Total excl. VAT",
    "VAT",
    "Total incl. VAT",
    "Currency",
    "Meter data verification (Eichrecht)",
]
_DIMENSION_COLUMN = {"ENERGY": 0, "TIME": 1, "PARKING_TIME": 2, "FLAT": 3}


def render_invoice_xlsx(invoice: Invoice) -> bytes:
    """The session lines as an Excel annex. Datetimes become naive local times (openpyxl refuses aware ones)."""
    from decimal import Decimal

    zone = zoneinfo.ZoneInfo(invoice.tenant.timezone)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sessions")
    sheet.append(XLSX_COLUMNS)
    for line in invoice.lines.all():
        costs = [Decimal("0.00")] * 5
        for component in line.components:
            costs[_DIMENSION_COLUMN.get(component["dimension"], 4)] += Decimal(component["excl_vat"])
        sheet.append(
            [
                invoice.number,
                line.position,
                line.session_reference,
                line.session_id,
                line.location_name,
                line.location_address,
                line.evse_reference,
                line.started_at.astimezone(zone).replace(tzinfo=None) if line.started_at else None,
                line.stopped_at.astimezone(zone).replace(tzinfo=None) if line.stopped_at else None,
                line.duration_seconds,
                Decimal(line.energy_wh) / 1000,
                *costs,
                line.vat_rate,
                line.total_excl_vat,
                line.total_vat,
                line.total_incl_vat,
                invoice.currency,
                line.meter_verification,
            ]
        )
    summary = workbook.create_sheet("Invoice")
    summary.append(["Number", invoice.number])
    summary.append(["Customer", invoice.customer_name])
    summary.append(["Period", f"{invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}"])
    summary.append(["Total excl. VAT", invoice.total_excl_vat])
    summary.append(["VAT", invoice.total_vat])
    summary.append(["Total incl. VAT", invoice.total_incl_vat])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDDDDD")


def invoice_email(invoice: Invoice, pdf: bytes) -> EmailMessage:
    """The delivery e-mail from the tenant's sender address; per-tenant templates override the defaults:
    `billing/email/<tenant slug>/invoice_subject.txt` and `.../invoice_body.txt`."""
    tenant = invoice.tenant
    context = {"invoice": invoice, "tenant": tenant, "title": _title(invoice)}
    subject = select_template(
        [f"billing/email/{tenant.slug}/invoice_subject.txt", "billing/email/invoice_subject.txt"]
    ).render(context)
    body = select_template([f"billing/email/{tenant.slug}/invoice_body.txt", "billing/email/invoice_body.txt"]).render(
        context
    )
    sender = f"{tenant.name} <{tenant.sender_email}>" if tenant.sender_email else settings.DEFAULT_FROM_EMAIL
    message = EmailMessage(subject=" ".join(subject.split()), body=body, from_email=sender, to=[invoice.customer_email])
    message.attach(f"{invoice.number}.pdf", pdf, "application/pdf")
    return message
