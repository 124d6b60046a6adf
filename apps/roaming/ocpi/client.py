"""Our side as an OCPI client: requests to a partner's endpoints with the transport rules (token encoding, unique
request and correlation ids, routing headers on functional modules), answers checked for the envelope."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from apps.roaming.models import RoamingPartner, TokenStyle
from apps.sessions.ocpi_json import DecimalNumberEncoder


class PartnerCallError(Exception):
    """A call to a partner failed: unreachable, not HTTP 2xx, not the envelope, or an OCPI status other than 1000.
    `ocpi_status` is their status code when they answered one."""

    def __init__(self, message: str, *, http_status: int | None = None, ocpi_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.ocpi_status = ocpi_status


@dataclass(frozen=True)
class OcpiAnswer:
    data: Any
    status_code: int
    http_status: int
    headers: dict[str, str]


def authorization(token: str, style: str = TokenStyle.OCPI_221) -> str:
    if style == TokenStyle.OCPI_211:
        return f"Token {token}"
    return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")


def check_outbound_url(url: str) -> None:
    """Only http(s) URLs, and only to the hosts of settings.OCPI_OUTBOUND_HOSTS when it is set (tests and the fuzz
    keep every partner call on this machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PartnerCallError(f"Not an http(s) URL: {url!r}.")
    allowed: list[str] = list(getattr(settings, "OCPI_OUTBOUND_HOSTS", []) or [])
    if allowed and parts.hostname not in allowed:
        raise PartnerCallError(f"Calls to {parts.hostname} are not allowed here (OCPI_OUTBOUND_HOSTS).")


def call(
    method: str,
    url: str,
    *,
    token: str,
    token_style: str = TokenStyle.OCPI_221,
    body: Any = None,
    routing: RoamingPartner | None = None,
    correlation_id: str | None = None,
    timeout: float | None = None,
) -> OcpiAnswer:
    """One OCPI request; raises PartnerCallError unless the answer is HTTP 2xx with the envelope and status 1000.
    `routing`: the partner of a functional module call (adds OCPI-from/to-* headers)."""
    check_outbound_url(url)
    headers = {
        "Authorization": authorization(token, token_style),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
        "Accept": "application/json",
    }
    if routing is not None:
        headers.update(
            {
                "OCPI-from-country-code": routing.our_country_code,
                "OCPI-from-party-id": routing.our_party_id,
                "OCPI-to-country-code": routing.country_code,
                "OCPI-to-party-id": routing.party_id,
            }
        )
    try:
        response = requests.request(
            method,
            url,
            data=json.dumps(body, cls=DecimalNumberEncoder).encode() if body is not None else None,
            headers={**headers, "Content-Type": "application/json"} if body is not None else headers,
            timeout=timeout or float(getattr(settings, "OCPI_HTTP_TIMEOUT", 10)),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise PartnerCallError(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    ocpi_status = payload.get("status_code") if isinstance(payload, dict) else None
    if not 200 <= response.status_code < 300:
        detail = payload.get("status_message") if isinstance(payload, dict) else response.text[:200]
        raise PartnerCallError(
            f"{method} {url}: HTTP {response.status_code}: {detail}",
            http_status=response.status_code,
            ocpi_status=ocpi_status if isinstance(ocpi_status, int) else None,
        )
    if not isinstance(payload, dict) or not isinstance(ocpi_status, int):
        raise PartnerCallError(f"{method} {url}: the answer is not an OCPI response envelope.", http_status=200)
    if ocpi_status != 1000:
        raise PartnerCallError(
            f"{method} {url}: OCPI status {ocpi_status}: {payload.get('status_message', '')}",
            http_status=response.status_code,
            ocpi_status=ocpi_status,
        )
    return OcpiAnswer(
        data=payload.get("data"),
        status_code=ocpi_status,
        http_status=response.status_code,
        headers=dict(response.headers),
    )
