"""Transport rules of transport_and_format.asciidoc and status_codes.asciidoc over real HTTP (daphne): the
Authorization header, 401/404/405 in the envelope, request and correlation ids, the versions module."""

from __future__ import annotations

import base64
import re
import uuid

import pytest
import requests

from apps.roaming import services
from apps.roaming.models import RoamingPartner
from apps.tenants.models import Tenant
from tests.roaming.factories import partner_for
from tests.roaming.test_credentials import assert_envelope, tok

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture
def partner(tenant_a: Tenant) -> tuple[RoamingPartner, str]:
    return partner_for(tenant_a, country_code="NL", party_id="EMS")


@pytest.mark.parametrize(
    "header",
    [None, "", "Token", "Token ", "Bearer abc", "Token bm90LWEtdG9rZW4=", "Token !!not-base64!!"],
)
def test_missing_or_unknown_token_is_401_in_the_envelope(
    ocpi_base: str, partner: tuple[RoamingPartner, str], header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}

    response = requests.get(f"{ocpi_base}/ocpi/versions", headers=headers, timeout=10)

    body = assert_envelope(response, 401, 2000)
    assert "data" not in body
    assert TIMESTAMP.match(body["timestamp"])
    assert response.headers["WWW-Authenticate"] == "Token"


def test_base64_token_accepted_raw_token_only_for_211_style(
    ocpi_base: str, partner: tuple[RoamingPartner, str], tenant_a: Tenant
) -> None:
    _, token = partner
    url = f"{ocpi_base}/ocpi/versions"

    assert_envelope(requests.get(url, headers=tok(token), timeout=10), 200, 1000)
    # the spec's own example encodes a trailing newline (`echo`): accepted too
    newline = "Token " + base64.b64encode((token + "\n").encode()).decode()
    assert_envelope(requests.get(url, headers={"Authorization": newline}, timeout=10), 200, 1000)
    raw = {"Authorization": f"Token {token}"}
    assert_envelope(requests.get(url, headers=raw, timeout=10), 401, 2000)

    _old_style, old_token = partner_for(tenant_a, country_code="NL", party_id="OLD", token_style="2.1.1")
    assert_envelope(requests.get(url, headers={"Authorization": f"Token {old_token}"}, timeout=10), 200, 1000)
    assert_envelope(requests.get(url, headers=tok(old_token), timeout=10), 200, 1000)


def test_suspended_partner_is_401(ocpi_base: str, partner: tuple[RoamingPartner, str]) -> None:
    row, token = partner
    services.partner_suspend(partner=row)

    assert_envelope(requests.get(f"{ocpi_base}/ocpi/versions", headers=tok(token), timeout=10), 401, 2000)


def test_versions_and_details(ocpi_base: str, partner: tuple[RoamingPartner, str]) -> None:
    _, token = partner

    versions = assert_envelope(requests.get(f"{ocpi_base}/ocpi/versions", headers=tok(token), timeout=10), 200, 1000)
    assert versions["data"] == [{"version": "2.2.1", "url": f"{ocpi_base}/ocpi/2.2.1"}]
    details = assert_envelope(requests.get(f"{ocpi_base}/ocpi/2.2.1", headers=tok(token), timeout=10), 200, 1000)
    assert details["data"]["version"] == "2.2.1"
    endpoints = details["data"]["endpoints"]
    assert endpoints[0] == {"identifier": "credentials", "role": "SENDER", "url": f"{ocpi_base}/ocpi/2.2.1/credentials"}
    assert all(e["role"] in ("SENDER", "RECEIVER") for e in endpoints)


def test_request_and_correlation_ids_echoed_or_made(ocpi_base: str, partner: tuple[RoamingPartner, str]) -> None:
    _, token = partner
    ids = {"X-Request-ID": "req-123", "X-Correlation-ID": "corr-456"}

    echoed = requests.get(f"{ocpi_base}/ocpi/versions", headers={**tok(token), **ids}, timeout=10)
    made = requests.get(f"{ocpi_base}/ocpi/versions", headers=tok(token), timeout=10)
    refused = requests.get(f"{ocpi_base}/ocpi/versions", headers=ids, timeout=10)

    for response in (echoed, refused):
        assert (response.headers["X-Request-ID"], response.headers["X-Correlation-ID"]) == ("req-123", "corr-456")
    uuid.UUID(made.headers["X-Request-ID"])
    uuid.UUID(made.headers["X-Correlation-ID"])


@pytest.mark.parametrize("path", ["/ocpi/", "/ocpi/nothing", "/ocpi/2.2.1/nothing/", "/ocpi/cpo/2.2.1/teleport"])
def test_unknown_paths_are_404_in_the_envelope(ocpi_base: str, partner: tuple[RoamingPartner, str], path: str) -> None:
    _, token = partner

    response = requests.get(f"{ocpi_base}{path}", headers={**tok(token), "X-Request-ID": "r1"}, timeout=10)

    assert_envelope(response, 404, 2000)
    assert response.headers["X-Request-ID"] == "r1"


def test_wrong_method_is_405_in_the_envelope(ocpi_base: str, partner: tuple[RoamingPartner, str]) -> None:
    _, token = partner

    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = requests.request(method, f"{ocpi_base}/ocpi/versions", headers=tok(token), timeout=10)
        assert_envelope(response, 405, 2000)
        assert response.headers["Allow"] == "GET"
