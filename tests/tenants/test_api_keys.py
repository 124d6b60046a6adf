from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.tenants.models import ApiKey, Role, Tenant
from tests.registry import snapshot
from tests.tenants.factories import api_key_for


def test_created_key_is_shown_once_and_stored_only_as_hash(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    admin = client_for(tenant_a, Role.ADMIN)

    created = admin.post("/api/v1/api-keys/", {"name": "ERP", "scopes": ["stations:read"]}, format="json")

    assert created.status_code == 201, created.content
    raw = created.json()["key"]
    key = ApiKey.objects.get(pk=created.json()["id"])
    assert raw.startswith(f"evp_{key.prefix}_")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(snapshot(key).values())
    listed = admin.get(f"/api/v1/api-keys/{key.pk}/").json()
    assert "key" not in listed
    assert listed["tenant"] == tenant_a.pk


def test_key_authenticates_and_sees_only_its_tenant(tenant_a: Tenant, tenant_b: Tenant) -> None:
    _, raw = api_key_for(tenant_a, ["tenants:read"])
    client = APIClient()

    for header in ({"HTTP_AUTHORIZATION": f"Api-Key {raw}"}, {"HTTP_X_API_KEY": raw}):
        response = client.get("/api/v1/tenants/", **header)
        assert response.status_code == 200
        assert [t["slug"] for t in response.json()["results"]] == ["alpha"]


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda key: setattr(key, "revoked_at", timezone.now()), "api_key_revoked"),
        (lambda key: setattr(key, "expires_at", timezone.now() - timedelta(seconds=1)), "api_key_expired"),
    ],
    ids=["revoked", "expired"],
)
def test_revoked_or_expired_key_is_401(tenant_a: Tenant, mutate: Callable[[ApiKey], None], code: str) -> None:
    key, raw = api_key_for(tenant_a)
    mutate(key)
    key.save()

    response = APIClient().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Api-Key {raw}")

    assert response.status_code == 401
    assert response.json()["code"] == code


@pytest.mark.parametrize("raw", ["nonsense", "evp_abc", "evp_deadbeef_wrong-secret", "evp__x"])
def test_malformed_or_unknown_key_is_401(tenant_a: Tenant, raw: str) -> None:
    api_key_for(tenant_a)

    response = APIClient().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Api-Key {raw}")

    assert response.status_code == 401
    assert response.json() == {"code": "invalid_api_key", "message": "Invalid API key.", "fields": {}}


def test_wrong_secret_with_real_prefix_is_401(tenant_a: Tenant) -> None:
    key, _ = api_key_for(tenant_a)

    response = APIClient().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Api-Key evp_{key.prefix}_not-the-secret")

    assert response.status_code == 401


def test_scopes_limit_what_a_key_may_do(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> None:
    reader = key_client_for(tenant_a, ["tenants:read"])
    before = snapshot(tenant_a)

    assert reader.get("/api/v1/tenants/").status_code == 200
    assert reader.get("/api/v1/api-keys/").status_code == 403
    denied = reader.patch(f"/api/v1/tenants/{tenant_a.pk}/", {"name": "Renamed"}, format="json")

    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert snapshot(tenant_a) == before


def test_key_cannot_grant_scopes_it_does_not_hold(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> None:
    manager = key_client_for(tenant_a, ["api_keys:write"])
    count = ApiKey.objects.count()

    response = manager.post("/api/v1/api-keys/", {"name": "wider", "scopes": ["*"]}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "scope_escalation"
    assert ApiKey.objects.count() == count


def test_delete_revokes_and_key_stops_working(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    key, raw = api_key_for(tenant_a, ["tenants:read"])
    admin = client_for(tenant_a, Role.ADMIN)

    assert admin.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 204

    key.refresh_from_db()
    assert key.revoked_at is not None
    assert APIClient().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Api-Key {raw}").status_code == 401


def test_expiry_in_the_past_is_refused(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    admin = client_for(tenant_a, Role.ADMIN)
    count = ApiKey.objects.count()

    response = admin.post(
        "/api/v1/api-keys/",
        {"name": "old", "scopes": ["*"], "expires_at": "2000-01-01T00:00:00Z"},
        format="json",
    )

    assert response.status_code == 400
    assert "expires_at" in response.json()["fields"]
    assert ApiKey.objects.count() == count


def test_duplicate_name_is_refused(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    api_key_for(tenant_a, name="ERP")
    admin = client_for(tenant_a, Role.ADMIN)

    response = admin.post("/api/v1/api-keys/", {"name": "ERP", "scopes": ["*"]}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert ApiKey.objects.filter(tenant=tenant_a, name="ERP").count() == 1


def test_last_used_is_recorded(tenant_a: Tenant) -> None:
    key, raw = api_key_for(tenant_a)
    assert key.last_used_at is None

    APIClient().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Api-Key {raw}")

    key.refresh_from_db()
    assert key.last_used_at is not None
