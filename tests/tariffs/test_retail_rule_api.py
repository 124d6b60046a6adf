"""The retail rule per roaming partner (eMSP): REST API and admin, tenant-scoped and validated."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.tariffs import selectors
from apps.tariffs.models import RoamingRetailRule
from apps.tariffs.retail import RetailTerms
from apps.tenants.models import Role, Tenant, User
from tests.roaming.factories import partner_for

pytestmark = pytest.mark.django_db

LIST = reverse("roaming-retail-rule-list")


def rows() -> list[tuple[Any, ...]]:
    return list(
        RoamingRetailRule.objects.order_by("pk").values_list(
            "tenant_id", "partner_id", "mode", "markup_percent", "price_per_kwh_excl_vat", "vat_rate", "currency"
        )
    )


def test_admin_creates_a_markup_rule_and_the_terms_follow(
    client_for: Callable[..., APIClient], tenant_a: Tenant
) -> None:
    partner = partner_for(tenant_a)[0]
    api = client_for(tenant_a)

    response = api.post(
        LIST,
        {"tenant": tenant_a.pk, "partner": partner.pk, "mode": "markup", "markup_percent": "15", "vat_rate": "19"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["mode"], body["markup_percent"], body["vat_rate"], body["price_per_kwh_excl_vat"]) == (
        "markup",
        "15.00",
        "19.00",
        None,
    )
    assert selectors.retail_terms(partner_id=partner.pk) == RetailTerms(
        mode="markup", markup_percent=Decimal("15.00"), price_per_kwh_excl_vat=None, vat_rate=Decimal("19.00")
    )

    changed = api.patch(
        reverse("roaming-retail-rule-detail", kwargs={"pk": body["id"]}),
        {"mode": "fixed_kwh", "price_per_kwh_excl_vat": "0.4900", "currency": "EUR"},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    terms = selectors.retail_terms(partner_id=partner.pk)
    # switching away from mark-up clears the percent: a rule holds only what its mode uses
    assert (terms.mode, terms.price_per_kwh_excl_vat, terms.markup_percent) == (
        "fixed_kwh",
        Decimal("0.4900"),
        Decimal("0.00"),
    )


def test_fixed_needs_a_price(client_for: Callable[..., APIClient], tenant_a: Tenant) -> None:
    partner = partner_for(tenant_a)[0]

    response = client_for(tenant_a).post(
        LIST, {"tenant": tenant_a.pk, "partner": partner.pk, "mode": "fixed_kwh", "vat_rate": "19"}, format="json"
    )

    assert response.status_code == 400
    assert "price_per_kwh_excl_vat" in response.json()["fields"], response.json()
    assert rows() == []


def test_patch_to_fixed_without_a_price_changes_nothing(client_for: Callable[..., APIClient], tenant_a: Tenant) -> None:
    partner = partner_for(tenant_a)[0]
    api = client_for(tenant_a)
    rule = api.post(
        LIST, {"tenant": tenant_a.pk, "partner": partner.pk, "mode": "markup", "markup_percent": "10"}, format="json"
    ).json()
    before = rows()

    response = api.patch(reverse("roaming-retail-rule-detail", kwargs={"pk": rule["id"]}), {"mode": "fixed_kwh"})

    assert response.status_code == 400
    assert rows() == before


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "markup", "markup_percent": "-1"},
        {"mode": "pass_through", "vat_rate": "101"},
        {"mode": "cheapest"},
        {"mode": "fixed_kwh", "price_per_kwh_excl_vat": "abc"},
        {"mode": "fixed_kwh", "price_per_kwh_excl_vat": "0.3", "currency": "euro"},
    ],
)
def test_invalid_values_are_refused(
    client_for: Callable[..., APIClient], tenant_a: Tenant, body: dict[str, str]
) -> None:
    partner = partner_for(tenant_a)[0]

    response = client_for(tenant_a).post(LIST, {"tenant": tenant_a.pk, "partner": partner.pk, **body}, format="json")

    assert response.status_code == 400, response.json()
    assert rows() == []


def test_partner_of_another_tenant_is_refused_and_nothing_changes(
    client_for: Callable[..., APIClient], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ours = partner_for(tenant_a)[0]
    theirs = partner_for(tenant_b)[0]
    api = client_for(tenant_a)
    rule = api.post(LIST, {"tenant": tenant_a.pk, "partner": ours.pk, "mode": "pass_through"}, format="json").json()
    before = rows()

    created = api.post(LIST, {"tenant": tenant_a.pk, "partner": theirs.pk, "mode": "pass_through"}, format="json")
    moved = api.patch(
        reverse("roaming-retail-rule-detail", kwargs={"pk": rule["id"]}), {"partner": theirs.pk}, format="json"
    )

    assert (created.status_code, moved.status_code) == (400, 400)
    assert "partner" in created.json()["fields"]
    assert "partner" in moved.json()["fields"]
    assert rows() == before


def test_one_rule_per_partner(client_for: Callable[..., APIClient], tenant_a: Tenant) -> None:
    partner = partner_for(tenant_a)[0]
    api = client_for(tenant_a)
    api.post(LIST, {"tenant": tenant_a.pk, "partner": partner.pk, "mode": "pass_through"}, format="json")
    before = rows()

    again = api.post(LIST, {"tenant": tenant_a.pk, "partner": partner.pk, "mode": "markup"}, format="json")

    assert again.status_code == 400
    assert rows() == before


def test_other_tenants_rules_are_invisible(
    client_for: Callable[..., APIClient], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = partner_for(tenant_b)[0]
    rule_b = client_for(tenant_b).post(
        LIST, {"tenant": tenant_b.pk, "partner": theirs.pk, "mode": "pass_through"}, format="json"
    )
    assert rule_b.status_code == 201
    api = client_for(tenant_a)

    assert api.get(LIST).json()["results"] == []
    assert api.get(reverse("roaming-retail-rule-detail", kwargs={"pk": rule_b.json()["id"]})).status_code == 404
    deleted = api.delete(reverse("roaming-retail-rule-detail", kwargs={"pk": rule_b.json()["id"]}))
    assert deleted.status_code == 404
    assert RoamingRetailRule.objects.count() == 1


def test_read_only_role_cannot_write(client_for: Callable[..., APIClient], tenant_a: Tenant) -> None:
    partner = partner_for(tenant_a)[0]

    response = client_for(tenant_a, Role.READ_ONLY).post(
        LIST, {"tenant": tenant_a.pk, "partner": partner.pk, "mode": "pass_through"}, format="json"
    )

    assert response.status_code == 403
    assert rows() == []


# --------------------------------------------------------------------------- admin


@pytest.fixture
def staff_client(client: Client, make_staff: Callable[..., User], tenant_a: Tenant) -> Client:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    return client


def admin_form(tenant: Tenant, partner_id: int, **overrides: str) -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "partner": partner_id,
        "mode": "markup",
        "markup_percent": "12.5",
        "price_per_kwh_excl_vat": "",
        "vat_rate": "19",
        "currency": "",
        **overrides,
    }


def test_admin_page_adds_a_rule(staff_client: Client, tenant_a: Tenant) -> None:
    partner = partner_for(tenant_a)[0]

    response = staff_client.post("/admin/tariffs/roamingretailrule/add/", admin_form(tenant_a, partner.pk))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert rows() == [(tenant_a.pk, partner.pk, "markup", Decimal("12.50"), None, Decimal("19.00"), "")]
    assert staff_client.get("/admin/tariffs/roamingretailrule/").status_code == 200


@pytest.mark.parametrize("overrides", [{"mode": "fixed_kwh"}, {"partner": "other"}])
def test_admin_refuses_fixed_without_price_and_foreign_partner(
    staff_client: Client, tenant_a: Tenant, tenant_b: Tenant, overrides: dict[str, str]
) -> None:
    partner = partner_for(tenant_a)[0]
    if overrides.get("partner") == "other":
        overrides = {"partner": str(partner_for(tenant_b)[0].pk)}

    response = staff_client.post("/admin/tariffs/roamingretailrule/add/", admin_form(tenant_a, partner.pk, **overrides))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert rows() == []
