"""The admin's global search page and the changelists' search boxes: same selector, same tenant scoping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from apps.tenants.models import Role, User
from tests.search.conftest import World

pytestmark = pytest.mark.django_db
PAGE = "/admin/search/globalsearch/"


def test_the_page_is_linked_from_the_admin_index_and_header(
    worlds: tuple[World, World], make_staff: Callable[..., User], client: Client
) -> None:
    world_a, _ = worlds
    client.force_login(make_staff(world_a.tenant, Role.OPERATIONS))

    index = client.get("/admin/").content.decode()

    assert f'href="{PAGE}"' in index  # the index entry (app "Search")
    assert f'action="{PAGE}"' in index  # the header's search box


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATIONS, Role.FINANCE, Role.READ_ONLY])
def test_staff_find_their_tenant_only_with_highlights_and_links(
    worlds: tuple[World, World], make_staff: Callable[..., User], client: Client, role: str
) -> None:
    world_a, world_b = worlds
    client.force_login(make_staff(world_a.tenant, role))

    page = client.get(PAGE, {"q": "Jurgen Muller"}).content.decode()

    assert f'href="/admin/customers/driver/{world_a.mueller.pk}/change/"' in page
    assert "<mark>Jürgen Müller</mark>" in page
    assert f"/admin/customers/driver/{world_b.mueller.pk}/change/" not in page
    assert world_b.tenant.name not in page


def test_the_page_escapes_what_it_shows(
    worlds: tuple[World, World], make_staff: Callable[..., User], client: Client
) -> None:
    world_a, _ = worlds
    world_a.keller.last_name = "<script>alert(1)</script>"
    world_a.keller.save()
    client.force_login(make_staff(world_a.tenant))

    page = client.get(PAGE, {"q": "script alert"}).content.decode()

    assert "<script>alert(1)</script>" not in page
    assert "&lt;<mark>script</mark>&gt;<mark>alert</mark>(1)" in page


@pytest.mark.parametrize(("query", "message"), [("x" * 201, "limited to 200"), ("a\x00b", "NUL")])
def test_bad_queries_are_explained_not_crashed(
    worlds: tuple[World, World], make_staff: Callable[..., User], client: Client, query: str, message: str
) -> None:
    world_a, _ = worlds
    client.force_login(make_staff(world_a.tenant))

    response = client.get(PAGE, {"q": query})

    assert response.status_code == 200
    assert message in response.content.decode()


def test_people_without_a_tenant_cannot_open_it(client: Client, db: None) -> None:
    client.force_login(User.objects.create_user("nobody", password="x", is_staff=True))

    assert client.get(PAGE, {"q": "Müller"}).status_code in (302, 403)


def _changelist_ids(client: Client, url: str, query: str) -> set[int]:
    response = client.get(url, {"q": query})
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.mark.parametrize(
    ("url", "query", "expected"),
    [
        ("/admin/customers/driver/", "Mueler", ["mueller"]),
        ("/admin/customers/driver/", "juergen.mueller@example.com", ["mueller"]),
        ("/admin/customers/token/", "04aabbccdd0001", ["card"]),
        ("/admin/customers/token/", "Jürgen Müller", ["card"]),  # the driver's card
        ("/admin/stations/chargepoint/", "Alfen", ["hub"]),
        ("/admin/stations/location/", "gorlitzer strasse", ["location"]),
        ("/admin/stations/evse/", "DE*ALP*E0001*1", ["evse"]),
        ("/admin/charging/chargingsession/", "ALP-HUB-0001", ["session"]),  # the charger's sessions
        ("/admin/charging/chargingsession/", "ALPCDR000777", ["session"]),
        ("/admin/customers/businesscustomer/", "DE123456789", ["fleet"]),
    ],
)
def test_changelist_search_boxes_use_the_indexed_search(
    worlds: tuple[World, World],
    make_staff: Callable[..., User],
    client: Client,
    url: str,
    query: str,
    expected: list[str],
) -> None:
    world_a, world_b = worlds
    client.force_login(make_staff(world_a.tenant, Role.READ_ONLY))

    found = _changelist_ids(client, url, query)

    assert found == {world_a.objects[name].pk for name in expected}
    assert not found & {world_b.objects[name].pk for name in expected}


def test_the_invoice_changelist_finds_by_number(
    worlds: tuple[World, World], make_staff: Callable[..., User], client: Client
) -> None:
    world_a, _ = worlds
    client.force_login(make_staff(world_a.tenant, Role.FINANCE))

    assert _changelist_ids(client, "/admin/billing/invoice/", world_a.invoice.number) == {world_a.invoice.pk}


def test_a_superuser_changelist_search_spans_tenants(
    worlds: tuple[World, World], superuser: Any, client: Client
) -> None:
    world_a, world_b = worlds
    client.force_login(superuser)

    assert _changelist_ids(client, "/admin/customers/driver/", "Jürgen Müller") == {
        world_a.mueller.pk,
        world_b.mueller.pk,
    }
