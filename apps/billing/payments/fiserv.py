"""Fiserv IPG "payments-gateway v2" and the Connect hosted payment page: all of the wire code, in one module.

Wire facts: /work/shared/specs/fiserv-payments.md. Every request carries Content-Type, Api-Key, a fresh
Client-Request-Id, Timestamp (epoch ms) and Message-Signature = Base64(HMAC-SHA256(secret, Api-Key +
Client-Request-Id + Timestamp + body)). A timeout or 5xx leaves the outcome unknown (`ProviderUnavailable`);
the caller looks the transaction up before it retries, so a retry never charges twice.

Hosted page (Connect): the form fields are signed with `hashExtended` = Base64(HMAC-SHA256(shared secret,
the values of all other fields sorted by field name, joined with "|")), as Fiserv's Connect documentation
describes the extended hash. The server-to-server notification is verified the same way over the fields it
carries (its own `hashExtended` excluded); only a verified notification changes a payment.

A real sandbox is used by configuration: FISERV_BASE_URL, FISERV_API_KEY, FISERV_API_SECRET,
FISERV_STORE_ID, FISERV_SHARED_SECRET, FISERV_TIMEOUT (seconds) in settings or the environment.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings

from apps.billing.payments.provider import (
    HostedForm,
    Notification,
    NotificationRejected,
    ProviderError,
    ProviderResult,
    ProviderUnavailable,
)

API_PATH = "/payments-gateway/v2"
CONNECT_PATH = "/connect/gateway/processing"
HASH_FIELD = "hashExtended"


def sign_request(*, api_key: str, secret: str, client_request_id: str, timestamp: str, body: str) -> str:
    message = f"{api_key}{client_request_id}{timestamp}{body}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hash_extended(fields: Mapping[str, str], shared_secret: str) -> str:
    values = "|".join(str(fields[name]) for name in sorted(fields) if name != HASH_FIELD)
    return base64.b64encode(hmac.new(shared_secret.encode(), values.encode(), hashlib.sha256).digest()).decode()


def _amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):.2f}"


class FiservGateway:
    name = "fiserv"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: str,
        store_id: str = "",
        shared_secret: str = "",
        timeout: float = 15.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.api_secret = api_secret
        self.store_id = store_id
        self.shared_secret = shared_secret
        self.timeout = timeout
        self.http = session or requests.Session()

    # ------------------------------------------------------------------ transport

    def _send(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> ProviderResult:
        body = "" if payload is None else json.dumps(payload, separators=(",", ":"))
        request_id = str(uuid.uuid4())
        timestamp = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "Api-Key": self.api_key,
            "Client-Request-Id": request_id,
            "Timestamp": timestamp,
            "Message-Signature": sign_request(
                api_key=self.api_key,
                secret=self.api_secret,
                client_request_id=request_id,
                timestamp=timestamp,
                body=body,
            ),
        }
        url = f"{self.base_url}{API_PATH}{path}"
        try:
            response = self.http.request(method, url, data=body.encode() or None, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:  # timeout, refused, reset: outcome unknown
            raise ProviderUnavailable(f"Fiserv {method} {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 500:
            raise ProviderUnavailable(f"Fiserv {method} {path}: HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderUnavailable(f"Fiserv {method} {path}: answer is not JSON") from exc
        if response.status_code >= 400:
            error = data.get("error") or {}
            raise ProviderError(
                str(error.get("message") or f"HTTP {response.status_code}"),
                code=str(error.get("code") or ""),
                status=response.status_code,
                body=data,
            )
        return self._result(data, request_id)

    @staticmethod
    def _result(data: Mapping[str, Any], request_id: str) -> ProviderResult:
        status = str(data.get("transactionStatus", ""))
        approved_amount = None
        raw_amount = data.get("approvedAmount")
        if isinstance(raw_amount, Mapping) and raw_amount.get("total") is not None:
            try:
                approved_amount = Decimal(str(raw_amount["total"]))
            except InvalidOperation:
                approved_amount = None
        return ProviderResult(
            approved=status == "APPROVED",
            status=status,
            state=str(data.get("transactionState", "")),
            provider_reference=str(data.get("ipgTransactionId", "")),
            request_id=str(data.get("clientRequestId") or request_id),
            approved_amount=approved_amount,
            approval_code=str(data.get("approvalCode", "")),
            raw=dict(data),
        )

    # ------------------------------------------------------------------ primary transactions

    def _primary(
        self, request_type: str, *, amount: Decimal, currency: str, merchant_reference: str, payment_token: str
    ) -> ProviderResult:
        return self._send(
            "POST",
            "/payments",
            {
                "requestType": request_type,
                "transactionAmount": {"total": _amount(amount), "currency": currency},
                "paymentMethod": {"paymentToken": {"value": payment_token}},
                "merchantTransactionId": merchant_reference,
            },
        )

    def preauthorize(
        self, *, amount: Decimal, currency: str, merchant_reference: str, payment_token: str
    ) -> ProviderResult:
        return self._primary(
            "PaymentTokenPreAuthTransaction",
            amount=amount,
            currency=currency,
            merchant_reference=merchant_reference,
            payment_token=payment_token,
        )

    def sale(self, *, amount: Decimal, currency: str, merchant_reference: str, payment_token: str) -> ProviderResult:
        return self._primary(
            "PaymentTokenSaleTransaction",
            amount=amount,
            currency=currency,
            merchant_reference=merchant_reference,
            payment_token=payment_token,
        )

    # ------------------------------------------------------------------ secondary transactions

    def capture(
        self, *, provider_reference: str, amount: Decimal, currency: str, merchant_reference: str
    ) -> ProviderResult:
        return self._send(
            "POST",
            f"/payments/{provider_reference}",
            {
                "requestType": "PostAuthTransaction",
                "transactionAmount": {"total": _amount(amount), "currency": currency},
                "merchantTransactionId": merchant_reference,
            },
        )

    def void(self, *, provider_reference: str, merchant_reference: str) -> ProviderResult:
        return self._send(
            "POST",
            f"/payments/{provider_reference}",
            {"requestType": "VoidTransaction", "merchantTransactionId": merchant_reference},
        )

    def refund(
        self, *, provider_reference: str, amount: Decimal, currency: str, merchant_reference: str
    ) -> ProviderResult:
        return self._send(
            "POST",
            f"/payments/{provider_reference}",
            {
                "requestType": "ReturnTransaction",
                "transactionAmount": {"total": _amount(amount), "currency": currency},
                "merchantTransactionId": merchant_reference,
            },
        )

    def status(self, *, provider_reference: str) -> ProviderResult:
        return self._send("GET", f"/payments/{provider_reference}")

    # ------------------------------------------------------------------ hosted payment page (Connect)

    def hosted_payment_form(
        self,
        *,
        amount: Decimal,
        currency: str,
        merchant_reference: str,
        txntype: str,
        success_url: str,
        fail_url: str,
        notification_url: str,
    ) -> HostedForm:
        if txntype not in ("preauth", "sale"):
            raise ValueError(f"txntype must be preauth or sale, not {txntype!r}")
        fields = {
            "txntype": txntype,
            "timezone": "UTC",
            "txndatetime": dt.datetime.now(dt.UTC).strftime("%Y:%m:%d-%H:%M:%S"),
            "hash_algorithm": "HMACSHA256",
            "storename": self.store_id,
            "chargetotal": _amount(amount),
            "currency": currency,
            "oid": merchant_reference,
            "checkoutoption": "combinedpage",
            "responseSuccessURL": success_url,
            "responseFailURL": fail_url,
            "transactionNotificationURL": notification_url,
        }
        fields[HASH_FIELD] = hash_extended(fields, self.shared_secret)
        return HostedForm(action_url=f"{self.base_url}{CONNECT_PATH}", fields=fields)

    def verify_notification(self, fields: Mapping[str, str]) -> Notification:
        given = fields.get(HASH_FIELD, "")
        expected = hash_extended(fields, self.shared_secret)
        if not given or not hmac.compare_digest(given, expected):
            raise NotificationRejected("bad notification signature")
        if fields.get("storename") != self.store_id:
            raise NotificationRejected("notification for another store")
        try:
            amount = Decimal(fields["chargetotal"])
            return Notification(
                merchant_reference=fields["oid"],
                provider_reference=fields.get("ipgTransactionId", ""),
                approved=fields.get("status", "").upper() == "APPROVED",
                status=fields.get("status", ""),
                txntype=fields.get("txntype", ""),
                amount=amount,
                currency=fields["currency"],
                raw=dict(fields),
            )
        except (KeyError, InvalidOperation) as exc:
            raise NotificationRejected(f"incomplete notification: {exc}") from exc


def _setting(name: str, default: str = "") -> str:
    return str(getattr(settings, name, None) or os.environ.get(name, default))


def fiserv_from_settings() -> FiservGateway:
    return FiservGateway(
        base_url=_setting("FISERV_BASE_URL", "https://prod.emea.api.fiservapps.com/sandbox/ipp"),
        api_key=_setting("FISERV_API_KEY"),
        api_secret=_setting("FISERV_API_SECRET"),
        store_id=_setting("FISERV_STORE_ID"),
        shared_secret=_setting("FISERV_SHARED_SECRET"),
        timeout=float(_setting("FISERV_TIMEOUT", "15")),
    )
