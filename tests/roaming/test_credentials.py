"""The credentials handshake both ways over real HTTP, with the partner simulator as the other side
(credentials.asciidoc): registration with token A -> B -> C, rotation (PUT), unregistration (DELETE), 405 where
the spec says, and 2001/3001/3002/3003 with nothing stored."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from apps.roaming.models import PartnerStatus, RoamingPartner, token_hash
from apps.roaming.partner_sim import PartnerSimulator
from apps.tenants.models import Tenant
from tests.registry import snapshot
from tests.roaming.factories import partner_for


def tok(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def get(url: str, token: str) -> requests.Response:
    return requests.get(url, headers=tok(token), timeout=10)


def assert_envelope(response: requests.Response, http_status: int, status_code: int) -> dict[str, Any]:
    assert response.status_code == http_status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["status_code"] == status_code, body
    assert isinstance(body["status_message"], str)
    assert len(body["timestamp"]) == 20
    assert body["timestamp"].endswith("Z")
    return body


@pytest.fixture
def pending(tenant_a: Tenant) -> tuple[RoamingPartner, str]:
    return partner_for(tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["locations"])


# --------------------------------------------------------------------------- they register with us


def test_they_register_with_token_a_and_get_token_c(
    ocpi_base: str, sim: PartnerSimulator, pending: tuple[RoamingPartner, str]
) -> None:
    partner, token_a = pending

    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)

    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    token_c = answer["data"]["token"]
    assert answer["data"]["url"] == f"{ocpi_base}/ocpi/versions"
    assert answer["data"]["roles"] == [
        {"role": "CPO", "party_id": "ALP", "country_code": "DE", "business_details": {"name": "Alpha Charge"}}
    ]
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.REGISTERED
    assert partner.last_handshake_at is not None
    assert (partner.our_token_kind, partner.their_token_kind) == ("C", "B")
    assert partner.our_token_hash == token_hash(token_c)
    assert partner.their_token == sim.server_token
    assert partner.version == "2.2.1"
    assert partner.endpoint_url("locations", "RECEIVER")
    assert partner.roles == ["EMSP"]
    assert partner.credentials_roles[0]["business_details"] == {"name": sim.name}
    # we fetched their versions and details with their token B, Base64-encoded
    ours = [r for r in sim.received if r.path in ("/ocpi/versions", "/ocpi/2.2.1")]
    assert [r.path for r in ours] == ["/ocpi/versions", "/ocpi/2.2.1"]
    assert all(r.headers["Authorization"] == tok(sim.server_token)["Authorization"] for r in ours)
    assert all(r.headers.get("X-Request-ID") and r.headers.get("X-Correlation-ID") for r in ours)
    # token A is spent; C opens credentials GET, which answers with C
    assert_envelope(get(f"{ocpi_base}/ocpi/versions", token_a), 401, 2000)
    body = assert_envelope(get(f"{ocpi_base}/ocpi/2.2.1/credentials", token_c), 200, 1000)
    assert body["data"]["token"] == token_c


def test_post_when_registered_is_405_and_changes_nothing(
    ocpi_base: str, sim: PartnerSimulator, pending: tuple[RoamingPartner, str]
) -> None:
    partner, token_a = pending
    sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    partner.refresh_from_db()
    before = snapshot(partner)

    response = requests.post(
        f"{ocpi_base}/ocpi/2.2.1/credentials", json=sim.credentials("other"), headers=tok(sim.client_token), timeout=10
    )

    assert_envelope(response, 405, 2000)
    assert snapshot(partner) == before


def test_put_rotates_both_tokens(ocpi_base: str, sim: PartnerSimulator, pending: tuple[RoamingPartner, str]) -> None:
    partner, token_a = pending
    sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    old_c = sim.client_token

    answer = sim.update_credentials()

    assert answer["status_code"] == 1000, answer
    new_c = answer["data"]["token"]
    assert new_c != old_c
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.REGISTERED
    assert partner.their_token == sim.server_token
    assert_envelope(get(f"{ocpi_base}/ocpi/versions", old_c), 401, 2000)
    assert_envelope(get(f"{ocpi_base}/ocpi/versions", new_c), 200, 1000)


def test_put_and_delete_before_registration_are_405(
    ocpi_base: str, sim: PartnerSimulator, pending: tuple[RoamingPartner, str]
) -> None:
    partner, token_a = pending
    before = snapshot(partner)
    url = f"{ocpi_base}/ocpi/2.2.1/credentials"

    assert_envelope(requests.put(url, json=sim.credentials("x"), headers=tok(token_a), timeout=10), 405, 2000)
    assert_envelope(requests.delete(url, headers=tok(token_a), timeout=10), 405, 2000)
    assert snapshot(partner) == before


def test_delete_unregisters(ocpi_base: str, sim: PartnerSimulator, pending: tuple[RoamingPartner, str]) -> None:
    partner, token_a = pending
    sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    token_c = sim.client_token

    answer = sim.unregister()

    assert answer["status_code"] == 1000
    assert answer["http_status"] == 200
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.PENDING
    assert (partner.our_token_hash, partner.their_token) == (None, "")
    assert_envelope(get(f"{ocpi_base}/ocpi/2.2.1/credentials", token_c), 401, 2000)


@pytest.mark.parametrize(
    ("fault", "status_code"),
    [
        ({"versions": ["2.1.1"]}, 3002),
        ({"details_status": 500}, 3001),
        ({"endpoint_ids": ["credentials", "cdrs"]}, 3003),
        ({"party_id": "XYZ"}, 2001),
    ],
)
def test_registration_errors_store_nothing(
    ocpi_base: str, pending: tuple[RoamingPartner, str], fault: dict[str, Any], status_code: int
) -> None:
    partner, token_a = pending
    before = snapshot(partner)
    sim = PartnerSimulator(**fault).start()
    try:
        answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    finally:
        sim.stop()

    assert (answer["http_status"], answer["status_code"]) == (200, status_code), answer
    assert answer["status_message"]
    partner.refresh_from_db()
    after = snapshot(partner)
    errors = after.pop("last_errors")
    for key in ("last_errors", "updated_at"):
        before.pop(key)
        after.pop(key, None)
    assert after == before  # still pending, token A still the one
    if status_code != 2001:
        assert errors["credentials"]["message"].startswith(str(status_code))


@pytest.mark.parametrize(
    ("body", "http_status"),
    [
        (b"{not json", 400),
        (b'{"token": "ok", "url": "http://127.0.0.1:1/v", "roles": []}', 200),
        (b'{"token": "has space", "url": "http://127.0.0.1:1/v", "roles": [{}]}', 200),
        (b"[]", 200),
        (b"[" * 100000, 400),
    ],
)
def test_invalid_credentials_are_2001(
    ocpi_base: str, pending: tuple[RoamingPartner, str], body: bytes, http_status: int
) -> None:
    partner, token_a = pending
    before = snapshot(partner)

    response = requests.post(
        f"{ocpi_base}/ocpi/2.2.1/credentials",
        data=body,
        headers={**tok(token_a), "Content-Type": "application/json"},
        timeout=10,
    )

    assert_envelope(response, http_status, 2001)
    assert snapshot(partner) == before


# --------------------------------------------------------------------------- we register with them


@pytest.fixture
def outgoing(tenant_a: Tenant, sim: PartnerSimulator) -> RoamingPartner:
    partner, _ = partner_for(
        tenant_a,
        country_code="NL",
        party_id="SIM",
        versions_url=sim.versions_url,
        their_token=sim.server_token,
        enabled_modules=["locations"],
    )
    return partner


def test_we_register_with_them(
    ocpi_base: str, sim: PartnerSimulator, outgoing: RoamingPartner, client_for: Callable[..., APIClient]
) -> None:
    token_a = sim.server_token
    client = client_for(outgoing.tenant)

    response = client.post(f"/api/v1/roaming-partners/{outgoing.pk}/register/", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "registered"
    outgoing.refresh_from_db()
    assert sim.registered
    assert sim.server_token != token_a
    assert (outgoing.their_token, outgoing.their_token_kind, outgoing.our_token_kind) == (sim.server_token, "C", "B")
    # they fetched our versions and details with token B during our POST, and B keeps working
    assert outgoing.our_token_hash == token_hash(sim.client_token)
    assert sim.peer_endpoints[0] == {
        "identifier": "credentials",
        "role": "SENDER",
        "url": f"{ocpi_base}/ocpi/2.2.1/credentials",
    }
    assert_envelope(get(f"{ocpi_base}/ocpi/2.2.1", sim.client_token), 200, 1000)
    post = next(r for r in sim.received if r.method == "POST")
    assert post.headers["Authorization"] == tok(token_a)["Authorization"]
    assert post.body["roles"][0]["party_id"] == "ALP"

    # rotation from our side: new tokens both ways, the old ones refused
    old_b, old_c = sim.client_token, sim.server_token
    response = client.post(f"/api/v1/roaming-partners/{outgoing.pk}/rotate/", {}, format="json")
    assert response.status_code == 200, response.content
    outgoing.refresh_from_db()
    assert sim.client_token != old_b
    assert outgoing.their_token == sim.server_token != old_c
    assert_envelope(get(f"{ocpi_base}/ocpi/versions", old_b), 401, 2000)
    assert_envelope(get(f"{ocpi_base}/ocpi/versions", sim.client_token), 200, 1000)

    # unregistration from our side
    response = client.post(f"/api/v1/roaming-partners/{outgoing.pk}/unregister/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert not sim.registered


def test_we_register_but_they_offer_no_221(
    ocpi_base: str, sim: PartnerSimulator, outgoing: RoamingPartner, client_for: Callable[..., APIClient]
) -> None:
    sim.versions = ["2.1.1"]
    before = snapshot(outgoing)

    response = client_for(outgoing.tenant).post(f"/api/v1/roaming-partners/{outgoing.pk}/register/", {}, format="json")

    assert response.status_code == 502, response.content
    assert response.json()["code"] == "handshake_failed"
    assert response.json()["fields"]["ocpi_status"] == 3002
    outgoing.refresh_from_db()
    assert outgoing.status == PartnerStatus.PENDING
    assert outgoing.our_token_hash == before["our_token_hash"]
    assert "3002" in outgoing.last_errors["credentials"]["message"]
    assert not any(r.method == "POST" for r in sim.received)


def test_register_refused_when_already_registered(
    ocpi_base: str, sim: PartnerSimulator, outgoing: RoamingPartner, client_for: Callable[..., APIClient]
) -> None:
    client = client_for(outgoing.tenant)
    assert client.post(f"/api/v1/roaming-partners/{outgoing.pk}/register/", {}, format="json").status_code == 200

    response = client.post(f"/api/v1/roaming-partners/{outgoing.pk}/register/", {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_pending"
