"""GET /api/v1/search/: JSON always, the one error shape, tenant- and scope-limited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.tenants.models import Role, Tenant
from tests.search.conftest import World

pytestmark = pytest.mark.django_db
URL = "/api/v1/search/"


def ids_by_kind(body: dict[str, Any]) -> dict[str, list[int]]:
    return {group["kind"]: [hit["id"] for hit in group["results"]] for group in body["groups"]}


def test_a_staff_user_finds_an_exact_identifier_first_with_its_link_and_highlight(
    worlds: tuple[World, World], client_for: Callable[..., APIClient]
) -> None:
    world_a, _ = worlds
    client = client_for(world_a.tenant, Role.READ_ONLY)

    response = client.get(URL, {"q": world_a.hub.identity})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    first_group = response.json()["groups"][0]
    first = first_group["results"][0]
    assert first_group["kind"] == "charge_point"
    assert first["id"] == world_a.hub.pk
    assert first["tenant"] == world_a.tenant.pk
    assert first["match"] == "exact"
    assert first["url"] == f"/api/v1/charge-points/{world_a.hub.pk}/"
    assert first["highlight"]["title"] == f"<mark>{world_a.hub.identity}</mark>"
    assert client.get(first["url"]).status_code == 200


def test_accents_and_typos_are_highlighted_in_the_original_spelling(
    worlds: tuple[World, World], client_for: Callable[..., APIClient]
) -> None:
    world_a, _ = worlds

    body = client_for(world_a.tenant).get(URL, {"q": "jurgen mulller", "kind": "driver"}).json()

    (group,) = body["groups"]
    assert group["results"][0]["id"] == world_a.mueller.pk
    assert group["results"][0]["highlight"]["title"] == "<mark>Jürgen</mark> <mark>Müller</mark>"


@pytest.mark.parametrize("query", ["Jürgen Müller", "04AABBCCDD0001", "Berlin", "ALP", "BET", "Görlitz", "e"])
def test_api_keys_and_staff_see_only_their_tenant(
    worlds: tuple[World, World],
    client_for: Callable[..., APIClient],
    key_client_for: Callable[..., APIClient],
    query: str,
) -> None:
    world_a, world_b = worlds
    b_objects = {(k, o.pk) for k, o in _objects(world_b)}
    for client in (client_for(world_a.tenant, Role.OPERATIONS), key_client_for(world_a.tenant, ["*"])):
        body = client.get(URL, {"q": query, "limit": 50}).json()

        found = {(group["kind"], hit["id"]) for group in body["groups"] for hit in group["results"]}
        assert {hit["tenant"] for g in body["groups"] for hit in g["results"]} <= {world_a.tenant.pk}
        assert not found & b_objects


def test_another_tenant_given_as_filter_is_a_404(
    worlds: tuple[World, World], key_client_for: Callable[..., APIClient]
) -> None:
    world_a, world_b = worlds

    response = key_client_for(world_a.tenant, ["search:read"]).get(URL, {"q": "Müller", "tenant": world_b.tenant.pk})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_superuser_sees_both_tenants_or_one_chosen(
    worlds: tuple[World, World], api_client: APIClient, superuser: Any
) -> None:
    world_a, world_b = worlds
    api_client.force_authenticate(superuser)

    both = ids_by_kind(api_client.get(URL, {"q": "Jürgen Müller", "kind": "driver"}).json())
    one = ids_by_kind(api_client.get(URL, {"q": "Jürgen Müller", "tenant": world_b.tenant.pk}).json())

    assert set(both["driver"]) == {world_a.mueller.pk, world_b.mueller.pk}
    assert one["driver"] == [world_b.mueller.pk]


def test_a_key_finds_only_the_kinds_its_read_scopes_reach(
    worlds: tuple[World, World], key_client_for: Callable[..., APIClient]
) -> None:
    world_a, _ = worlds
    stations_only = key_client_for(world_a.tenant, ["search:read", "stations:read"])
    search_only = key_client_for(world_a.tenant, ["search:read"])

    found = ids_by_kind(stations_only.get(URL, {"q": "Görlitz"}).json())
    nothing = search_only.get(URL, {"q": "Görlitz"}).json()

    assert set(found) == {"location"}  # not the business customer "Stadtwerke Görlitz"
    assert nothing["groups"] == []


def test_a_key_without_the_search_scope_is_refused(
    worlds: tuple[World, World], key_client_for: Callable[..., APIClient]
) -> None:
    world_a, _ = worlds

    response = key_client_for(world_a.tenant, ["stations:read", "customers:read"]).get(URL, {"q": "Müller"})

    assert response.status_code == 403
    assert set(response.json()) == {"code", "message", "fields"}


def test_anonymous_is_refused_in_the_error_shape(api_client: APIClient) -> None:
    response = api_client.get(URL, {"q": "Müller"})

    assert response.status_code in (401, 403)
    assert set(response.json()) == {"code", "message", "fields"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"q": "Müller", "kind": "planet"}, "kind"),
        ({"q": "Müller", "limit": "0"}, "limit"),
        ({"q": "Müller", "limit": "51"}, "limit"),
        ({"q": "Müller", "limit": "NaN"}, "limit"),
        ({"q": "Müller", "tenant": "x"}, "tenant"),
        ({"q": "Müller", "page": "2"}, "page"),
    ],
)
def test_bad_queries_are_a_400_in_the_error_shape(
    tenant_a: Tenant, key_client_for: Callable[..., APIClient], params: dict[str, str], field: str
) -> None:
    response = key_client_for(tenant_a, ["*"]).get(URL, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [field]
    assert body["message"].startswith(f"{field}: ")


def test_a_query_of_the_maximum_length_is_answered(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> None:
    response = key_client_for(tenant_a, ["*"]).get(URL, {"q": "ä'\\%_ " * 33 + "xx"})

    assert response.status_code == 200
    assert response.json()["groups"] == []


def test_the_schema_documents_the_operation(api_client: APIClient) -> None:
    schema = api_client.get("/api/schema/", {"format": "json"}).json()

    operation = schema["paths"]["/api/v1/search/"]["get"]
    assert operation["x-required-scopes"] == ["search:read", "search:write"]
    assert {p["name"] for p in operation["parameters"]} == {"q", "kind", "limit", "tenant"}
    assert {"200", "400", "403", "404"} <= set(operation["responses"])


def _objects(world: World) -> list[tuple[str, Any]]:
    from tests.search.test_relevance import _objects as objects

    return objects(world)
