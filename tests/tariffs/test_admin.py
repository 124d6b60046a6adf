"""Tariffs in the ops console: the elements JSON editor validates like the API and stores the canonical form."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment
from apps.tenants.models import Role, Tenant, User
from tests.customers.factories import BusinessCustomerFactory
from tests.registry import snapshot
from tests.tariffs.factories import TariffFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/tariffs/tariff/add/"
NIGHT = [
    {
        "price_components": [{"type": "ENERGY", "price": 0.29, "vat": 19, "step_size": 1}],
        "restrictions": {"start_time": "22:00", "end_time": "06:00"},
    },
    {"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 19, "step_size": 1}]},
]


def form(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    data = {
        "tenant": tenant.pk,
        "ocpi_id": "NIGHT",
        "currency": "EUR",
        "type": "",
        "elements": json.dumps(NIGHT),
        "tariff_alt_text": "[]",
        "tariff_alt_url": "",
        "energy_mix": "",
        "min_price_excl_vat": "",
        "min_price_incl_vat": "",
        "max_price_excl_vat": "",
        "max_price_incl_vat": "",
        "start_date_time_0": "",
        "start_date_time_1": "",
        "end_date_time_0": "",
        "end_date_time_1": "",
    }
    return {**data, **overrides}


@pytest.fixture
def staff_client(client: Client, make_staff: Callable[..., User], tenant_a: Tenant) -> Client:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    return client


def test_admin_adds_a_tariff_from_the_json_editor(staff_client: Client, tenant_a: Tenant) -> None:
    response = staff_client.post(ADD, form(tenant_a, min_price_excl_vat="1.00"))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    tariff = Tariff.objects.get()
    assert tariff.elements[0] == {
        "price_components": [{"type": "ENERGY", "price": "0.29", "vat": "19", "step_size": 1}],
        "restrictions": {"start_time": "22:00", "end_time": "06:00"},
    }
    assert tariff.min_price == {"excl_vat": 1}


@pytest.mark.parametrize(
    ("elements", "message"),
    [
        ('[{"price_components": [{"type": "KWH", "price": 1, "step_size": 1}]}]', "is not a valid choice"),
        (
            '[{"price_components": [{"type": "TIME", "price": 1, "step_size": 1}], '
            '"restrictions": {"start_time": "7:00"}}]',
            "pattern",
        ),
        ('[{"price_components": [{"type": "TIME", "price": 1, "step_size": 1, "colour": "red"}]}]', "Unknown field"),
        ("[]", "This field is required."),
        ("{not json", "Enter a valid JSON"),
    ],
)
def test_admin_refuses_invalid_elements(staff_client: Client, tenant_a: Tenant, elements: str, message: str) -> None:
    response = staff_client.post(ADD, form(tenant_a, elements=elements))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["elements"]
    assert any(message in error for error in errors), errors
    assert not Tariff.objects.exists()


def test_change_page_explains_the_elements(staff_client: Client, tenant_a: Tenant) -> None:
    tariff = TariffFactory(
        tenant=tenant_a,
        elements=[
            {
                "price_components": [{"type": "ENERGY", "price": "0.29", "vat": "19", "step_size": 1}],
                "restrictions": {"start_time": "22:00", "end_time": "06:00", "day_of_week": ["SATURDAY", "MONDAY"]},
            },
        ],
    )

    page = staff_client.get(f"/admin/tariffs/tariff/{tariff.pk}/change/")

    assert page.status_code == 200
    assert "#0: ENERGY 0.29/kWh, VAT 19% - when 22:00-06:00 local, Mon, Sat" in page.content.decode()


def test_admin_refuses_an_assignment_to_another_tenants_tariff(
    staff_client: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    tariff_b = TariffFactory(tenant=tenant_b)

    response = staff_client.post(
        "/admin/tariffs/tariffassignment/add/",
        {
            "tenant": tenant_a.pk,
            "tariff": tariff_b.pk,
            "valid_from_0": "",
            "valid_from_1": "",
            "valid_until_0": "",
            "valid_until_1": "",
        },
    )

    assert response.status_code == 200
    assert "tariff" in response.context["adminform"].form.errors
    assert not TariffAssignment.objects.exists()


def test_admin_edits_a_price_list(staff_client: Client, tenant_a: Tenant) -> None:
    customer = BusinessCustomerFactory(tenant=tenant_a)

    response = staff_client.post(
        "/admin/tariffs/contractpricelist/add/",
        {
            "tenant": tenant_a.pk,
            "business_customer": customer.pk,
            "name": "Fleet",
            "currency": "EUR",
            "discount_percent": "5",
            "energy_price_per_kwh": "",
            "session_fee": "0",
            "monthly_fee": "10",
            "vat_rate": "",
            "valid_from_0": "2024-01-01",
            "valid_from_1": "00:00:00",
            "valid_until_0": "",
            "valid_until_1": "",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    price_list = ContractPriceList.objects.get()
    assert (price_list.currency, str(price_list.monthly_fee)) == ("EUR", "10.0000")


def test_read_only_staff_cannot_change_a_tariff(
    client: Client, make_staff: Callable[..., User], tenant_a: Tenant
) -> None:
    tariff = TariffFactory(tenant=tenant_a)
    before = snapshot(tariff)
    client.force_login(make_staff(tenant_a, Role.READ_ONLY))

    response = client.post(f"/admin/tariffs/tariff/{tariff.pk}/change/", form(tenant_a, ocpi_id="HIJACK"))

    assert response.status_code == 403
    assert snapshot(tariff) == before
