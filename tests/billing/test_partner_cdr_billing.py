"""Roaming CDRs into billing (eMSP): the driver's receipt or the business customer's monthly invoice line at our
retail price, the CPO's cost kept apart for the margin, credit CDRs reversing lines, and reconciliation against the
CPO's tariff. Amounts to the cent; the official CDR example (BE*BEC 12345: 4.00 EUR excl. VAT for 15.342 kWh)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pypdfium2
import pytest

from apps.billing import services
from apps.billing.documents import render_invoice_pdf
from apps.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus
from apps.core.errors import ApplicationError
from apps.roaming.models import RoamingPartner
from apps.sessions.models import PartnerCdr
from apps.sessions.reconciliation import partner_cdr_reconcile
from apps.tariffs import services as tariff_services
from apps.tenants.models import Tenant
from tests.charging.partner_factories import partner, partner_cdr, partner_tariff
from tests.customers.factories import BusinessCustomerFactory, DriverFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cpo(tenant_a: Tenant) -> RoamingPartner:
    return partner(tenant_a, name="BeCharged", country_code="BE", party_id="BEC")


def markup(tenant: Tenant, cpo: RoamingPartner, percent: str = "10", vat: str = "19") -> None:
    tariff_services.roaming_retail_rule_create(
        tenant=tenant, partner=cpo, mode="markup", markup_percent=Decimal(percent), vat_rate=Decimal(vat)
    )


def money(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


def test_a_drivers_cdr_becomes_a_receipt_at_our_retail_price_with_the_partners_location(
    tenant_a: Tenant, cpo: RoamingPartner
) -> None:
    markup(tenant_a, cpo)
    driver = DriverFactory(tenant=tenant_a)
    cdr = partner_cdr(cpo, driver=driver)

    receipt = services.partner_cdr_bill(cdr=cdr)

    assert receipt is not None
    assert (receipt.kind, receipt.status, receipt.driver_id, receipt.receipt_partner_cdr_id) == (
        InvoiceKind.RECEIPT,
        InvoiceStatus.ISSUED,
        driver.pk,
        cdr.pk,
    )
    (line,) = receipt.lines.all()
    # 4.00 + 10 % = 4.40 excl. VAT; our 19 % VAT 0.836 -> 0.84; 5.24 incl. VAT (not the CPO's 4.40 incl. its 10 %)
    assert (line.total_excl_vat, line.total_vat, line.total_incl_vat, line.vat_rate) == money(
        "4.40", "0.84", "5.24", "19.00"
    )
    assert (receipt.total_excl_vat, receipt.total_vat, receipt.total_incl_vat) == money("4.40", "0.84", "5.24")
    assert (line.cpo_cost_excl_vat, line.margin_excl_vat) == money("4.0000", "0.4000")
    assert (line.location_name, line.location_address, line.evse_reference) == (
        "Gent Zuid",
        "F.Rooseveltlaan 3A, 9000 Gent, BEL",
        "BE*BEC*E041503003",
    )
    assert (line.partner_cdr_id, line.session_id, line.session_reference, line.energy_wh) == (
        cdr.pk,
        None,
        "BE*BEC-12345",
        15342,
    )
    assert line.components == [
        {
            "dimension": "ROAMING",
            "description": "15.342 kWh on the network of BE*BEC",
            "excl_vat": "4.40",
            "vat_rate": "19.00",
            "incl_vat": "5.24",
        }
    ]
    # idempotent: the same receipt again, nothing added
    assert services.partner_cdr_bill(cdr=cdr) == receipt
    assert Invoice.objects.count() == 1


def test_the_receipt_pdf_prints_the_partners_location_evse_and_retail_price(
    tenant_a: Tenant, cpo: RoamingPartner
) -> None:
    markup(tenant_a, cpo)
    receipt = services.partner_cdr_bill(cdr=partner_cdr(cpo, driver=DriverFactory(tenant=tenant_a)))
    assert receipt is not None

    text = pypdfium2.PdfDocument(render_invoice_pdf(receipt))[0].get_textpage().get_text_range()

    flat, packed = " ".join(text.split()), "".join(text.split())  # the table wraps long cells
    assert receipt.number in text
    assert "Gent Zuid" in flat
    assert "F.Rooseveltlaan 3A, 9000 Gent, BEL" in flat
    assert "BE*BEC*E041503003" in packed
    assert "BE*BEC-12345" in flat
    assert "15,342" in flat  # the tenant's language is German: decimal commas
    assert "Summe netto 4,40 EUR" in flat  # our retail price
    assert "MwSt. 19 % auf 4,40 0,84 EUR" in flat
    assert "Bitte überweisen Sie 5,24 EUR" in flat
    assert "4,00" not in flat  # the CPO's cost is ours to know, not printed


def test_a_fixed_price_per_kwh_replaces_the_cpo_cost(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    tariff_services.roaming_retail_rule_create(
        tenant=tenant_a,
        partner=cpo,
        mode="fixed_kwh",
        price_per_kwh_excl_vat=Decimal("0.45"),
        vat_rate=Decimal("19"),
        currency="EUR",
    )

    receipt = services.partner_cdr_bill(cdr=partner_cdr(cpo, driver=DriverFactory(tenant=tenant_a)))

    assert receipt is not None
    line = receipt.lines.get()
    # 15.342 kWh x 0.45 = 6.9039 -> 6.90; VAT 1.311 -> 1.31; 8.21; margin 2.90 over the CPO's 4.00
    assert (line.total_excl_vat, line.total_vat, line.total_incl_vat, line.margin_excl_vat) == money(
        "6.90", "1.31", "8.21", "2.9000"
    )


def test_without_a_rule_the_price_passes_through_with_no_vat(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    receipt = services.partner_cdr_bill(cdr=partner_cdr(cpo))  # no driver: an ad hoc receipt

    assert receipt is not None
    assert (receipt.total_excl_vat, receipt.total_incl_vat, receipt.customer_name) == (
        Decimal("4.00"),
        Decimal("4.00"),
        "Ad hoc customer",
    )
    assert receipt.lines.get().margin_excl_vat == Decimal("0")


def test_a_cdr_in_another_currency_is_refused_and_nothing_is_billed(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    cdr = partner_cdr(cpo, currency="CHF", driver=DriverFactory(tenant=tenant_a))

    with pytest.raises(ApplicationError) as refused:
        services.partner_cdr_bill(cdr=cdr)

    assert refused.value.code == "currency_mismatch"
    assert not Invoice.objects.exists()
    assert not InvoiceLine.objects.exists()


def test_a_business_customers_cdr_goes_on_the_monthly_invoice_beside_nothing_else(
    tenant_a: Tenant, cpo: RoamingPartner
) -> None:
    markup(tenant_a, cpo, percent="25", vat="19")
    customer = BusinessCustomerFactory(tenant=tenant_a)
    cdr = partner_cdr(cpo, business_customer=customer)
    partner_cdr(
        cpo,
        data={"id": "OTHER-MONTH"},
        ocpi_id="OTHER-MONTH",
        business_customer=customer,
        start_date_time=cdr.start_date_time.replace(month=7),
        end_date_time=cdr.end_date_time.replace(month=7),
    )

    assert services.partner_cdr_bill(cdr=cdr) is None  # no receipt: the monthly invoice bills it
    report = services.invoicing_run_month(tenant=tenant_a, year=2015, month=6, render=False)
    again = services.invoicing_run_month(tenant=tenant_a, year=2015, month=6, render=False)

    assert len(report.issued) == 1
    assert (again.issued, again.skipped_existing) == ([], 1)
    invoice = Invoice.objects.get(business_customer=customer)
    (line,) = invoice.lines.all()
    # 4.00 + 25 % = 5.00; VAT 0.95; 5.95
    assert (invoice.total_excl_vat, invoice.total_vat, invoice.total_incl_vat) == money("5.00", "0.95", "5.95")
    assert (line.partner_cdr_id, line.cpo_cost_excl_vat, line.margin_excl_vat) == (cdr.pk, *money("4.0000", "1.0000"))
    assert line.location_name == "Gent Zuid"


def test_a_credit_cdr_reverses_the_billed_line_with_a_credit_note(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    markup(tenant_a, cpo)
    driver = DriverFactory(tenant=tenant_a)
    original = partner_cdr(cpo, driver=driver)
    receipt = services.partner_cdr_bill(cdr=original)
    assert receipt is not None
    credit = partner_cdr(
        cpo,
        driver=driver,
        ocpi_id="12345-C",
        credit=True,
        credit_reference_id="12345",
        total_cost_excl_vat=Decimal("-4.00"),
        data={"id": "12345-C", "credit": True, "credit_reference_id": "12345"},
    )

    note = services.partner_cdr_bill(cdr=credit)

    assert note is not None
    assert (note.kind, note.status, note.credited_invoice_id) == (
        InvoiceKind.CREDIT_NOTE,
        InvoiceStatus.ISSUED,
        receipt.pk,
    )
    (line,) = note.lines.all()
    assert (line.total_excl_vat, line.total_vat, line.total_incl_vat) == money("-4.40", "-0.84", "-5.24")
    assert (line.cpo_cost_excl_vat, line.margin_excl_vat) == money("-4.0000", "-0.4000")
    assert line.credits_line_id == receipt.lines.get().pk
    receipt.refresh_from_db()
    assert receipt.status == InvoiceStatus.CREDITED
    # the credit CDR again: the same credit note, nothing reversed twice
    assert services.partner_cdr_bill(cdr=credit) == note
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).count() == 1


def test_a_cdr_credited_before_billing_is_never_billed(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    customer = BusinessCustomerFactory(tenant=tenant_a)
    partner_cdr(cpo, business_customer=customer)
    credit = partner_cdr(
        cpo,
        ocpi_id="12345-C",
        credit=True,
        credit_reference_id="12345",
        business_customer=customer,
        data={"id": "12345-C"},
    )

    assert services.partner_cdr_bill(cdr=credit) is None  # nothing billed yet: nothing to reverse
    report = services.invoicing_run_month(tenant=tenant_a, year=2015, month=6, render=False)

    assert report.issued == []
    assert not Invoice.objects.exists()


def test_a_credit_cdr_for_an_unknown_cdr_is_refused(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    credit = partner_cdr(cpo, ocpi_id="X-C", credit=True, credit_reference_id="NEVER-SENT", data={"id": "X-C"})

    with pytest.raises(ApplicationError) as refused:
        services.partner_cdr_bill(cdr=credit)

    assert refused.value.code == "credit_reference_unknown"
    assert not Invoice.objects.exists()


def test_another_tenants_cdr_cannot_go_on_our_invoice(tenant_a: Tenant, tenant_b: Tenant) -> None:
    theirs = partner_cdr(partner(tenant_b, country_code="BE", party_id="BEC"), driver=DriverFactory(tenant=tenant_b))

    with pytest.raises(ApplicationError) as refused:
        services.invoice_create_draft(
            tenant=tenant_a,
            period_start=theirs.start_date_time.date(),
            period_end=theirs.end_date_time.date(),
            priced_sessions=[],
            partner_cdrs=[(theirs, *services.partner_cdr_price(theirs))],
        )

    assert refused.value.code == "wrong_tenant"
    assert not Invoice.objects.exists()


# --------------------------------------------------------------------------- reconciliation


def test_reconciliation_ok_when_the_cpo_tariff_gives_the_cdr_total(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    example = partner_cdr(cpo).data["tariffs"][0]
    partner_tariff(cpo, "12", example["elements"])
    cdr = PartnerCdr.objects.get()

    partner_cdr_reconcile(cdr=cdr)

    cdr.refresh_from_db()
    assert (cdr.review, cdr.review_detail) == (
        "ok",
        "4.00 EUR excl. VAT, as tariff 12 gives for the CDR's volumes.",
    )


def test_reconciliation_flags_a_total_the_tariff_does_not_give(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    cdr = partner_cdr(cpo, total_cost_excl_vat=Decimal("4.50"))
    partner_tariff(cpo, "12", cdr.data["tariffs"][0]["elements"])

    partner_cdr_reconcile(cdr=cdr)

    cdr.refresh_from_db()
    assert cdr.review == "mismatch"
    assert cdr.review_detail == (
        "The CDR bills 4.50 EUR excl. VAT; tariff 12 gives 4.00 EUR for the CDR's volumes (difference 0.50 EUR)."
    )


def test_reconciliation_without_the_tariff_says_so(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    cdr = partner_cdr(cpo)  # tariff 12 was never received as a PartnerTariff
    nameless = partner_cdr(cpo, ocpi_id="N", data={"id": "N", "tariffs": [], "charging_periods": []})

    partner_cdr_reconcile(cdr=cdr)
    partner_cdr_reconcile(cdr=nameless)

    cdr.refresh_from_db()
    nameless.refresh_from_db()
    assert (cdr.review, cdr.review_detail) == ("no_tariff", "Tariff 12 of BE*BEC was never received.")
    assert (nameless.review, nameless.review_detail) == ("no_tariff", "The CDR names no tariff.")


def test_reconciliation_of_unreadable_periods_is_a_mismatch_not_a_crash(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    cdr = partner_cdr(
        cpo, data={"charging_periods": [{"start_date_time": "yesterday", "dimensions": [], "tariff_id": "12"}]}
    )
    partner_tariff(cpo, "12", cdr.data["tariffs"][0]["elements"])

    partner_cdr_reconcile(cdr=cdr)

    cdr.refresh_from_db()
    assert cdr.review == "mismatch"
    assert "charging_periods[0].start_date_time" in cdr.review_detail


# --------------------------------------------------------------------------- reconciliation list: API, CSV, admin

REVIEW_LIST = "/api/v1/roaming-cdrs/"


@pytest.fixture
def reviewed(tenant_a: Tenant, cpo: RoamingPartner) -> dict[str, PartnerCdr]:
    """A billed CDR that matches the tariff, one that does not (not billed), one without a tariff."""
    markup(tenant_a, cpo)
    ok = partner_cdr(cpo, driver=DriverFactory(tenant=tenant_a))
    partner_tariff(cpo, "12", ok.data["tariffs"][0]["elements"])
    services.partner_cdr_bill(cdr=ok)
    high = partner_cdr(
        cpo, ocpi_id="HIGH", total_cost_excl_vat=Decimal("4.50"), data={"id": "HIGH"}, business_customer=None
    )
    stranger = partner_cdr(partner(tenant_a, country_code="NL", party_id="XYZ"), country_code="NL", party_id="XYZ")
    for cdr in (ok, high, stranger):
        partner_cdr_reconcile(cdr=cdr)
    return {"ok": ok, "high": high, "stranger": stranger}


def test_the_api_lists_the_review_with_cost_retail_and_margin_filtered_by_verdict(
    reviewed: dict[str, PartnerCdr], tenant_a: Tenant, tenant_b: Tenant, client_for: Any
) -> None:
    partner_cdr(partner(tenant_b, country_code="BE", party_id="BEC"))  # another tenant's: never listed
    api = client_for(tenant_a, "finance")

    every = api.get(REVIEW_LIST).json()["results"]
    mismatches = api.get(REVIEW_LIST, {"review": "mismatch"}).json()["results"]

    assert sorted(r["ocpi_id"] for r in every) == ["12345", "12345", "HIGH"]
    billed = next(r for r in every if r["id"] == reviewed["ok"].pk)
    assert {k: billed[k] for k in ("party", "cpo_cost_excl_vat", "retail_excl_vat", "retail_incl_vat")} == {
        "party": "BE*BEC",
        "cpo_cost_excl_vat": "4.0000",
        "retail_excl_vat": "4.40",
        "retail_incl_vat": "5.24",
    }
    assert (billed["margin_excl_vat"], billed["review"], billed["invoice_number"]) == (
        "0.4000",
        "ok",
        "ALP-2026-000001",
    )
    assert [(r["ocpi_id"], r["review"], r["retail_excl_vat"], r["margin_excl_vat"]) for r in mismatches] == [
        ("HIGH", "mismatch", None, None)
    ]
    assert api.get(REVIEW_LIST, {"review": "no_tariff"}).json()["results"][0]["party"] == "NL*XYZ"
    assert api.get(REVIEW_LIST, {"review": "maybe"}).status_code == 400


def test_the_csv_export_has_one_row_per_cdr_of_the_filter(
    reviewed: dict[str, PartnerCdr], tenant_a: Tenant, tenant_b: Tenant, client_for: Any
) -> None:
    theirs = partner_cdr(partner(tenant_b, country_code="BE", party_id="BEC"))
    partner_cdr_reconcile(cdr=theirs)  # "ok" too (no tariff of theirs: no_tariff), never in A's export
    every = client_for(tenant_a, "finance").get(REVIEW_LIST + "export/")
    assert len(list(csv.reader(io.StringIO(b"".join(every.streaming_content).decode())))) == 1 + 3
    assert client_for(tenant_a, "finance").get(REVIEW_LIST + "export/", {"review": "maybe"}).status_code == 400

    response = client_for(tenant_a, "finance").get(REVIEW_LIST + "export/", {"review": "ok"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "partner", "party", "cdr_id"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert {
        k: row[k] for k in ("party", "cdr_id", "cpo_cost_excl_vat", "retail_excl_vat", "margin_excl_vat", "review")
    } == {
        "party": "BE*BEC",
        "cdr_id": "12345",
        "cpo_cost_excl_vat": "4.0000",
        "retail_excl_vat": "4.40",
        "margin_excl_vat": "0.4000",
        "review": "ok",
    }


def test_reconcile_again_after_the_tariff_arrived(
    reviewed: dict[str, PartnerCdr], tenant_a: Tenant, client_for: Any
) -> None:
    stranger = reviewed["stranger"]
    partner_tariff(stranger.partner, "12", stranger.data["tariffs"][0]["elements"])

    read_only = client_for(tenant_a, "read_only").post(f"{REVIEW_LIST}{stranger.pk}/reconcile/", {}, format="json")
    response = client_for(tenant_a, "finance").post(f"{REVIEW_LIST}{stranger.pk}/reconcile/", {}, format="json")

    assert read_only.status_code == 403
    assert response.status_code == 200, response.content
    assert response.json()["review"] == "ok"


def test_another_tenants_cdr_is_404_and_unchanged(
    reviewed: dict[str, PartnerCdr], tenant_b: Tenant, client_for: Any
) -> None:
    cdr = reviewed["high"]

    response = client_for(tenant_b, "finance").post(f"{REVIEW_LIST}{cdr.pk}/reconcile/", {}, format="json")

    assert response.status_code == 404
    cdr.refresh_from_db()
    assert cdr.review == "mismatch"


def test_the_admin_lists_the_review_filters_it_and_exports_csv(
    reviewed: dict[str, PartnerCdr], client: Any, make_staff: Any, tenant_a: Tenant
) -> None:
    client.force_login(make_staff(tenant_a, "finance"))
    url = "/admin/billing/roamingcdrreview/"

    page = client.get(url, {"review__exact": "mismatch"})
    export = client.post(url, {"action": "export_csv", "_selected_action": [reviewed["ok"].pk]})

    assert page.status_code == 200
    text = page.content.decode()
    assert "HIGH" in text
    assert "Does not match the tariff" in text
    detail = client.get(f"{url}{reviewed['high'].pk}/change/").content.decode()
    assert "tariff 12 gives 4.00 EUR" in detail
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert [r[3] for r in rows] == ["cdr_id", "12345"]
    assert rows[1][12] == "0.4000"  # the margin


def test_the_invoice_api_shows_the_cpo_cost_and_margin_of_a_roaming_line(
    tenant_a: Tenant, cpo: RoamingPartner, client_for: Any
) -> None:
    markup(tenant_a, cpo)
    receipt = services.partner_cdr_bill(cdr=partner_cdr(cpo, driver=DriverFactory(tenant=tenant_a)))
    assert receipt is not None

    body = client_for(tenant_a, "finance").get(f"/api/v1/invoices/{receipt.pk}/").json()

    (line,) = body["lines"]
    assert (line["cpo_cost_excl_vat"], line["margin_excl_vat"], line["location_name"]) == (
        "4.0000",
        "0.4000",
        "Gent Zuid",
    )
    assert body["receipt_partner_cdr_id"] == receipt.receipt_partner_cdr_id


def test_the_received_task_reconciles_and_bills_once(tenant_a: Tenant, cpo: RoamingPartner) -> None:
    from apps.billing.tasks import partner_cdr_received

    markup(tenant_a, cpo)
    cdr = partner_cdr(cpo, driver=DriverFactory(tenant=tenant_a))
    partner_tariff(cpo, "12", cdr.data["tariffs"][0]["elements"])

    first = partner_cdr_received(cdr.pk)
    again = partner_cdr_received(cdr.pk)
    refused = partner_cdr_received(partner_cdr(cpo, ocpi_id="CHF", currency="CHF", data={"id": "CHF"}).pk)

    receipt = Invoice.objects.get()
    assert first == again == {"review": "ok", "invoice": receipt.pk}
    assert refused == {"review": "mismatch", "invoice": None, "error": "currency_mismatch"}
    assert partner_cdr_received(10**9) == {"review": None, "invoice": None}
