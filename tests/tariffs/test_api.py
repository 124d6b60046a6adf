"""The tariffs API: OCPI-shaped tariffs in and out, strict validation, assignments, price lists and quotes."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.tariffs import services
from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment
from apps.tenants.models import Role, Tenant
from tests.customers.factories import BusinessCustomerFactory
from tests.stations.factories import ChargePointFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db

EXAMPLES = Path("/work/shared/specs/ocpi-2.2.1/examples")
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("tariff*.json"))
OCPI_FIELDS = [
    "currency",
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "elements",
    "start_date_time",
    "end_date_time",
]
LIST = reverse("tariff-list")


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())  # type: ignore[no-any-return]


def as_answered(value: Any) -> Any:
    """A posted OCPI document as the API answers it: amounts (price, excl_vat, incl_vat) as decimal strings
    with the field's 4 places, the API's one money format; other numbers as they were."""
    if isinstance(value, dict):
        return {
            k: f"{Decimal(str(v)):.4f}" if k in ("price", "excl_vat", "incl_vat") and v is not None else as_answered(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [as_answered(v) for v in value]
    return value


def detail(tariff: Tariff) -> str:
    return reverse("tariff-detail", kwargs={"pk": tariff.pk})


@pytest.fixture
def admin_a(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> APIClient:
    return client_for(tenant_a, Role.ADMIN)


# --------------------------------------------------------------------------- OCPI documents in and out


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_ocpi_example_posts_as_is_and_reads_back_the_same(
    name: str, admin_a: APIClient, tenant_a: Tenant
) -> None:
    doc = example(name)

    response = admin_a.post(LIST, doc, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    tariff = Tariff.objects.get(pk=body["id"])
    assert tariff.tenant == tenant_a
    assert body["ocpi_id"] == doc["id"] == tariff.ocpi_id
    # party fields come from the tenant, not the document (DE/ALL in the examples)
    assert (body["country_code"], body["party_id"]) == ("DE", "ALP")
    for field in OCPI_FIELDS:
        assert body[field] == as_answered(doc.get(field, [] if field == "tariff_alt_text" else None)), field
    assert admin_a.get(detail(tariff)).json() == body


def test_numbers_are_stored_as_decimal_strings(admin_a: APIClient) -> None:
    response = admin_a.post(LIST, example("tariff_4_complex.json"), format="json")

    tariff = Tariff.objects.get(pk=response.json()["id"])
    assert tariff.elements[1] == {
        "price_components": [{"type": "TIME", "price": "1", "vat": "20", "step_size": 900}],
        "restrictions": {"max_current": "32"},
    }


ENERGY = [{"type": "ENERGY", "price": 0.25, "step_size": 1}]  # a reservation element may not price ENERGY


def bad(path: list[Any], value: Any) -> dict[str, Any]:
    """tariff_4 with one value replaced (or removed, value=...)."""
    doc = copy.deepcopy(example("tariff_4_complex.json"))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (bad(["elements", 0, "price_components", 0, "unit"], "kWh"), "elements"),  # unknown nested field
        (bad(["elements", 0, "price_components", 0, "type"], "KWH"), "elements"),  # wrong enum
        (bad(["elements", 4, "restrictions", "start_time"], "24:00"), "elements"),  # bad time
        (bad(["elements", 4, "restrictions", "end_time"], "9:00"), "elements"),  # no leading zero
        (bad(["elements", 4, "restrictions", "day_of_week"], ["MONDAY", "MONDAY"]), "elements"),
        (bad(["elements", 4, "restrictions", "day_of_week"], ["MON"]), "elements"),
        (bad(["elements", 4, "restrictions", "start_date"], "2024-02-30"), "elements"),  # not a calendar date
        (bad(["elements", 1, "restrictions", "min_current"], 40), "elements"),  # min above max
        (bad(["elements", 1, "restrictions", "reservation"], "LATER"), "elements"),
        (
            bad(["elements", 1], {"price_components": ENERGY, "restrictions": {"reservation": "RESERVATION"}}),
            "elements",
        ),
        (bad(["elements", 0, "price_components", 0, "price"], "0.123456"), "elements"),  # 6 decimals
        (bad(["elements", 0, "price_components", 0, "price"], -1), "elements"),
        (bad(["elements", 0, "price_components", 0, "vat"], 101), "elements"),
        (bad(["elements", 0, "price_components", 0, "step_size"], -1), "elements"),
        (bad(["elements", 0, "price_components"], []), "elements"),
        (bad(["elements"], []), "elements"),
        (bad(["currency"], "euro"), "currency"),
        (bad(["type"], "PROFILE_CHEAPEST"), "type"),
        (bad(["tariff_alt_url"], "not a url"), "tariff_alt_url"),
        (bad(["surprise"], 1), "surprise"),
        ({**example("tariff_12_025kwh_min_price.json"), "min_price": {"excl_vat": 0.5, "incl_vat": 0.4}}, "min_price"),
        ({**example("tariff_6_025kwh_start_max_price.json"), "min_price": {"excl_vat": 11}}, "max_price"),
        (
            {**example("tariff_6_025kwh_start_max_price.json"), "start_date_time": "2019-07-01T00:00:00Z"},
            "end_date_time",
        ),
        ({**example("tariff_1_simple_2hour.json"), "ocpi_id": "X"}, "id"),  # two OCPI ids
        (
            {
                **example("tariff_1_simple_2hour.json"),
                "energy_mix": {"is_green_energy": True, "energy_sources": [{"source": "COAL", "percentage": 120}]},
            },
            "energy_mix",
        ),
    ],
)
def test_invalid_tariffs_are_refused_and_nothing_is_stored(doc: dict[str, Any], field: str, admin_a: APIClient) -> None:
    response = admin_a.post(LIST, doc, format="json")

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in body["fields"], body
    assert Tariff.objects.count() == 0


def test_a_nested_error_points_at_the_element(admin_a: APIClient) -> None:
    response = admin_a.post(LIST, bad(["elements", 4, "restrictions", "start_time"], "24:00"), format="json")

    fields = response.json()["fields"]
    assert fields["elements"]["4"]["restrictions"]["start_time"] == ["This value does not match the required pattern."]


def test_ocpi_id_is_unique_per_tenant_only(
    admin_a: APIClient, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    doc = example("tariff_1_simple_2hour.json")
    assert admin_a.post(LIST, doc, format="json").status_code == 201

    again = admin_a.post(LIST, doc, format="json")
    other_tenant = client_for(tenant_b, Role.ADMIN).post(LIST, doc, format="json")

    assert again.status_code == 400
    assert again.json()["fields"] == {"non_field_errors": ["A tariff with this OCPI id exists."]}
    assert other_tenant.status_code == 201
    assert Tariff.objects.filter(ocpi_id="12").count() == 2


def test_ocpi_id_is_generated_when_omitted(admin_a: APIClient) -> None:
    doc = example("tariff_8_simple_025kwh.json")
    del doc["id"]

    body = admin_a.post(LIST, doc, format="json").json()

    assert len(body["ocpi_id"]) == 36


def test_patch_replaces_elements_and_moves_last_updated(admin_a: APIClient, tenant_a: Tenant) -> None:
    tariff = services.tariff_create(
        tenant=tenant_a,
        **{k: v for k, v in example("tariff_8_simple_025kwh.json").items() if k in ("currency", "elements")},
    )
    before = tariff.updated_at
    new_elements = example("tariff_9_025kwh_start.json")["elements"]

    response = admin_a.patch(detail(tariff), {"elements": new_elements}, format="json")

    assert response.status_code == 200, response.content
    tariff.refresh_from_db()
    assert response.json()["elements"] == as_answered(new_elements)
    assert tariff.elements[0]["price_components"][0] == {"type": "FLAT", "price": "0.5", "vat": "20", "step_size": 1}
    assert tariff.updated_at > before


def test_put_replaces_the_whole_document_and_patch_keeps_what_it_does_not_name(
    admin_a: APIClient, tenant_a: Tenant
) -> None:
    tariff = services.tariff_create(
        tenant=tenant_a,
        currency="EUR",
        elements=example("tariff_12_025kwh_min_price.json")["elements"],
        min_price={"excl_vat": "0.50", "incl_vat": "0.55"},
        type="REGULAR",
    )
    doc = example("tariff_8_simple_025kwh.json")

    patched = admin_a.patch(detail(tariff), {"tariff_alt_url": "https://example.com/t"}, format="json").json()
    put = admin_a.put(detail(tariff), doc, format="json").json()

    assert (patched["min_price"], patched["type"]) == ({"excl_vat": "0.5000", "incl_vat": "0.5500"}, "REGULAR")
    assert (put["min_price"], put["type"], put["tariff_alt_url"], put["ocpi_id"]) == (None, None, None, "16")
    tariff.refresh_from_db()
    assert (tariff.min_price_excl_vat, tariff.type, tariff.tariff_alt_url) == (None, "", "")


def test_put_needs_the_whole_tariff(admin_a: APIClient, tenant_a: Tenant) -> None:
    tariff = TariffFactory(tenant=tenant_a)
    before = Tariff.objects.filter(pk=tariff.pk).values().get()

    response = admin_a.put(detail(tariff), {"currency": "EUR"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"elements": ["This field is required."]}
    assert Tariff.objects.filter(pk=tariff.pk).values().get() == before


def test_delete_is_refused_while_assigned(admin_a: APIClient, tenant_a: Tenant) -> None:
    assignment = TariffAssignmentFactory(tenant=tenant_a)

    refused = admin_a.delete(detail(assignment.tariff))
    assignment.delete()
    allowed = admin_a.delete(detail(assignment.tariff))

    assert refused.status_code == 409
    assert refused.json()["code"] == "protected"
    assert allowed.status_code == 204
    assert not Tariff.objects.exists()


@pytest.mark.parametrize(("role", "status"), [(Role.READ_ONLY, 403), (Role.FINANCE, 201), (Role.OPERATIONS, 201)])
def test_who_may_write_tariffs(role: str, status: int, tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    response = client_for(tenant_a, role).post(LIST, example("tariff_1_simple_2hour.json"), format="json")

    assert response.status_code == status
    assert Tariff.objects.count() == (1 if status == 201 else 0)


# --------------------------------------------------------------------------- list, filters, query count


def test_list_query_count_does_not_grow_with_rows(
    admin_a: APIClient, tenant_a: Tenant, django_assert_num_queries: Any
) -> None:
    TariffFactory.create_batch(3, tenant=tenant_a)
    # 1: the caller's roles, 2: the page of tariffs with their tenant (select_related)
    with django_assert_num_queries(2):
        first = admin_a.get(LIST)
    TariffFactory.create_batch(5, tenant=tenant_a)
    with django_assert_num_queries(2):
        second = admin_a.get(LIST)

    assert len(first.json()["results"]) == 3
    assert len(second.json()["results"]) == 8


def test_list_filters(admin_a: APIClient, tenant_a: Tenant) -> None:
    ad_hoc = TariffFactory(tenant=tenant_a, type="AD_HOC_PAYMENT")
    expired = TariffFactory(tenant=tenant_a, end_date_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    regular = TariffFactory(tenant=tenant_a, type="REGULAR", currency="CHF")

    def ids(query: str) -> set[int]:
        return {row["id"] for row in admin_a.get(f"{LIST}?{query}").json()["results"]}

    assert ids("type=AD_HOC_PAYMENT") == {ad_hoc.pk}
    assert ids("currency=chf") == {regular.pk}
    assert ids("valid_at=2024-06-01T00:00:00Z") == {ad_hoc.pk, regular.pk}
    assert ids("valid_at=2023-06-01T00:00:00Z") == {ad_hoc.pk, expired.pk, regular.pk}
    assert ids(f"ocpi_id={expired.ocpi_id}") == {expired.pk}


# --------------------------------------------------------------------------- assignments

ASSIGNMENTS = reverse("tariff-assignment-list")


def test_assign_a_tariff_to_an_evse(admin_a: APIClient, tenant_a: Tenant) -> None:
    tariff = TariffFactory(tenant=tenant_a)
    evse = EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a))

    response = admin_a.post(ASSIGNMENTS, {"tariff": tariff.pk, "evse": evse.pk}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["level"] == "evse"
    assert TariffAssignment.objects.get().evse == evse


def test_assignment_to_another_tenants_location_is_refused(
    admin_a: APIClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    tariff = TariffFactory(tenant=tenant_a)
    location_b = LocationFactory(tenant=tenant_b)

    response = admin_a.post(ASSIGNMENTS, {"tariff": tariff.pk, "location": location_b.pk}, format="json")

    assert response.status_code == 400
    assert "location" in response.json()["fields"]
    assert not TariffAssignment.objects.exists()


def test_assignment_to_two_targets_is_refused(admin_a: APIClient, tenant_a: Tenant) -> None:
    tariff = TariffFactory(tenant=tenant_a)
    charge_point = ChargePointFactory(tenant=tenant_a)

    response = admin_a.post(
        ASSIGNMENTS,
        {"tariff": tariff.pk, "charge_point": charge_point.pk, "location": charge_point.location_id},
        format="json",
    )

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"charge_point", "location"}
    assert not TariffAssignment.objects.exists()


def test_a_superuser_cannot_mix_tenants_in_an_assignment(superuser: Any, tenant_a: Tenant, tenant_b: Tenant) -> None:
    client = APIClient()
    client.force_authenticate(superuser)
    tariff_b = TariffFactory(tenant=tenant_b)

    response = client.post(ASSIGNMENTS, {"tenant": tenant_a.pk, "tariff": tariff_b.pk}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"tariff": ["Belongs to another tenant."]}
    assert not TariffAssignment.objects.exists()


def test_assignment_list_query_count(admin_a: APIClient, tenant_a: Tenant, django_assert_num_queries: Any) -> None:
    TariffAssignmentFactory.create_batch(2, tenant=tenant_a)
    TariffAssignmentFactory(tenant=tenant_a, evse=EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a)))

    with django_assert_num_queries(2):
        response = admin_a.get(ASSIGNMENTS)

    assert [row["level"] for row in response.json()["results"]] == ["evse", "tenant", "tenant"]


# --------------------------------------------------------------------------- contract price lists

PRICE_LISTS = reverse("contract-price-list-list")


def test_create_a_price_list(admin_a: APIClient, tenant_a: Tenant) -> None:
    customer = BusinessCustomerFactory(tenant=tenant_a)

    response = admin_a.post(
        PRICE_LISTS,
        {
            "business_customer": customer.pk,
            "name": "Fleet 2024",
            "currency": "EUR",
            "discount_percent": "12.5",
            "session_fee": "0.30",
            "monthly_fee": "19.00",
            "valid_from": "2024-01-01T00:00:00Z",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    price_list = ContractPriceList.objects.get()
    assert (price_list.discount_percent, price_list.monthly_fee) == (Decimal("12.50"), Decimal("19.0000"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"discount_percent": "101"}, "discount_percent"),
        ({"valid_until": "2023-01-01T00:00:00Z"}, "non_field_errors"),
        ({"currency": "eur"}, "currency"),
        ({"session_fee": "-1"}, "session_fee"),
    ],
)
def test_invalid_price_lists_are_refused(
    change: dict[str, str], field: str, admin_a: APIClient, tenant_a: Tenant
) -> None:
    customer = BusinessCustomerFactory(tenant=tenant_a)
    body = {"business_customer": customer.pk, "name": "x", "currency": "EUR", "valid_from": "2024-01-01T00:00:00Z"}

    response = admin_a.post(PRICE_LISTS, {**body, **change}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not ContractPriceList.objects.exists()


def test_operations_may_not_write_price_lists(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    price_list = ContractPriceListFactory(tenant=tenant_a)

    response = client_for(tenant_a, Role.OPERATIONS).patch(
        reverse("contract-price-list-detail", kwargs={"pk": price_list.pk}), {"discount_percent": "50"}, format="json"
    )

    assert response.status_code == 403
    price_list.refresh_from_db()
    assert price_list.discount_percent == Decimal("10.00")


# --------------------------------------------------------------------------- quotes


def quote_url(tariff: Tariff) -> str:
    return reverse("tariff-quote", kwargs={"pk": tariff.pk})


@pytest.fixture
def tariff_10(tenant_a: Tenant) -> Tariff:
    doc = example("tariff_10_025kwh_parking_start.json")
    return services.tariff_create(tenant=tenant_a, currency=doc["currency"], elements=doc["elements"])


def test_quote_explains_the_price(admin_a: APIClient, tariff_10: Tariff) -> None:
    # 20 kWh at 10 kW: charging 10:00-12:00 Berlin, parked until 12:40.
    #   FLAT 0.50 / 0.60; 20 kWh x 0.25 = 5.00 / 5.50; parking 40 -> 45 min x 2.00/h = 1.50 / 1.80
    response = admin_a.post(
        quote_url(tariff_10),
        {"start": "2024-01-15T09:00:00Z", "duration_minutes": 160, "energy_kwh": "20", "max_power_kw": "10"},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["currency"], body["total_excl_vat"], body["total_incl_vat"]) == ("EUR", "7.00", "7.90")
    assert [(x["group"], x["description"], x["excl_vat"], x["incl_vat"]) for x in body["lines"]] == [
        ("FLAT", "fee 0.50", "0.50", "0.60"),
        ("ENERGY", "20 kWh at 0.25/kWh", "5.00", "5.50"),
        ("PARKING_TIME", "45 min at 2.00/h", "1.50", "1.80"),
    ]
    assert body["by_dimension"]["PARKING_TIME"] == {"excl_vat": "1.50", "incl_vat": "1.80"}
    assert [p["start_date_time"] for p in body["charging_periods"]] == ["2024-01-15T09:00:00Z", "2024-01-15T11:00:00Z"]
    assert body["charging_periods"][1]["dimensions"][0] == {"type": "PARKING_TIME", "volume": 0.666667}
    assert (body["total_energy"], body["total_parking_time"]) == ("20.0000", "0.666667")


def test_quote_with_a_contract_price_list(admin_a: APIClient, tenant_a: Tenant, tariff_10: Tariff) -> None:
    # 10 % off and a 0.50 session fee (tenant VAT 19 %): FLAT 0.45 / 0.54; 20 kWh x 0.225 = 4.50 / 4.95;
    # no parking; fee 0.50 / 0.595 -> 0.60.  5.45 / 6.09
    price_list = ContractPriceListFactory(tenant=tenant_a)

    response = admin_a.post(
        quote_url(tariff_10),
        {
            "start": "2024-01-15T09:00:00Z",
            "stop": "2024-01-15T11:00:00Z",
            "energy_kwh": "20",
            "price_list": price_list.pk,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    assert (response.json()["total_excl_vat"], response.json()["total_incl_vat"]) == ("5.45", "6.09")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2024-01-15T09:00:00Z", "energy_kwh": "20"}, "stop"),
        ({"start": "2024-01-15T09:00:00Z", "stop": "2024-01-15T08:00:00Z", "energy_kwh": "20"}, "stop"),
        (
            {
                "start": "2024-01-15T09:00:00Z",
                "duration_minutes": 60,
                "stop": "2024-01-15T10:00:00Z",
                "energy_kwh": "1",
            },
            "stop",
        ),
        (
            {"start": "2024-01-15T09:00:00Z", "duration_minutes": 60, "energy_kwh": "30", "max_power_kw": "11"},
            "non_field_errors",
        ),
        (
            {"start": "2024-01-15T09:00:00Z", "duration_minutes": 60, "energy_kwh": "1", "time_zone": "Mars/Olympus"},
            "time_zone",
        ),
        ({"start": "2024-01-15T09:00:00Z", "duration_minutes": 60 * 24 * 8, "energy_kwh": "1"}, "duration_minutes"),
    ],
)
def test_quote_refuses_impossible_sessions(
    body: dict[str, Any], field: str, admin_a: APIClient, tariff_10: Tariff
) -> None:
    response = admin_a.post(quote_url(tariff_10), body, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_quote_is_open_to_read_only_staff_and_read_keys(
    tariff_10: Tariff, tenant_a: Tenant, client_for: Callable[..., APIClient], key_client_for: Callable[..., APIClient]
) -> None:
    body = {"start": "2024-01-15T09:00:00Z", "duration_minutes": 60, "energy_kwh": "5"}

    read_only = client_for(tenant_a, Role.READ_ONLY).post(quote_url(tariff_10), body, format="json")
    read_key = key_client_for(tenant_a, ["tariffs:read"]).post(quote_url(tariff_10), body, format="json")
    other_key = key_client_for(tenant_a, ["customers:read"]).post(quote_url(tariff_10), body, format="json")

    # 0.50 + 5 x 0.25 = 1.75
    assert (read_only.status_code, read_only.json()["total_excl_vat"]) == (200, "1.75")
    assert read_key.status_code == 200
    assert other_key.status_code == 403


def test_quote_with_another_tenants_price_list_is_refused(
    admin_a: APIClient, tariff_10: Tariff, tenant_b: Tenant, superuser: Any
) -> None:
    price_list_b = ContractPriceListFactory(tenant=tenant_b)
    client = APIClient()
    client.force_authenticate(superuser)
    body = {"start": "2024-01-15T09:00:00Z", "duration_minutes": 60, "energy_kwh": "5", "price_list": price_list_b.pk}

    as_tenant_admin = admin_a.post(quote_url(tariff_10), body, format="json")
    as_superuser = client.post(quote_url(tariff_10), body, format="json")

    assert as_tenant_admin.status_code == 400
    assert as_superuser.status_code == 400
    assert as_superuser.json()["fields"] == {"price_list": ["Belongs to another tenant."]}


def test_quote_with_a_price_list_in_another_currency_is_refused(
    admin_a: APIClient, tenant_a: Tenant, tariff_10: Tariff
) -> None:
    price_list = ContractPriceListFactory(tenant=tenant_a, currency="CHF")
    body = {"start": "2024-01-15T09:00:00Z", "duration_minutes": 60, "energy_kwh": "5", "price_list": price_list.pk}

    response = admin_a.post(quote_url(tariff_10), body, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"non_field_errors": ["The price list is in CHF, the tariff in EUR."]}


def test_price_list_list_query_count(admin_a: APIClient, tenant_a: Tenant, django_assert_num_queries: Any) -> None:
    ContractPriceListFactory.create_batch(3, tenant=tenant_a)

    with django_assert_num_queries(2):
        response = admin_a.get(PRICE_LISTS)

    assert len(response.json()["results"]) == 3


# --------------------------------------------------------------------------- the parking grace period


def test_a_tariff_carries_its_parking_grace_period_and_the_quote_honours_it(
    admin_a: APIClient, tenant_a: Tenant
) -> None:
    doc = {**example("tariff_10_025kwh_parking_start.json"), "parking_grace_minutes": 15}

    created = admin_a.post(LIST, doc, format="json")
    tariff = Tariff.objects.get(pk=created.json()["id"])
    # 20 kWh at 10 kW: 2 h charging, parked 40 min, 15 of them free: 25 -> 30 min (step 900) x 2.00/h = 1.00
    quoted = admin_a.post(
        quote_url(tariff),
        {"start": "2024-01-15T09:00:00Z", "duration_minutes": 160, "energy_kwh": "20", "max_power_kw": "10"},
        format="json",
    )
    cleared = admin_a.patch(detail(tariff), {"parking_grace_minutes": None}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["parking_grace_minutes"] == 15
    assert quoted.json()["by_dimension"]["PARKING_TIME"] == {"excl_vat": "1.00", "incl_vat": "1.20"}
    assert quoted.json()["total_parking_time"] == "0.666667"  # grace is parking time too, just not billed
    assert cleared.json()["parking_grace_minutes"] is None  # the tenant's default applies
    tariff.refresh_from_db()
    assert tariff.parking_grace_minutes is None


@pytest.mark.parametrize("minutes", [-1, 1441, "soon"])
def test_an_impossible_grace_period_is_refused_and_nothing_is_stored(minutes: Any, admin_a: APIClient) -> None:
    response = admin_a.post(
        LIST, {**example("tariff_10_025kwh_parking_start.json"), "parking_grace_minutes": minutes}, format="json"
    )

    assert response.status_code == 400
    assert "parking_grace_minutes" in response.json()["fields"]
    assert not Tariff.objects.exists()


def test_the_tenants_default_grace_period_is_set_through_the_tenant_api(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    client = client_for(tenant_a, Role.ADMIN)

    response = client.patch(f"/api/v1/tenants/{tenant_a.pk}/", {"parking_grace_minutes": 20}, format="json")
    refused = client.patch(f"/api/v1/tenants/{tenant_a.pk}/", {"parking_grace_minutes": -5}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["parking_grace_minutes"] == 20
    assert refused.status_code == 400
    tenant_a.refresh_from_db()
    assert tenant_a.parking_grace_minutes == 20
