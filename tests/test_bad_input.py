"""Malformed JSON, wrong types, unknown and missing fields get 400 in the one error shape on every write
endpoint (walked over every route), never a 500, and nothing is stored or changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import models
from django.urls import reverse
from rest_framework import serializers
from rest_framework.test import APIClient

from apps.tenants.models import Role, Tenant
from tests.registry import make_for, snapshot
from tests.walker import Route, api_routes

WRITE_ROUTES = [r for r in api_routes() if {"post", "put", "patch"} & set(r.actions)]
CASES = [(r, m) for r in WRITE_ROUTES for m in r.actions if m in ("post", "put", "patch")]


def writable_fields(route: Route) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
    serializer = (route.serializer_class or route.viewset.serializer_class)()  # type: ignore[misc]
    return {name: field for name, field in serializer.fields.items() if not field.read_only}


def wrong_value(field: serializers.Field[Any, Any, Any, Any]) -> Any:
    """A JSON value of the wrong type for this field."""
    if isinstance(field, serializers.JSONField):
        return None
    if isinstance(field, serializers.DictField):
        return [1, 2]
    return {"wrong": ["type"]}


class Target:
    """The endpoint under test and a way to tell that nothing changed behind it."""

    def __init__(self, route: Route, method: str, tenant: Tenant) -> None:
        self.route = route
        self.method = method
        self.model: type[models.Model] = route.model
        if route.detail:
            self.obj = make_for(self.model, tenant)
            self.url = reverse(route.name, kwargs={"pk": self.obj.pk})
        else:
            self.obj = None
            self.url = reverse(route.name)
        self.before = self.state()

    def state(self) -> Any:
        if self.obj is not None:
            return snapshot(self.obj)
        return self.model._default_manager.count()

    def send(self, client: APIClient, body: Any) -> Any:
        if isinstance(body, str):
            return client.generic(self.method.upper(), self.url, body, content_type="application/json")
        return getattr(client, self.method)(self.url, body, format="json")


def assert_400(response: Any, *field_names: str) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"code", "message", "fields"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    for name in field_names:
        assert name in body["fields"], (name, body)
    return body  # type: ignore[no-any-return]


@pytest.fixture
def admin_a(
    request: pytest.FixtureRequest, tenant_a: Tenant, client_for: Callable[..., APIClient], superuser: Any
) -> APIClient:
    """Tenant A's admin, or a platform superuser where only superusers may write (e.g. creating tenants)."""
    route, method = request.node.callspec.params["route"], request.node.callspec.params["method"]
    action = route.actions[method]
    if action in getattr(route.viewset, "superuser_only_actions", ()):
        client = APIClient()
        client.force_authenticate(superuser)
        return client
    return client_for(tenant_a, Role.ADMIN)


@pytest.mark.parametrize(("route", "method"), CASES, ids=lambda v: str(v))
def test_malformed_json(route: Route, method: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    target = Target(route, method, tenant_a)

    body = assert_400(target.send(admin_a, '{"name": "x", oops'))

    assert body["code"] == "parse_error"
    assert target.state() == target.before


@pytest.mark.parametrize(("route", "method"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("payload", [[], [{"name": "x"}], "null", 42, "just text"], ids=repr)
def test_body_not_an_object(route: Route, method: str, payload: Any, tenant_a: Tenant, admin_a: APIClient) -> None:
    target = Target(route, method, tenant_a)

    body = assert_400(target.send(admin_a, payload))

    assert body["code"] in {"validation_error", "parse_error"}
    assert target.state() == target.before


@pytest.mark.parametrize(("route", "method"), CASES, ids=lambda v: str(v))
def test_unknown_field(route: Route, method: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    target = Target(route, method, tenant_a)

    body = assert_400(target.send(admin_a, {"definitely_not_a_field": 1}), "definitely_not_a_field")

    assert body["code"] == "validation_error"
    assert target.state() == target.before


@pytest.mark.parametrize(("route", "method"), [c for c in CASES if c[1] in ("post", "put")], ids=lambda v: str(v))
def test_missing_required_fields(route: Route, method: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    required = [name for name, field in writable_fields(route).items() if field.required]
    if not required:
        pytest.skip(f"{route} has no required fields")
    target = Target(route, method, tenant_a)

    assert_400(target.send(admin_a, {}), *required)
    assert target.state() == target.before


@pytest.mark.parametrize(("route", "method"), CASES, ids=lambda v: str(v))
def test_wrong_types(route: Route, method: str, tenant_a: Tenant, admin_a: APIClient) -> None:
    checked = 0
    for name, field in writable_fields(route).items():
        value = wrong_value(field)
        if value is None:
            continue
        target = Target(route, method, tenant_a)

        body = assert_400(target.send(admin_a, {name: value}))

        source_name = name
        assert source_name in body["fields"] or "non_field_errors" in body["fields"], (name, body)
        assert target.state() == target.before
        checked += 1
    assert checked or not writable_fields(route)
