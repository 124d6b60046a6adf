"""REST API of customers: CRUD through the services, tenant scoping, filters, the CSV import endpoint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.customers.models import BusinessCustomer, Contract, Driver, LimitAction, Token, Vehicle
from apps.stations.models import Location
from apps.tenants.models import Role, Tenant
from tests.customers.factories import (
    BusinessCustomerFactory,
    ContractFactory,
    DriverFactory,
    TokenFactory,
    VehicleFactory,
)
from tests.registry import snapshot


@pytest.fixture
def admin_a(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> APIClient:
    return client_for(tenant_a, Role.ADMIN)


def test_create_business_customer_contract_and_token(tenant_a: Tenant, admin_a: APIClient) -> None:
    fleet = admin_a.post(
        "/api/v1/business-customers/",
        {"name": "Acme Logistics", "vat_id": "DE123456789", "billing_email": "ap@acme.example"},
        format="json",
    )
    contract = admin_a.post(
        "/api/v1/contracts/",
        {
            "business_customer": fleet.json()["id"],
            "number": "ACME-2026",
            "valid_from": "2026-01-01T00:00:00Z",
            "max_session_duration": "00:30:00",
            "limit_action": "zero_current",
            "time_windows": [{"days_of_week": [1, 2, 3, 4, 5], "start_time": "22:00", "end_time": "06:00"}],
        },
        format="json",
    )
    token = admin_a.post(
        "/api/v1/tokens/",
        {
            "uid": "04ACME01",
            "type": "RFID",
            "contract_id": "DE-ALP-C00000001-X",
            "business_contract": contract.json()["id"],
        },
        format="json",
    )

    assert fleet.status_code == 201, fleet.content
    assert contract.status_code == 201, contract.content
    assert token.status_code == 201, token.content
    stored = Contract.objects.get(number="ACME-2026")
    assert (stored.tenant, stored.max_session_duration, stored.limit_action) == (
        tenant_a,
        dt.timedelta(minutes=30),
        LimitAction.ZERO_CURRENT,
    )
    created = Token.objects.get(uid="04ACME01")
    # the token is on the contract's business customer without saying so
    assert (created.tenant, created.business_contract, created.business_customer_id) == (
        tenant_a,
        stored,
        fleet.json()["id"],
    )
    assert token.json()["business_customer"] == fleet.json()["id"]
    assert token.json()["source"] == "local"


def test_update_and_delete_a_driver(tenant_a: Tenant, admin_a: APIClient) -> None:
    driver = DriverFactory(tenant=tenant_a, last_name="Old")

    patched = admin_a.patch(f"/api/v1/drivers/{driver.pk}/", {"last_name": "New", "language": "fr"}, format="json")
    deleted = admin_a.delete(f"/api/v1/drivers/{driver.pk}/")

    assert patched.status_code == 200, patched.content
    assert (patched.json()["last_name"], patched.json()["language"]) == ("New", "fr")
    assert deleted.status_code == 204
    assert not Driver.objects.filter(pk=driver.pk).exists()


def test_driver_with_tokens_cannot_be_deleted(tenant_a: Tenant, admin_a: APIClient) -> None:
    driver = DriverFactory(tenant=tenant_a)
    TokenFactory(tenant=tenant_a, driver=driver)

    response = admin_a.delete(f"/api/v1/drivers/{driver.pk}/")

    assert response.status_code == 409
    assert response.json()["code"] == "protected"
    assert Driver.objects.filter(pk=driver.pk).exists()


def test_vehicle_crud(tenant_a: Tenant, admin_a: APIClient) -> None:
    driver = DriverFactory(tenant=tenant_a)

    created = admin_a.post(
        "/api/v1/vehicles/",
        {
            "driver": driver.pk,
            "make": "Renault",
            "model": "Zoe R135",
            "battery_kwh": "52.0",
            "ac_phases": 3,
            "ac_max_current_a": 32,
            "dc_max_power_w": 50000,
            "connector_types": ["IEC_62196_T2", "IEC_62196_T2_COMBO"],
            "licence_plate": "B-EV 123",
        },
        format="json",
    )

    assert created.status_code == 201, created.content
    vehicle = Vehicle.objects.get(pk=created.json()["id"])
    assert (vehicle.battery_kwh, vehicle.connector_types) == (Decimal("52.0"), ["IEC_62196_T2", "IEC_62196_T2_COMBO"])


@pytest.mark.parametrize(
    ("url", "payload", "field"),
    [
        ("/api/v1/tokens/", {"uid": "A", "whitelist": "SOMETIMES"}, "whitelist"),
        ("/api/v1/tokens/", {"uid": "with space"}, "uid"),
        (
            "/api/v1/vehicles/",
            {"make": "X", "model": "Y", "battery_kwh": "50", "ac_max_current_a": 16},
            "non_field_errors",
        ),
        (
            "/api/v1/vehicles/",
            {"make": "X", "model": "Y", "battery_kwh": "50", "ac_max_current_a": 16, "connector_types": ["USB"]},
            "connector_types",
        ),
        (
            "/api/v1/contracts/",
            {
                "number": "N",
                "valid_from": "2026-01-01T00:00:00Z",
                "time_windows": [{"days_of_week": [8], "start_time": "7:00", "end_time": "19:00"}],
            },
            "time_windows",
        ),
    ],
)
def test_invalid_input_is_refused_and_nothing_stored(
    tenant_a: Tenant, admin_a: APIClient, url: str, payload: dict[str, object], field: str
) -> None:
    if "contracts" in url:
        payload = {**payload, "business_customer": BusinessCustomerFactory(tenant=tenant_a).pk}
    model = {"tokens": Token, "vehicles": Vehicle, "contracts": Contract}[url.split("/")[3]]
    before = model.objects.count()

    response = admin_a.post(url, payload, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"], response.json()
    assert model.objects.count() == before


def test_time_windows_are_validated_strictly(tenant_a: Tenant, admin_a: APIClient) -> None:
    fleet = BusinessCustomerFactory(tenant=tenant_a)

    response = admin_a.post(
        "/api/v1/contracts/",
        {
            "business_customer": fleet.pk,
            "number": "N",
            "valid_from": "2026-01-01T00:00:00Z",
            "time_windows": [
                {"days_of_week": [1, 1], "start_time": "07:00", "end_time": "07:00"},
                {"days": [1], "start_time": "07:00", "end_time": "24:00"},
            ],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["fields"]["time_windows"] == [
        "Window 1: days_of_week must be a non-empty list of distinct days 1 (Monday) to 7.",
        "Window 1: start_time and end_time must differ.",
        "Window 2: missing days_of_week.",
        "Window 2: unknown days.",
    ]
    assert Contract.objects.count() == 0


def test_duplicate_uid_ignoring_case_is_refused(tenant_a: Tenant, tenant_b: Tenant, admin_a: APIClient) -> None:
    TokenFactory(tenant=tenant_a, uid="04ABCD")
    TokenFactory(tenant=tenant_b, uid="04EFGH")

    duplicate = admin_a.post("/api/v1/tokens/", {"uid": "04abcd"}, format="json")
    other_tenants_uid = admin_a.post("/api/v1/tokens/", {"uid": "04efgh"}, format="json")

    assert duplicate.status_code == 400
    assert duplicate.json()["fields"] == {
        "non_field_errors": ["A token with this uid exists (uids are compared ignoring case)."]
    }
    assert other_tenants_uid.status_code == 201
    assert Token.objects.filter(tenant=tenant_a).count() == 2


def test_links_to_other_tenants_rows_are_refused(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., object]
) -> None:
    # a staff member of both tenants may see both, but a token of A cannot point at B's driver
    user = make_staff(tenant_a, Role.ADMIN)
    from apps.tenants.models import Membership

    Membership.objects.create(user=user, tenant=tenant_b, role=Role.ADMIN)
    client = APIClient()
    client.force_authenticate(user)
    driver_b = DriverFactory(tenant=tenant_b)
    token_a = TokenFactory(tenant=tenant_a)
    before = snapshot(token_a)

    created = client.post(
        "/api/v1/tokens/", {"tenant": tenant_a.pk, "uid": "NEW", "driver": driver_b.pk}, format="json"
    )
    patched = client.patch(f"/api/v1/tokens/{token_a.pk}/", {"driver": driver_b.pk}, format="json")

    assert created.status_code == 400
    assert created.json()["fields"] == {"driver": ["Belongs to another tenant."]}
    assert patched.status_code == 400
    assert patched.json()["fields"] == {"driver": ["Belongs to another tenant."]}
    assert not Token.objects.filter(uid="NEW").exists()
    assert snapshot(token_a) == before


def test_single_tenant_caller_cannot_name_another_tenants_rows(
    tenant_a: Tenant, tenant_b: Tenant, admin_a: APIClient
) -> None:
    driver_b = DriverFactory(tenant=tenant_b)

    response = admin_a.post(
        "/api/v1/vehicles/",
        {"driver": driver_b.pk, "make": "X", "model": "Y", "battery_kwh": "40", "ac_max_current_a": 16},
        format="json",
    )

    assert response.status_code == 400
    assert "driver" in response.json()["fields"]
    assert Vehicle.objects.count() == 0


def test_allowed_locations_must_be_own(tenant_a: Tenant, tenant_b: Tenant, admin_a: APIClient) -> None:
    def location(tenant: Tenant) -> Location:
        return Location.objects.create(
            tenant=tenant, name="L", address="A", city="C", latitude=Decimal(1), longitude=Decimal(1)
        )

    own, foreign = location(tenant_a), location(tenant_b)
    contract = ContractFactory(tenant=tenant_a)

    ok = admin_a.patch(f"/api/v1/contracts/{contract.pk}/", {"allowed_locations": [own.pk]}, format="json")
    refused = admin_a.patch(f"/api/v1/contracts/{contract.pk}/", {"allowed_locations": [foreign.pk]}, format="json")

    assert ok.status_code == 200, ok.content
    assert ok.json()["allowed_locations"] == [own.pk]
    assert refused.status_code == 400
    assert list(contract.allowed_locations.all()) == [own]


@pytest.mark.parametrize("role", [Role.READ_ONLY, Role.FINANCE])
def test_read_roles_cannot_write(tenant_a: Tenant, client_for: Callable[..., APIClient], role: str) -> None:
    client = client_for(tenant_a, role)
    token = TokenFactory(tenant=tenant_a)
    before = snapshot(token)

    listed = client.get("/api/v1/tokens/")
    patched = client.patch(f"/api/v1/tokens/{token.pk}/", {"blocked": True}, format="json")
    imported = client.post(
        "/api/v1/tokens/import/", {"file": SimpleUploadedFile("t.csv", b"uid\nX\n")}, format="multipart"
    )

    assert listed.status_code == 200
    assert patched.status_code == 403
    assert imported.status_code == 403
    assert snapshot(token) == before
    assert Token.objects.count() == 1


def test_filters(tenant_a: Tenant, admin_a: APIClient) -> None:
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    driver = DriverFactory(tenant=tenant_a, business_customer=fleet)
    mine = TokenFactory(tenant=tenant_a, uid="04MINE", driver=driver, business_customer=fleet)
    TokenFactory(tenant=tenant_a, uid="04OTHER", blocked=True)
    vehicle = VehicleFactory(tenant=tenant_a, driver=driver, connector_types=["CHADEMO"])
    VehicleFactory(tenant=tenant_a)

    def ids(url: str) -> list[int]:
        response = admin_a.get(url)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids(f"/api/v1/tokens/?driver={driver.pk}") == [mine.pk]
    assert ids(f"/api/v1/tokens/?business_customer={fleet.pk}") == [mine.pk]
    assert ids("/api/v1/tokens/?uid=04mine") == [mine.pk]
    assert ids("/api/v1/tokens/?blocked=false") == [mine.pk]
    assert ids(f"/api/v1/drivers/?business_customer={fleet.pk}") == [driver.pk]
    assert ids("/api/v1/vehicles/?connector_type=CHADEMO") == [vehicle.pk]
    assert ids(f"/api/v1/vehicles/?driver={driver.pk}") == [vehicle.pk]


def test_token_list_query_count_does_not_grow(
    tenant_a: Tenant, admin_a: APIClient, django_assert_num_queries: Callable[..., Any]
) -> None:
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    contract = ContractFactory(tenant=tenant_a, business_customer=fleet)
    TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a), business_contract=contract)

    # the caller's roles, then one page of tokens: links are serialized as ids, never loaded row by row
    with django_assert_num_queries(2):
        first = admin_a.get("/api/v1/tokens/")
    for _ in range(20):
        TokenFactory(
            tenant=tenant_a, driver=DriverFactory(tenant=tenant_a), business_customer=fleet, business_contract=contract
        )
    with django_assert_num_queries(2):
        many = admin_a.get("/api/v1/tokens/")

    assert len(first.json()["results"]) == 1
    assert len(many.json()["results"]) == 21


# --------------------------------------------------------------------------- import endpoint


def test_import_endpoint_returns_the_report(tenant_a: Tenant, admin_a: APIClient) -> None:
    TokenFactory(tenant=tenant_a, uid="OLD")
    upload = SimpleUploadedFile("tokens.csv", b"uid,type\nNEW1,RFID\nold,RFID\nNEW2,BADGE\n", content_type="text/csv")

    response = admin_a.post("/api/v1/tokens/import/", {"file": upload}, format="multipart")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "rows": 3,
        "created": 1,
        "failed": 2,
        "errors": [
            {"line": 3, "uid": "old", "reasons": ["uid: a token with this uid exists already."]},
            {"line": 4, "uid": "NEW2", "reasons": ["type: 'BADGE' is not one of AD_HOC_USER, APP_USER, OTHER, RFID."]},
        ],
    }
    assert sorted(Token.objects.values_list("uid", flat=True)) == ["NEW1", "OLD"]
    assert Token.objects.get(uid="NEW1").tenant == tenant_a


def test_import_endpoint_with_api_key(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> None:
    client = key_client_for(tenant_a, ["tokens:write"])
    upload = SimpleUploadedFile("tokens.csv", b"uid\nK1\n", content_type="text/csv")

    response = client.post("/api/v1/tokens/import/", {"file": upload}, format="multipart")

    assert response.status_code == 200, response.content
    assert Token.objects.get(uid="K1").tenant == tenant_a


def test_import_endpoint_refuses_a_bad_header(tenant_a: Tenant, admin_a: APIClient) -> None:
    upload = SimpleUploadedFile("tokens.csv", b"rfid\nX\n", content_type="text/csv")

    response = admin_a.post("/api/v1/tokens/import/", {"file": upload}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "bad_header"
    assert response.json()["fields"] == {"file": ["Unknown column 'rfid'.", "Missing column 'uid'."]}
    assert Token.objects.count() == 0


def test_import_into_another_tenant_is_refused(tenant_a: Tenant, tenant_b: Tenant, admin_a: APIClient) -> None:
    upload = SimpleUploadedFile("tokens.csv", b"uid\nX\n", content_type="text/csv")

    response = admin_a.post("/api/v1/tokens/import/", {"file": upload, "tenant": tenant_b.pk}, format="multipart")

    assert response.status_code == 400
    assert "tenant" in response.json()["fields"]
    assert Token.objects.count() == 0


def test_other_models_lists_are_scoped(tenant_a: Tenant, tenant_b: Tenant, admin_a: APIClient) -> None:
    BusinessCustomerFactory(tenant=tenant_b)
    own = BusinessCustomerFactory(tenant=tenant_a)

    response = admin_a.get("/api/v1/business-customers/")

    assert [row["id"] for row in response.json()["results"]] == [own.pk]
    assert BusinessCustomer.objects.count() == 2
