"""The billing API: roles, domain actions, downloads, query-count guard; and payout statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.billing import services
from apps.billing.models import Invoice, InvoiceKind, InvoiceStatus, PaymentRule, Payout, PayoutStatus
from apps.core.errors import Conflict
from apps.tenants.models import Role, Tenant
from tests.billing.factories import ChargingSessionFactory, PaymentRuleFactory, draft_invoice, issued_invoice, price
from tests.customers.factories import BusinessCustomerFactory, TokenFactory
from tests.registry import snapshot
from tests.stations.factories import LocationFactory

pytestmark = pytest.mark.django_db


def test_invoice_list_query_count_does_not_grow_with_rows(
    tenant_a: Tenant, client_for: Callable[..., APIClient], django_assert_num_queries: Any
) -> None:
    client = client_for(tenant_a, Role.FINANCE)
    for _ in range(6):
        issued_invoice(tenant_a)

    with django_assert_num_queries(2):  # the caller's memberships, one cursor page (tenant joined); nothing per row
        response = client.get("/api/v1/invoices/")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 6


def test_finance_issues_a_draft_and_read_only_cannot(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    draft = draft_invoice(tenant_a)
    before = snapshot(draft)

    refused = client_for(tenant_a, Role.READ_ONLY).post(f"/api/v1/invoices/{draft.pk}/issue/", {}, format="json")
    assert refused.status_code == 403
    assert snapshot(draft) == before

    response = client_for(tenant_a, Role.FINANCE).post(f"/api/v1/invoices/{draft.pk}/issue/", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "issued"
    assert response.json()["number"].endswith("-000001")


def test_issued_invoice_refuses_patch_and_delete(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    invoice = issued_invoice(tenant_a)
    before = snapshot(invoice)
    client = client_for(tenant_a, Role.FINANCE)

    patch = client.patch(f"/api/v1/invoices/{invoice.pk}/", {"notes": "x"}, format="json")
    delete = client.delete(f"/api/v1/invoices/{invoice.pk}/")

    assert (patch.status_code, patch.json()["code"]) == (409, "invoice_immutable")
    assert (delete.status_code, delete.json()["code"]) == (409, "invoice_not_draft")
    assert snapshot(invoice) == before


def test_credit_note_and_void_through_the_api(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    client = client_for(tenant_a, Role.FINANCE)
    first, second = issued_invoice(tenant_a), issued_invoice(tenant_a)

    note = client.post(f"/api/v1/invoices/{first.pk}/credit-note/", {"reason": "wrong price"}, format="json")
    void = client.post(f"/api/v1/invoices/{second.pk}/void/", {"reason": "duplicate"}, format="json")
    missing_reason = client.post(f"/api/v1/invoices/{second.pk}/void/", {}, format="json")

    assert note.status_code == 201
    assert note.json()["kind"] == InvoiceKind.CREDIT_NOTE
    assert Decimal(note.json()["total_incl_vat"]) == -first.total_incl_vat
    assert void.json()["status"] == InvoiceStatus.VOID
    assert missing_reason.status_code == 400
    assert missing_reason.json()["fields"] == {"reason": ["This field is required."]}


def test_partial_credit_note_through_the_api(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    client = client_for(tenant_a, Role.FINANCE)
    invoice = issued_invoice(tenant_a, sessions=2)
    url = f"/api/v1/invoices/{invoice.pk}/credit-note/"

    note = client.post(url, {"reason": "one wrong session", "positions": [1]}, format="json")
    again = client.post(url, {"reason": "again", "positions": [1]}, format="json")
    unknown = client.post(url, {"reason": "typo", "positions": [7]}, format="json")
    empty = client.post(url, {"reason": "nothing", "positions": []}, format="json")

    assert note.status_code == 201
    assert Decimal(note.json()["total_excl_vat"]) == -invoice.lines.get(position=1).total_excl_vat
    assert (again.status_code, again.json()["code"]) == (400, "invalid_positions")
    assert again.json()["fields"]["positions"] == [f"Line 1 of invoice {invoice.number} is credited already."]
    assert (unknown.status_code, unknown.json()["code"]) == (400, "invalid_positions")
    assert empty.status_code == 400
    assert Invoice.objects.filter(credited_invoice=invoice).count() == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED


def test_pdf_and_xlsx_downloads_and_other_tenants_get_404(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    invoice = issued_invoice(tenant_a)
    mine, theirs = client_for(tenant_a, Role.READ_ONLY), client_for(tenant_b, Role.ADMIN)

    pdf = mine.get(f"/api/v1/invoices/{invoice.pk}/pdf/")
    xlsx = mine.get(f"/api/v1/invoices/{invoice.pk}/xlsx/")
    foreign_pdf = theirs.get(f"/api/v1/invoices/{invoice.pk}/pdf/")
    foreign_xlsx = theirs.get(f"/api/v1/invoices/{invoice.pk}/xlsx/")

    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content[:5] == b"%PDF-"
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"
    assert (foreign_pdf.status_code, foreign_pdf.json()["code"]) == (404, "not_found")
    assert (foreign_xlsx.status_code, foreign_xlsx.json()["code"]) == (404, "not_found")
    assert Invoice.objects.get(pk=invoice.pk).pdf.name.endswith(".pdf")  # rendered once, on the first request


def test_admin_downloads(tenant_a: Tenant, make_staff: Callable[..., Any], client: Any) -> None:
    invoice = issued_invoice(tenant_a)
    client.force_login(make_staff(tenant_a, Role.FINANCE))

    pdf = client.get(f"/admin/billing/invoice/{invoice.pk}/pdf/")
    xlsx = client.get(f"/admin/billing/invoice/{invoice.pk}/xlsx/")
    changelist = client.get("/admin/billing/invoice/")

    assert pdf.status_code == 200
    assert pdf.content[:5] == b"%PDF-"
    assert xlsx.content[:2] == b"PK"
    assert f"/admin/billing/invoice/{invoice.pk}/pdf/".encode() in changelist.content


def test_admin_download_of_another_tenants_invoice_is_404(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., Any], client: Any
) -> None:
    invoice = issued_invoice(tenant_b)
    client.force_login(make_staff(tenant_a, Role.ADMIN))

    assert client.get(f"/admin/billing/invoice/{invoice.pk}/pdf/").status_code == 404
    assert client.get(f"/admin/billing/invoice/{invoice.pk}/xlsx/").status_code == 404


def test_draft_via_api_bills_the_customers_unbilled_sessions_at_their_stored_prices(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    customer = BusinessCustomerFactory(tenant=tenant_a)
    token = TokenFactory(tenant=tenant_a, business_customer=customer)
    # priced at completion: 11.90 incl. VAT each
    sessions = [
        ChargingSessionFactory(tenant=tenant_a, id_tag=token.uid, token=token, business_customer=customer)
        for _ in range(2)
    ]

    response = client_for(tenant_a, Role.FINANCE).post(
        "/api/v1/invoices/",
        {"business_customer": customer.pk, "period_start": "2026-03-01", "period_end": "2026-03-31"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert sorted(line["session_id"] for line in body["lines"]) == sorted(s.pk for s in sessions)
    assert body["total_incl_vat"] == "23.80"


def test_bank_transfer_recorded_by_finance(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    invoice = issued_invoice(tenant_a)

    response = client_for(tenant_a, Role.FINANCE).post(
        "/api/v1/payments/",
        {"invoice": invoice.pk, "amount": str(invoice.total_incl_vat), "received_on": "2026-04-10"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID


def test_payment_rule_crud_and_fee_limits(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    client = client_for(tenant_a, Role.FINANCE)

    created = client.post(
        "/api/v1/payment-rules/",
        {
            "name": "Parkhaus",
            "payer": "driver",
            "payee": "site_owner",
            "payee_name": "Parkhaus GmbH",
            "platform_fee_flat": "5.00",
            "platform_fee_percent": "12.50",
        },
        format="json",
    )
    bad = client.post(
        "/api/v1/payment-rules/",
        {"name": "Bad", "payer": "driver", "payee": "driver", "payee_name": "x", "platform_fee_percent": "120"},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) >= {"platform_fee_percent"}
    assert PaymentRule.objects.filter(tenant=tenant_a).count() == 1


# --------------------------------------------------------------------------- payouts


def test_payout_statement_subtracts_flat_and_percent_fee(tenant_a: Tenant) -> None:
    site = LocationFactory(tenant=tenant_a)
    elsewhere = LocationFactory(tenant=tenant_a)
    rule = PaymentRuleFactory(
        tenant=tenant_a, location=site, platform_fee_flat=Decimal("5.00"), platform_fee_percent=Decimal("10.00")
    )
    at_site = [ChargingSessionFactory(tenant=tenant_a, charge_point__location=site) for _ in range(3)]
    other = ChargingSessionFactory(tenant=tenant_a, charge_point__location=elsewhere)
    draft = services.invoice_create_draft(
        tenant=tenant_a,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=[(s, price(energy="20.00", time="3.33", flat="0.00")) for s in [*at_site, other]],
    )
    services.invoice_issue(invoice=draft, render=False)

    payout = services.payout_compute(rule=rule, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))

    # 3 sessions x 23.33 = 69.99 excl. VAT; 10 % = 6.999 -> 7.00; flat 5.00; net 69.99 - 12.00 = 57.99
    assert payout.session_count == 3
    assert payout.gross_excl_vat == Decimal("69.99")
    assert (payout.fee_percent_amount, payout.fee_flat, payout.fee_total) == (
        Decimal("7.00"),
        Decimal("5.00"),
        Decimal("12.00"),
    )
    assert payout.net_amount == Decimal("57.99")
    assert [row["excl_vat"] for row in payout.statement] == ["23.33", "23.33", "23.33"]
    with pytest.raises(Conflict) as exc:
        services.payout_compute(rule=rule, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))
    assert exc.value.code == "payout_exists"


def test_payout_status_moves_forward_only(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    rule = PaymentRuleFactory(tenant=tenant_a)
    payout = services.payout_compute(rule=rule, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))
    client = client_for(tenant_a, Role.FINANCE)

    skip = client.post(f"/api/v1/payouts/{payout.pk}/status/", {"status": "paid"}, format="json")
    approve = client.post(f"/api/v1/payouts/{payout.pk}/status/", {"status": "approved"}, format="json")
    pay = client.post(f"/api/v1/payouts/{payout.pk}/status/", {"status": "paid"}, format="json")

    assert (skip.status_code, skip.json()["code"]) == (409, "payout_bad_transition")
    assert approve.json()["status"] == PayoutStatus.APPROVED
    assert pay.json()["status"] == PayoutStatus.PAID
    assert Payout.objects.get(pk=payout.pk).paid_at is not None
