"""The payment provider interface. Services call it; wire formats live in the implementations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol


class ProviderError(Exception):
    """The provider answered with an error (4xx): the request was refused and nothing happened."""

    def __init__(self, message: str, *, code: str = "", status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.body = body


class ProviderUnavailable(Exception):
    """Timeout, connection failure or 5xx: the outcome is unknown; look the transaction up before retrying."""


class NotificationRejected(Exception):
    """A server-to-server notification whose signature or content does not check out."""


@dataclass(frozen=True)
class ProviderResult:
    approved: bool
    status: str  # APPROVED, DECLINED, WAITING, VALIDATION_FAILED, ...
    state: str  # AUTHORIZED, CAPTURED, VOIDED, RETURNED, ... ("" when unknown)
    provider_reference: str  # ipgTransactionId
    request_id: str
    approved_amount: Decimal | None = None
    approval_code: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostedForm:
    """An HTML form the browser posts to the provider's hosted payment page."""

    action_url: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Notification:
    merchant_reference: str
    provider_reference: str
    approved: bool
    status: str
    txntype: str
    amount: Decimal
    currency: str
    raw: Mapping[str, str] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str

    def preauthorize(
        self, *, amount: Decimal, currency: str, merchant_reference: str, payment_token: str
    ) -> ProviderResult: ...

    def sale(
        self, *, amount: Decimal, currency: str, merchant_reference: str, payment_token: str
    ) -> ProviderResult: ...

    def capture(
        self, *, provider_reference: str, amount: Decimal, currency: str, merchant_reference: str
    ) -> ProviderResult: ...

    def void(self, *, provider_reference: str, merchant_reference: str) -> ProviderResult: ...

    def refund(
        self, *, provider_reference: str, amount: Decimal, currency: str, merchant_reference: str
    ) -> ProviderResult: ...

    def status(self, *, provider_reference: str) -> ProviderResult: ...

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
    ) -> HostedForm: ...

    def verify_notification(self, fields: Mapping[str, str]) -> Notification: ...
