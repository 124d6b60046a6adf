"""Admin pages of customers: the CSV import view and its per-row report, scoped to the staff user's tenants."""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.customers.models import Contract, Token
from apps.tenants.models import Role, Tenant, User
from tests.customers.factories import BusinessCustomerFactory, TokenFactory

IMPORT_URL = "/admin/customers/token/import/"


def test_import_view_imports_and_shows_the_report(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(tenant_a, Role.OPERATIONS))
    TokenFactory(tenant=tenant_a, uid="OLD")
    upload = SimpleUploadedFile("t.csv", b"uid,whitelist\nNEW,ALWAYS\nOLD,ALWAYS\nBAD,MAYBE\n")

    page = client.get(IMPORT_URL)
    response = client.post(IMPORT_URL, {"tenant": tenant_a.pk, "file": upload})

    assert page.status_code == 200
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.rows, report.created, [e.line for e in report.errors]) == (3, 1, [3, 4])
    html = response.content.decode()
    assert "3 rows read, 1 imported, 2 refused." in html
    assert "uid: a token with this uid exists already." in html
    assert Token.objects.get(uid="NEW").whitelist == "ALWAYS"


def test_import_view_offers_only_writable_tenants(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    upload = SimpleUploadedFile("t.csv", b"uid\nX\n")

    response = client.post(IMPORT_URL, {"tenant": tenant_b.pk, "file": upload})

    assert response.status_code == 200
    assert "tenant" in response.context["form"].errors
    assert response.context["report"] is None
    assert Token.objects.count() == 0


def test_read_only_staff_cannot_import(tenant_a: Tenant, make_staff: Callable[..., User], client: Client) -> None:
    client.force_login(make_staff(tenant_a, Role.READ_ONLY))

    response = client.post(IMPORT_URL, {"tenant": tenant_a.pk, "file": SimpleUploadedFile("t.csv", b"uid\nX\n")})

    assert response.status_code == 403
    assert Token.objects.count() == 0


def test_changelists_render(tenant_a: Tenant, make_staff: Callable[..., User], client: Client) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    TokenFactory(tenant=tenant_a)

    for name in ("driver", "businesscustomer", "contract", "token", "vehicle"):
        assert client.get(f"/admin/customers/{name}/").status_code == 200, name
        assert client.get(f"/admin/customers/{name}/add/").status_code == 200, name
    assert IMPORT_URL.encode() in client.get("/admin/customers/token/").content


def test_admin_contract_form_refuses_other_tenants_customer(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    user = make_staff(tenant_a, Role.ADMIN)
    user.is_superuser = True  # sees both tenants, so only the model's own check stands in the way
    user.save()
    client.force_login(user)
    foreign = BusinessCustomerFactory(tenant=tenant_b)

    response = client.post(
        "/admin/customers/contract/add/",
        {
            "tenant": tenant_a.pk,
            "business_customer": foreign.pk,
            "number": "X-1",
            "valid_from_0": "2026-01-01",
            "valid_from_1": "00:00:00",
            "priority": "0",
            "limit_action": "stop",
            "time_windows": "[]",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"business_customer": ["Belongs to another tenant."]}
    assert Contract.objects.count() == 0
