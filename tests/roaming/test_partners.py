"""The partner registry: created, changed, suspended and deleted through the API and the admin, tenant-scoped;
our tokens stored as hashes, theirs never shown in full; deletion refused while sessions name the partner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.roaming import selectors
from apps.roaming.models import PartnerStatus, RoamingPartner, token_hash
from apps.tenants.models import Role, Tenant
from tests.charging.factories import ChargingSessionFactory
from tests.registry import snapshot
from tests.roaming.factories import partner_for
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/roaming-partners/"


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Plugsurfing-like eMSP",
        "country_code": "NL",
        "party_id": "EMS",
        "roles": ["EMSP"],
        "versions_url": "https://emsp.example.com/ocpi/versions",
        "their_token": "their-secret-token-a-0123456789",
        "enabled_modules": ["locations", "tokens"],
    }
    data.update(overrides)
    return data


def test_create_issues_token_a_once_and_stores_only_its_hash(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    client = client_for(tenant_a)

    response = client.post(URL, body(), format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    token_a = data["token_a"]
    assert 20 <= len(token_a) <= 64
    assert all(0x21 <= ord(c) <= 0x7E for c in token_a)
    partner = RoamingPartner.objects.get(pk=data["id"])
    assert partner.tenant == tenant_a
    assert (partner.our_country_code, partner.our_party_id, partner.our_roles) == ("DE", "ALP", ["CPO"])
    assert partner.status == PartnerStatus.PENDING
    assert partner.our_token_hash == token_hash(token_a)
    assert partner.our_token_kind == "A"
    assert token_a not in str(snapshot(partner))
    assert selectors.partner_by_token(token_a) == partner
    # theirs is kept (we must send it) but never shown in full
    assert partner.their_token == "their-secret-token-a-0123456789"
    assert partner.their_token_kind == "A"
    assert "their_token" not in data
    assert data["their_token_masked"] == "thei…"
    shown = client.get(f"{URL}{partner.pk}/").json()
    assert "token_a" not in shown
    assert "their-secret" not in str(shown)
    assert shown["our_token_hint"] == token_a[:4]


def test_duplicate_party_in_a_tenant_is_a_409_and_changes_nothing(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    partner, _ = partner_for(tenant_a, country_code="NL", party_id="EMS")
    before = snapshot(partner)

    response = client_for(tenant_a).post(URL, body(), format="json")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "conflict"
    assert "NL*EMS" in response.json()["message"]
    assert RoamingPartner.objects.count() == 1
    assert snapshot(partner) == before
    # another tenant is another party: the same eMSP may roam with both
    assert client_for(tenant_b).post(URL, body(), format="json").status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country_code", "nl"),
        ("party_id", "TOOLONG"),
        ("roles", ["PIRATE"]),
        ("enabled_modules", ["teleport"]),
        ("enabled_modules", ["locations", "locations"]),
        ("token_style", "1.0"),
        ("versions_url", "not a url"),
        ("their_token", "x" * 65),
    ],
)
def test_invalid_fields_are_400_naming_the_field(
    tenant_a: Tenant, client_for: Callable[..., APIClient], field: str, value: Any
) -> None:
    response = client_for(tenant_a).post(URL, body(**{field: value}), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not RoamingPartner.objects.exists()


def test_suspend_refuses_its_token_and_reinstate_restores(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    partner, token_a = partner_for(tenant_a)
    client = client_for(tenant_a)

    response = client.post(f"{URL}{partner.pk}/suspend/", {}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    assert client.post(f"{URL}{partner.pk}/reinstate/", {}, format="json").json()["status"] == "pending"
    assert selectors.partner_by_token(token_a) == partner


def test_new_token_a_replaces_the_old(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    partner, old = partner_for(tenant_a)

    response = client_for(tenant_a).post(f"{URL}{partner.pk}/token-a/", {}, format="json")

    assert response.status_code == 200
    new = response.json()["token_a"]
    assert new != old
    assert selectors.partner_by_token(old) is None
    assert selectors.partner_by_token(new) == partner


def test_delete_refused_while_sessions_name_the_partner(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    partner, _ = partner_for(tenant_a, country_code="NL", party_id="EMS")
    ChargingSessionFactory(charge_point=ChargePointFactory(tenant=tenant_a), roaming_partner="NL*EMS")
    before = snapshot(partner)

    response = client_for(tenant_a).delete(f"{URL}{partner.pk}/")

    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "protected"
    assert error["fields"]["dependents"] == {"charging.chargingsession": 1}
    assert "suspend" in error["fields"]["instead"]
    assert snapshot(partner) == before


def test_delete_without_sessions(tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]) -> None:
    partner, _ = partner_for(tenant_a, country_code="NL", party_id="EMS")
    # a session of another tenant with the same party does not hold this tenant's partner
    ChargingSessionFactory(charge_point=ChargePointFactory(tenant=tenant_b), roaming_partner="NL*EMS")

    assert client_for(tenant_a).delete(f"{URL}{partner.pk}/").status_code == 204
    assert not RoamingPartner.objects.filter(pk=partner.pk).exists()


def test_other_tenants_partner_is_404_and_read_only_role_cannot_write(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    theirs, _ = partner_for(tenant_b)
    mine, _ = partner_for(tenant_a)
    before = snapshot(theirs)

    assert client_for(tenant_a).get(f"{URL}{theirs.pk}/").status_code == 404
    assert client_for(tenant_a).post(f"{URL}{theirs.pk}/suspend/", {}, format="json").status_code == 404
    assert client_for(tenant_a, Role.OPERATIONS).post(f"{URL}{mine.pk}/suspend/", {}, format="json").status_code == 403
    assert snapshot(theirs) == before
    assert [p["id"] for p in client_for(tenant_a).get(URL).json()["results"]] == [mine.pk]


def test_registered_partner_party_and_token_are_locked(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    partner, _ = partner_for(tenant_a)
    RoamingPartner.objects.filter(pk=partner.pk).update(status=PartnerStatus.REGISTERED, their_token="c-token")
    partner.refresh_from_db()
    before = snapshot(partner)

    response = client_for(tenant_a).patch(f"{URL}{partner.pk}/", {"their_token": "other"}, format="json")

    assert response.status_code == 409
    assert "their_token" in response.json()["fields"]
    assert snapshot(partner) == before
    assert client_for(tenant_a).patch(f"{URL}{partner.pk}/", {"name": "Renamed"}, format="json").status_code == 200


def test_admin_shows_handshake_state_and_refuses_protected_delete(
    tenant_a: Tenant, make_staff: Callable[..., Any], client: Any
) -> None:
    partner, _ = partner_for(tenant_a, country_code="NL", party_id="EMS")
    RoamingPartner.objects.filter(pk=partner.pk).update(
        last_errors={"credentials": {"at": "2026-12-04T10:00:00Z", "message": "3002 no mutual version"}}
    )
    ChargingSessionFactory(charge_point=ChargePointFactory(tenant=tenant_a), roaming_partner="NL*EMS")
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))

    listing = client.get("/admin/roaming/roamingpartner/").content.decode()
    assert "NL*EMS" in listing
    assert "Pending" in listing
    assert "3002 no mutual version" in listing

    page = client.post(f"/admin/roaming/roamingpartner/{partner.pk}/delete/", {"post": "yes"})
    assert RoamingPartner.objects.filter(pk=partner.pk).exists()
    assert "1 charging session" in page.content.decode()


def test_admin_creates_a_partner_and_shows_token_a_once(
    tenant_a: Tenant, make_staff: Callable[..., Any], client: Any
) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))

    response = client.post(
        "/admin/roaming/roamingpartner/add/",
        {
            "tenant": tenant_a.pk,
            "name": "Admin eMSP",
            "our_country_code": "DE",
            "our_party_id": "ALP",
            "our_roles": "CPO",
            "country_code": "BE",
            "party_id": "ADM",
            "versions_url": "",
            "token_style": "2.2.1",
            "enabled_modules": "locations",
            "their_token": "",
        },
        follow=True,
    )

    partner = RoamingPartner.objects.get(party_id="ADM")
    shown = [str(m) for m in response.context["messages"]]
    token = next(m.rsplit(" ", 1)[1] for m in shown if "CREDENTIALS_TOKEN_A" in m)
    assert selectors.partner_by_token(token) == partner
