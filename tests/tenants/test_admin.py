"""The admin is scoped to the staff user's tenants and follows their role."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from apps.tenants.models import ApiKey, Role, Tenant, User
from tests.registry import snapshot
from tests.tenants.factories import ApiKeyFactory, MembershipFactory, TenantFactory


def test_admin_login_page_and_index(client: Client, make_staff: Callable[..., User], tenant_a: Tenant) -> None:
    assert client.get("/admin/login/").status_code == 200
    client.force_login(make_staff(tenant_a, Role.OPERATIONS))

    response = client.get("/admin/")

    assert response.status_code == 200
    assert b"Operations console" in response.content


def test_changelist_shows_only_own_tenants_rows(
    client: Client, make_staff: Callable[..., User], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    own = ApiKeyFactory(tenant=tenant_a, name="own-key")
    ApiKeyFactory(tenant=tenant_b, name="other-key")
    client.force_login(make_staff(tenant_a, Role.ADMIN))

    response = client.get("/admin/tenants/apikey/")

    assert response.status_code == 200
    assert [key.pk for key in response.context["cl"].result_list] == [own.pk]


def test_read_only_staff_cannot_change_in_admin(
    client: Client, make_staff: Callable[..., User], tenant_a: Tenant
) -> None:
    key = ApiKeyFactory(tenant=tenant_a)
    before = snapshot(key)
    client.force_login(make_staff(tenant_a, Role.READ_ONLY))

    page = client.get(f"/admin/tenants/apikey/{key.pk}/change/")
    post = client.post(f"/admin/tenants/apikey/{key.pk}/change/", {"name": "changed", "tenant": tenant_a.pk})

    assert page.status_code == 200  # view-only page
    assert b'name="_save"' not in page.content
    assert post.status_code == 403
    assert snapshot(key) == before


def test_admin_creates_key_and_shows_secret_once(
    client: Client, make_staff: Callable[..., User], tenant_a: Tenant
) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN))

    response = client.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant_a.pk, "name": "from-admin", "scopes": "stations:read"},
        follow=True,
    )

    assert response.status_code == 200
    key = ApiKey.objects.get(name="from-admin")
    messages = [str(m) for m in response.context["messages"]]
    assert any(f"evp_{key.prefix}_" in m for m in messages)
    assert key.scopes == ["stations:read"]


def test_platform_users_page_is_superuser_only(
    client: Client, make_staff: Callable[..., User], tenant_a: Tenant
) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN))

    assert client.get("/admin/tenants/user/").status_code == 403


def test_related_filters_do_not_list_other_tenants(
    client: Client, make_staff: Callable[..., User], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ApiKeyFactory(tenant=tenant_a)
    ApiKeyFactory(tenant=tenant_b)
    staff = make_staff(tenant_a, Role.ADMIN)
    # staff of two tenants get the tenant column and filter (staff of one tenant get neither)
    MembershipFactory(user=staff, tenant=TenantFactory(name="Gamma Grid", slug="gamma"), role=Role.READ_ONLY)
    client.force_login(staff)

    response = client.get("/admin/tenants/apikey/")

    assert response.status_code == 200
    assert b"Alpha Charge" in response.content
    assert b"Beta Volt" not in response.content
