"""Invoices, receipts and their e-mails in the recipient's language: the business customer's, else the driver's,
else the tenant's default; numbers with the language's separators; the stored priced texts translated."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import translation

from apps.billing import services
from apps.billing.documents import document_language, render_invoice_pdf
from apps.billing.templatetags.billing_format import component_text
from apps.tenants.models import Tenant
from tests.billing.test_documents import branded, flat, issued, page_texts, receipt_for

pytestmark = pytest.mark.django_db
__all__ = ["branded"]  # the fixture, imported for these tests


def test_an_invoice_to_a_german_customer_is_german_with_german_numbers(branded: Tenant) -> None:
    # given a customer who reads German, of an English-speaking tenant
    invoice = issued(branded, sessions=2)
    customer = invoice.business_customer
    assert customer is not None
    assert branded.language == "en"
    customer.language = "de"
    customer.save(update_fields=["language"])

    text = flat(page_texts(render_invoice_pdf(invoice))[0])

    assert "Rechnung" in text
    for words in ("Rechnungsempfänger", "Zeitraum", "Ladevorgang", "Standort", "Summe netto", "Gesamtbetrag brutto"):
        assert words in text, words
    assert "Bitte überweisen Sie" in text
    assert "kWh zu" in text  # the stored "… kWh at …/kWh" in German
    total = f"{invoice.total_incl_vat:.2f}".replace(".", ",")
    assert f"{total} EUR" in text  # 12,34 not 12.34
    for english in ("Billed to", "Total incl. VAT", "Please transfer", "Invoice"):
        assert english not in text, english


def test_a_receipt_follows_the_drivers_language_and_else_the_tenants(branded: Tenant) -> None:
    branded.language = "fr"
    branded.save(update_fields=["language"])
    receipt = receipt_for(branded)
    driver = receipt.driver
    assert driver is not None
    driver.language = ""  # no wish of their own
    driver.save(update_fields=["language"])
    receipt.refresh_from_db()

    tenant_default = flat(page_texts(render_invoice_pdf(receipt))[0])
    driver.language = "de"
    driver.save(update_fields=["language"])
    receipt.refresh_from_db()
    own = flat(page_texts(render_invoice_pdf(receipt))[0])

    assert "Reçu" in tenant_default
    assert "Merci de virer" in tenant_default
    assert "Quittung" in own
    assert "Bitte überweisen Sie" in own


def test_a_language_we_do_not_ship_falls_back_to_the_tenants(branded: Tenant) -> None:
    branded.language = "de"
    branded.save(update_fields=["language"])
    receipt = receipt_for(branded)
    assert receipt.driver is not None
    receipt.driver.language = "sv"  # a valid ISO 639-1 code without a catalog
    receipt.driver.save(update_fields=["language"])

    assert document_language(receipt) == "de"


def test_the_invoice_email_is_in_french_for_a_french_customer(branded: Tenant) -> None:
    invoice = issued(branded, sessions=1)
    customer = invoice.business_customer
    assert customer is not None
    customer.language = "fr"
    customer.save(update_fields=["language"])

    services.invoice_deliver_email(invoice=invoice)

    message = mail.outbox[0]
    assert message.subject == f"Facture {invoice.number} de Alpha Charge"
    assert message.body.startswith("Bonjour Fleet Logistics GmbH,")
    assert f"veuillez trouver ci-joint la facture {invoice.number} pour la période du 2026-03-01 au 2026-03-31" in (
        message.body
    )
    assert "Montant total" in message.body
    assert "(TTC)" in message.body
    assert "Cordialement" in message.body
    # the attached PDF is French too
    assert "Facture" in flat(page_texts(message.attachments[0][1])[0])
    assert translation.get_language() in ("en", "en-us")  # rendering did not leak its language


@pytest.mark.parametrize(
    ("language", "stored", "printed"),
    [
        ("de", "12.5 kWh at 0.39/kWh", "12,5 kWh zu 0,39/kWh"),
        ("fr", "1 h 5 min at 1.20/h; fee 1.00", "1 h 5 min à 1,20/h; frais 1,00"),
        ("en", "12.5 kWh at 0.39/kWh", "12.5 kWh at 0.39/kWh"),
        ("de", "an older engine's text", "an older engine's text"),
    ],
)
def test_stored_priced_texts_print_in_the_documents_language(language: str, stored: str, printed: str) -> None:
    with translation.override(language):
        assert component_text(stored) == printed


def test_the_excel_annex_speaks_the_customers_language(branded: Tenant) -> None:
    # given an invoice to a customer who reads German, of an English-speaking tenant
    import io

    from openpyxl import load_workbook

    from apps.billing.documents import render_invoice_xlsx

    invoice = issued(branded, sessions=1)
    customer = invoice.business_customer
    assert customer is not None
    customer.language = "de"
    customer.save(update_fields=["language"])
    line = invoice.lines.get()

    workbook = load_workbook(io.BytesIO(render_invoice_xlsx(invoice)))

    assert workbook.sheetnames == ["Ladevorgänge", "Rechnung"]
    head, row = list(workbook["Ladevorgänge"].iter_rows(values_only=True))
    assert head[:3] == ("Rechnung", "Position", "Ladevorgang")
    assert {"Beginn (Ortszeit)", "Energiekosten netto", "Gesamtbetrag brutto"} <= set(head)
    assert head[-1] == "Prüfung der Messdaten (Eichrecht)"
    assert line.meter_verification.startswith("OCMF transaction ")  # stored in English (the API shows it so)
    assert row[-1].startswith(f"OCMF-Transaktion {line.session_reference}; ")
    assert "prüfbar mit S.A.F.E." in row[-1]
    summary = [r[0] for r in workbook["Rechnung"].iter_rows(values_only=True)]
    assert summary == ["Nummer", "Kunde", "Zeitraum", "Summe netto", "MwSt.", "Gesamtbetrag brutto"]


def test_a_meter_reference_of_an_older_shape_is_printed_as_stored() -> None:
    from apps.billing.lines import meter_verification_text

    with translation.override("fr"):
        text = meter_verification_text("OCMF transaction CP-1-9; signed by hand; verify with S.A.F.E.")

    assert text == "transaction OCMF CP-1-9; signed by hand; vérifiable avec S.A.F.E."
