"""DRF permissions follow the tenant role: read-only reads, finance reads, operations and admins write."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from apps.tenants import services
from apps.tenants.models import ApiKey, Invitation, Membership, Role, Tenant, User
from tests.registry import snapshot


@pytest.mark.parametrize("role", [Role.READ_ONLY, Role.FINANCE, Role.OPERATIONS])
def test_only_tenant_admins_change_the_tenant(
    tenant_a: Tenant, client_for: Callable[..., APIClient], role: str
) -> None:
    client = client_for(tenant_a, role)
    before = snapshot(tenant_a)

    assert client.get(f"/api/v1/tenants/{tenant_a.pk}/").status_code == 200
    response = client.patch(f"/api/v1/tenants/{tenant_a.pk}/", {"name": "Renamed"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert snapshot(tenant_a) == before


def test_tenant_admin_edits_own_tenant(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    response = client_for(tenant_a, Role.ADMIN).patch(
        f"/api/v1/tenants/{tenant_a.pk}/", {"name": "Alpha Renamed", "primary_colour": "#FF0000"}, format="json"
    )

    assert response.status_code == 200, response.content
    tenant_a.refresh_from_db()
    assert (tenant_a.name, tenant_a.primary_colour) == ("Alpha Renamed", "#FF0000")


def test_tenant_admin_cannot_create_or_delete_tenants(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    admin = client_for(tenant_a, Role.ADMIN)
    count = Tenant.objects.count()

    created = admin.post("/api/v1/tenants/", {"name": "Mine", "slug": "mine"}, format="json")
    deleted = admin.delete(f"/api/v1/tenants/{tenant_a.pk}/")

    assert created.status_code == 403
    assert deleted.status_code == 403
    assert Tenant.objects.count() == count


def test_superuser_sees_and_creates_tenants(tenant_a: Tenant, tenant_b: Tenant, superuser: User) -> None:
    client = APIClient()
    client.force_authenticate(superuser)

    listed = client.get("/api/v1/tenants/").json()["results"]
    created = client.post(
        "/api/v1/tenants/",
        {"name": "Gamma", "slug": "gamma", "currency": "CHF", "timezone": "Europe/Zurich"},
        format="json",
    )

    assert {t["slug"] for t in listed} == {"alpha", "beta"}
    assert created.status_code == 201, created.content
    assert Tenant.objects.get(slug="gamma").currency == "CHF"


@pytest.mark.parametrize(
    ("field", "value"),
    [("timezone", "Mars/Olympus"), ("currency", "euro"), ("primary_colour", "blue"), ("ocpi_party_id", "TOOLONG")],
)
def test_tenant_fields_are_validated(
    tenant_a: Tenant, client_for: Callable[..., APIClient], field: str, value: str
) -> None:
    before = snapshot(tenant_a)

    response = client_for(tenant_a, Role.ADMIN).patch(f"/api/v1/tenants/{tenant_a.pk}/", {field: value}, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert snapshot(tenant_a) == before


def test_ocpi_party_must_be_unique(tenant_a: Tenant, tenant_b: Tenant, superuser: User) -> None:
    client = APIClient()
    client.force_authenticate(superuser)
    before = snapshot(tenant_b)

    response = client.patch(
        f"/api/v1/tenants/{tenant_b.pk}/", {"ocpi_country_code": "DE", "ocpi_party_id": "ALP"}, format="json"
    )

    assert response.status_code == 400
    assert snapshot(tenant_b) == before


def test_staff_user_lifecycle_by_tenant_admin(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    admin = client_for(tenant_a, Role.ADMIN)

    invited = admin.post("/api/v1/staff-invitations/", {"email": "olga@alpha.example", "role": "operations"})
    assert invited.status_code == 201, invited.content
    token = services.invitation_token(Invitation.objects.get(pk=invited.json()["id"]))
    accepted = APIClient().post("/api/v1/staff-invitations/accept/", {"token": token, "password": "a-long-password"})
    assert accepted.status_code == 201, accepted.content
    membership = Membership.objects.get(pk=accepted.json()["membership"])
    assert membership.tenant == tenant_a
    assert membership.user.is_staff
    assert membership.user.check_password("a-long-password")

    changed = admin.patch(f"/api/v1/staff-users/{membership.pk}/", {"role": "finance"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["role"] == "finance"

    assert admin.delete(f"/api/v1/staff-users/{membership.pk}/").status_code == 204
    user = User.objects.get(username="olga@alpha.example")
    assert not user.memberships.exists()
    assert not user.is_staff


def test_operations_cannot_manage_staff_or_keys(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    ops = client_for(tenant_a, Role.OPERATIONS)
    counts = (Membership.objects.count(), ApiKey.objects.count())

    staff = ops.post("/api/v1/staff-invitations/", {"email": "x@alpha.example", "role": "admin"}, format="json")
    key = ops.post("/api/v1/api-keys/", {"name": "x", "scopes": ["*"]}, format="json")

    assert (staff.status_code, key.status_code) == (403, 403)
    assert (Membership.objects.count(), ApiKey.objects.count(), Invitation.objects.count()) == (*counts, 0)


def test_shared_user_fields_are_protected(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient], make_staff: Callable[..., User]
) -> None:
    person = make_staff(tenant_a, Role.OPERATIONS, username="shared", email="shared@example.com")
    Membership.objects.create(user=person, tenant=tenant_b, role=Role.READ_ONLY)
    membership = Membership.objects.get(user=person, tenant=tenant_a)
    before = snapshot(person)

    response = client_for(tenant_a, Role.ADMIN).patch(
        f"/api/v1/staff-users/{membership.pk}/", {"email": "evil@example.com"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["email"]
    assert snapshot(person) == before


def test_admin_of_several_tenants_must_name_the_tenant(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User]
) -> None:
    user = make_staff(tenant_a, Role.ADMIN)
    Membership.objects.create(user=user, tenant=tenant_b, role=Role.ADMIN)
    client = APIClient()
    client.force_authenticate(user)
    count = ApiKey.objects.count()

    missing = client.post("/api/v1/api-keys/", {"name": "k", "scopes": ["*"]}, format="json")
    named = client.post("/api/v1/api-keys/", {"name": "k", "scopes": ["*"], "tenant": tenant_b.pk}, format="json")

    assert missing.status_code == 400
    assert "tenant" in missing.json()["fields"]
    assert named.status_code == 201
    assert ApiKey.objects.count() == count + 1
    assert ApiKey.objects.get(pk=named.json()["id"]).tenant == tenant_b


def test_cannot_create_in_a_tenant_without_write_role(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User]
) -> None:
    user = make_staff(tenant_a, Role.ADMIN)
    Membership.objects.create(user=user, tenant=tenant_b, role=Role.READ_ONLY)
    client = APIClient()
    client.force_authenticate(user)
    count = ApiKey.objects.count()

    response = client.post("/api/v1/api-keys/", {"name": "k", "scopes": ["*"], "tenant": tenant_b.pk}, format="json")

    assert response.status_code == 400
    assert "tenant" in response.json()["fields"]
    assert ApiKey.objects.count() == count


def test_user_without_membership_has_no_api_access(make_staff: Callable[..., User], tenant_a: Tenant) -> None:
    user = User.objects.create_user(username="loner", password="x-long-password")
    client = APIClient()
    client.force_authenticate(user)

    assert client.get("/api/v1/tenants/").status_code == 403
