"""White label in the console: a tenant's staff see its name, logo and colours in the admin header (text on a brand
colour in black or white, whichever reads); the platform's superuser and people of several tenants see the
platform's look; a logo is served to the tenant's own staff only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.tenants.branding import text_on
from apps.tenants.models import Membership, Role, Tenant, User

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.mark.parametrize(
    ("colour", "text"),
    [("#0F172A", "#ffffff"), ("#0B5FFF", "#ffffff"), ("#FACC15", "#000000"), ("#FFFFFF", "#000000")],
)
def test_text_on_a_brand_colour_is_black_or_white_whichever_reads(colour: str, text: str) -> None:
    assert text_on(colour) == text


def test_a_tenants_staff_see_its_name_logo_and_colours(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    tenant_a.primary_colour, tenant_a.secondary_colour = "#00875A", "#1F2937"
    tenant_a.logo = SimpleUploadedFile("alpha.png", PNG, content_type="image/png")
    tenant_a.save()
    ops = make_staff(tenant_a, Role.OPERATIONS, is_staff=True)
    both = make_staff(tenant_a, Role.OPERATIONS, is_staff=True)
    Membership.objects.create(user=both, tenant=tenant_b, role=Role.READ_ONLY)
    other = make_staff(tenant_b, Role.ADMIN, is_staff=True)
    superuser = User.objects.create_superuser(username="platform-root", password="x-2026-root", email="r@x.example")
    logo_url = f"/admin/tenants/tenant/{tenant_a.pk}/logo/"

    client.force_login(ops)
    page = client.get("/admin/").content.decode()
    logo = client.get(logo_url)
    client.force_login(both)
    shared = client.get("/admin/").content.decode()
    client.force_login(superuser)
    platform = client.get("/admin/").content.decode()
    client.force_login(other)
    foreign_logo = client.get(logo_url)
    other_page = client.get("/admin/").content.decode()

    assert "--header-bg: #1F2937" in page
    assert "--breadcrumbs-bg: #00875A" in page
    assert "--header-color: #ffffff" in page
    assert f'<img class="tenant-logo" src="{logo_url}"' in page
    assert "Alpha Charge ·" in page
    assert (logo.status_code, logo["Content-Type"], b"".join(logo.streaming_content)) == (200, "image/png", PNG)
    for look in (shared, platform):
        assert 'id="tenant-brand"' not in look
        assert "Alpha Charge ·" not in look
    assert foreign_logo.status_code == 404
    assert "Beta Volt ·" in other_page  # its own tenant's name, no logo of its own
    assert '<img class="tenant-logo"' not in other_page
