"""A caller of tenant A gets 404 for tenant B's objects, on every API route and admin page, and nothing changes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.tenants.models import Role, Tenant
from tests.registry import make_for, snapshot
from tests.walker import Route, api_routes, scoped_admins

DETAIL_ROUTES = [route for route in api_routes() if route.detail]
ADMINS = scoped_admins()


@pytest.fixture(params=["staff", "api_key"])
def caller_a(
    request: pytest.FixtureRequest,
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
    key_client_for: Callable[..., APIClient],
) -> APIClient:
    """Tenant A's most powerful callers: its admin, and an API key with every scope."""
    return client_for(tenant_a, Role.ADMIN) if request.param == "staff" else key_client_for(tenant_a, ["*"])


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
def test_other_tenants_objects_are_404_and_unchanged(
    route: Route, caller_a: APIClient, tenant_a: Tenant, tenant_b: Tenant, superuser: object
) -> None:
    # given an object of tenant B, and what a superuser reads of it
    obj_b = make_for(route.model, tenant_b)
    url = reverse(route.name, kwargs={"pk": obj_b.pk})
    admin_client = APIClient()
    admin_client.force_authenticate(superuser)
    body = admin_client.get(url).json() if "get" in route.actions else {}
    before = snapshot(obj_b)

    # when tenant A's caller reads, updates or deletes it
    for method in route.actions:
        if method in ("head", "options"):
            continue
        response = getattr(caller_a, method)(url, body, format="json") if method != "get" else caller_a.get(url)

        # then it does not exist for them, in the one error shape, and nothing changed
        assert response.status_code == 404, (method, response.status_code, response.content)
        assert response.json()["code"] == "not_found"
        assert snapshot(obj_b) == before


@pytest.mark.parametrize("route", [r for r in api_routes() if not r.detail and "get" in r.actions], ids=str)
def test_lists_show_only_own_tenant(route: Route, caller_a: APIClient, tenant_a: Tenant, tenant_b: Tenant) -> None:
    own = make_for(route.model, tenant_a)
    other = make_for(route.model, tenant_b)

    response = caller_a.get(reverse(route.name))

    assert response.status_code == 200, response.content
    ids = {row["id"] for row in response.json()["results"]}
    assert own.pk in ids
    assert other.pk not in ids


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=lambda v: getattr(v, "__name__", ""))
def test_admin_pages_of_other_tenant_are_404_and_unchanged(
    model: type,
    model_admin: object,
    tenant_a: Tenant,
    tenant_b: Tenant,
    make_staff: Callable[..., object],
    client: object,
) -> None:
    obj_b = make_for(model, tenant_b)
    before = snapshot(obj_b)
    client.force_login(make_staff(tenant_a, Role.ADMIN))  # type: ignore[attr-defined]
    info = (model._meta.app_label, model._meta.model_name)

    for view in ("change", "delete", "history"):
        url = reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj_b.pk])
        assert client.get(url).status_code == 404, (view, url)  # type: ignore[attr-defined]
        assert client.post(url, {"post": "yes", "name": "hijacked"}).status_code == 404, (view, url)  # type: ignore[attr-defined]
    changelist = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"))  # type: ignore[attr-defined]

    assert snapshot(obj_b) == before
    assert changelist.status_code == 200
    assert obj_b.pk not in {o.pk for o in changelist.context["cl"].result_list}
