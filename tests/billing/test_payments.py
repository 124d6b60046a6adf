"""Payments through the Fiserv adapter against a local server that speaks Fiserv's wire format, and bank transfers."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest

from apps.billing import services
from apps.billing.models import InvoiceStatus, Payment, PaymentEvent, PaymentStatus
from apps.billing.payments.fiserv import FiservGateway, hash_extended
from apps.billing.payments.provider import NotificationRejected
from apps.core.errors import ApplicationError, Conflict
from apps.tenants.models import Tenant
from tests.billing.factories import issued_invoice
from tests.billing.fiserv_fake import API_KEY, API_SECRET, Behaviour, FakeFiserv, fake_fiserv

pytestmark = pytest.mark.django_db

STORE = "4530000001"
SHARED = "connect-shared-secret"


@pytest.fixture
def fiserv() -> Iterator[FakeFiserv]:
    with fake_fiserv() as fake:
        yield fake


@pytest.fixture
def gateway(fiserv: FakeFiserv) -> FiservGateway:
    return FiservGateway(
        base_url=fiserv.base_url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        store_id=STORE,
        shared_secret=SHARED,
        timeout=0.5,
    )


def actions(payment: Payment) -> list[tuple[str, str, str]]:
    return list(PaymentEvent.objects.filter(payment=payment).values_list("action", "from_status", "to_status"))


def authorized(tenant: Tenant, gateway: FiservGateway, amount: str = "50.00") -> Payment:
    return services.payment_preauthorize(
        tenant=tenant, amount=Decimal(amount), payment_token="tok-4111", session_id=7, provider=gateway
    )


def test_preauthorisation_is_signed_and_holds_the_amount(
    tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv
) -> None:
    payment = authorized(tenant_a, gateway)

    assert payment.status == PaymentStatus.AUTHORIZED
    assert payment.amount_authorized == Decimal("50.00")
    sent = fiserv.requests[0]
    assert sent["method"] == "POST"
    assert sent["path"] == "/payments-gateway/v2/payments"
    assert sent["body"] == {
        "requestType": "PaymentTokenPreAuthTransaction",
        "transactionAmount": {"total": "50.00", "currency": "EUR"},
        "paymentMethod": {"paymentToken": {"value": "tok-4111"}},
        "merchantTransactionId": payment.merchant_reference,
    }
    assert fiserv.transactions[payment.provider_reference]["transactionState"] == "AUTHORIZED"
    assert actions(payment) == [("created", "", "pending"), ("preauthorized", "pending", "authorized")]


def test_a_wrong_secret_is_refused_by_the_gateway(tenant_a: Tenant, fiserv: FakeFiserv) -> None:
    bad = FiservGateway(base_url=fiserv.base_url, api_key=API_KEY, api_secret="wrong", timeout=0.5)

    payment = authorized(tenant_a, bad)

    assert payment.status == PaymentStatus.FAILED
    assert payment.last_error == "bad Message-Signature"
    assert fiserv.transactions == {}


def test_a_declined_preauthorisation_is_recorded(tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv) -> None:
    fiserv.behaviours.append(Behaviour("decline"))

    payment = authorized(tenant_a, gateway)

    assert payment.status == PaymentStatus.DECLINED
    assert payment.amount_authorized == Decimal("0.00")
    assert actions(payment)[-1] == ("preauth_declined", "pending", "declined")


def test_capture_takes_the_final_amount(tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv) -> None:
    payment = authorized(tenant_a, gateway)

    payment = services.payment_capture(payment=payment, amount=Decimal("23.45"), provider=gateway)

    assert payment.status == PaymentStatus.CAPTURED
    assert payment.amount_captured == Decimal("23.45")
    capture = fiserv.requests[-1]
    assert capture["path"] == f"/payments-gateway/v2/payments/{payment.provider_reference}"
    assert capture["body"]["requestType"] == "PostAuthTransaction"
    assert capture["body"]["transactionAmount"] == {"total": "23.45", "currency": "EUR"}
    assert fiserv.count("PostAuthTransaction") == 1
    assert [a[0] for a in actions(payment)] == ["created", "preauthorized", "capture_claimed", "captured"]


def test_capture_above_the_held_amount_is_refused_and_nothing_is_sent(
    tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv
) -> None:
    payment = authorized(tenant_a, gateway, "20.00")
    sent_before = len(fiserv.requests)

    with pytest.raises(ApplicationError) as exc:
        services.payment_capture(payment=payment, amount=Decimal("20.01"), provider=gateway)

    assert exc.value.code == "amount_exceeds_authorization"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED
    assert len(fiserv.requests) == sent_before


def test_capture_retried_after_a_timeout_captures_exactly_once(
    tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv
) -> None:
    # given the gateway applies the capture but answers after our 0.5 s timeout
    payment = authorized(tenant_a, gateway)
    fiserv.behaviours.append(Behaviour("slow_after", delay=1.0, request_type="PostAuthTransaction"))

    with pytest.raises(ApplicationError) as exc:
        services.payment_capture(payment=payment, amount=Decimal("30.00"), provider=gateway)
    assert exc.value.code == "payment_outcome_unknown"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.CAPTURING

    # when the caller retries (a second capture call is refused; reconciliation asks the gateway first)
    with pytest.raises(Conflict):
        services.payment_capture(payment=payment, amount=Decimal("30.00"), provider=gateway)
    payment = services.payment_capture_reconcile(payment=payment, amount=Decimal("30.00"), provider=gateway)
    again = services.payment_capture_reconcile(payment=payment, amount=Decimal("30.00"), provider=gateway)

    # then the money was captured once
    assert payment.status == again.status == PaymentStatus.CAPTURED
    assert payment.amount_captured == Decimal("30.00")
    assert fiserv.count("PostAuthTransaction") == 1
    assert [a[0] for a in actions(payment)] == [
        "created",
        "preauthorized",
        "capture_claimed",
        "capture_unknown",
        "capture_confirmed",
    ]


def test_capture_lost_before_the_gateway_applied_it_is_sent_again_once(
    tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv
) -> None:
    payment = authorized(tenant_a, gateway)
    fiserv.behaviours.append(Behaviour("error500", request_type="PostAuthTransaction"))

    with pytest.raises(ApplicationError):
        services.payment_capture(payment=payment, amount=Decimal("12.00"), provider=gateway)
    payment = services.payment_capture_reconcile(payment=payment, amount=Decimal("12.00"), provider=gateway)

    assert payment.status == PaymentStatus.CAPTURED
    assert fiserv.count("PostAuthTransaction") == 1
    assert [a[0] for a in actions(payment)][-3:] == ["capture_unknown", "capture_resend", "captured"]


def test_a_refused_capture_leaves_the_authorisation(
    tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv
) -> None:
    payment = authorized(tenant_a, gateway)
    fiserv.behaviours.append(Behaviour("error400", request_type="PostAuthTransaction"))

    with pytest.raises(ApplicationError) as exc:
        services.payment_capture(payment=payment, amount=Decimal("12.00"), provider=gateway)

    assert exc.value.code == "payment_refused"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.AUTHORIZED
    assert payment.last_error == "transactionAmount.total is invalid"
    assert fiserv.transactions[payment.provider_reference]["transactionState"] == "AUTHORIZED"


def test_void_releases_the_hold(tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv) -> None:
    payment = authorized(tenant_a, gateway)

    payment = services.payment_void(payment=payment, provider=gateway)

    assert payment.status == PaymentStatus.VOIDED
    assert fiserv.transactions[payment.provider_reference]["transactionState"] == "VOIDED"
    assert fiserv.requests[-1]["body"]["requestType"] == "VoidTransaction"


def test_partial_then_full_refund(tenant_a: Tenant, gateway: FiservGateway, fiserv: FakeFiserv) -> None:
    payment = authorized(tenant_a, gateway)
    payment = services.payment_capture(payment=payment, amount=Decimal("40.00"), provider=gateway)

    payment = services.payment_refund(payment=payment, amount=Decimal("15.00"), provider=gateway)
    assert (payment.status, payment.amount_refunded) == (PaymentStatus.CAPTURED, Decimal("15.00"))
    with pytest.raises(ApplicationError) as exc:
        services.payment_refund(payment=payment, amount=Decimal("25.01"), provider=gateway)
    assert exc.value.code == "amount_exceeds_capture"
    payment = services.payment_refund(payment=payment, amount=Decimal("25.00"), provider=gateway)

    assert (payment.status, payment.amount_refunded) == (PaymentStatus.REFUNDED, Decimal("40.00"))
    assert fiserv.count("ReturnTransaction") == 2


# --------------------------------------------------------------------------- hosted payment page


def test_hosted_page_form_is_signed_and_a_verified_notification_authorises(
    tenant_a: Tenant, gateway: FiservGateway
) -> None:
    payment, form = services.payment_hosted_page_start(
        tenant=tenant_a,
        amount=Decimal("25.00"),
        txntype="preauth",
        success_url="https://app.example/ok",
        fail_url="https://app.example/fail",
        notification_url="https://api.example/api/v1/payment-notifications/fiserv/",
        session_id=9,
        provider=gateway,
    )
    assert form.action_url == f"{gateway.base_url}/connect/gateway/processing"
    assert form.fields["hashExtended"] == hash_extended(form.fields, SHARED)
    assert form.fields["chargetotal"] == "25.00"
    assert form.fields["oid"] == payment.merchant_reference

    notification = {
        "oid": payment.merchant_reference,
        "storename": STORE,
        "txntype": "preauth",
        "status": "APPROVED",
        "chargetotal": "25.00",
        "currency": "EUR",
        "ipgTransactionId": "84000001",
        "approval_code": "Y:1",
    }
    notification["hashExtended"] = hash_extended(notification, SHARED)
    result = services.payment_notification_handle(fields=notification, provider=gateway)

    assert result.status == PaymentStatus.AUTHORIZED
    assert result.amount_authorized == Decimal("25.00")
    assert result.provider_reference == "84000001"


def test_a_notification_with_a_bad_signature_changes_nothing(tenant_a: Tenant, gateway: FiservGateway) -> None:
    payment, _ = services.payment_hosted_page_start(
        tenant=tenant_a,
        amount=Decimal("25.00"),
        txntype="sale",
        success_url="https://a/ok",
        fail_url="https://a/f",
        notification_url="https://a/n",
        provider=gateway,
    )
    forged = {
        "oid": payment.merchant_reference,
        "storename": STORE,
        "txntype": "sale",
        "status": "APPROVED",
        "chargetotal": "25.00",
        "currency": "EUR",
        "ipgTransactionId": "1",
    }
    forged["hashExtended"] = hash_extended({**forged, "chargetotal": "2.50"}, SHARED)

    with pytest.raises(NotificationRejected):
        services.payment_notification_handle(fields=forged, provider=gateway)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.amount_captured == Decimal("0.00")


def test_notification_endpoint_rejects_unsigned_posts(client: object, tenant_a: Tenant) -> None:
    response = client.post("/api/v1/payment-notifications/fiserv/", {"oid": "x", "status": "APPROVED"})  # type: ignore[attr-defined]

    assert response.status_code == 400
    assert response.json()["code"] == "notification_rejected"


# --------------------------------------------------------------------------- bank transfer / SEPA


def test_bank_transfer_settles_the_invoice_and_leaves_audit_rows(tenant_a: Tenant) -> None:
    invoice = issued_invoice(tenant_a)

    payment = services.payment_record_bank_transfer(
        invoice=invoice, amount=invoice.total_incl_vat, received_on=dt.date(2026, 4, 3), bank_reference=invoice.number
    )

    invoice.refresh_from_db()
    assert payment.status == PaymentStatus.CAPTURED
    assert invoice.status == InvoiceStatus.PAID
    assert list(invoice.events.values_list("action", flat=True)) == ["created", "issued", "paid"]
    assert actions(payment) == [("bank_transfer_received", "", "captured")]


def test_bank_statement_import_matches_invoice_numbers_once(tenant_a: Tenant) -> None:
    invoice = issued_invoice(tenant_a)
    half = (invoice.total_incl_vat / 2).quantize(Decimal("0.01"))
    rest = invoice.total_incl_vat - half
    csv_text = (
        "date,amount,reference\n"
        f"2026-04-02,{half},Payment {invoice.number} thanks\n"
        f"2026-04-05,{rest},{invoice.number.lower()}\n"
        "2026-04-05,10.00,no number here\n"
        "yesterday,1.00,x\n"
    )

    first = services.bank_statement_import(tenant=tenant_a, file=io.BytesIO(csv_text.encode()))
    second = services.bank_statement_import(tenant=tenant_a, file=io.BytesIO(csv_text.encode()))

    invoice.refresh_from_db()
    assert first.matched == [invoice.number, invoice.number]
    assert first.unmatched == [
        {"line": "4", "reason": "no invoice number matched"},
        {"line": "5", "reason": "bad date or amount"},
    ]
    assert second.matched == []
    assert [u["reason"] for u in second.unmatched][:2] == ["already imported", "already imported"]
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.filter(invoice=invoice).count() == 2
