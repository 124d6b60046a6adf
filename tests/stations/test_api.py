"""Charge point registration, password rotation, commands to offline chargers, list query counts, admin console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.stations.hashers import check_secret
from apps.stations.models import ChargePoint, Command
from apps.tenants.models import Role, Tenant
from tests.stations.factories import ChargePointFactory, EvseFactory, LocationFactory

pytestmark = pytest.mark.django_db


def test_register_returns_password_once_and_stores_only_its_hash(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    location = LocationFactory(tenant=tenant_a)

    response = client_for(tenant_a).post(
        "/api/v1/charge-points/", {"identity": "DE-BOX-1", "location": location.pk}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert len(body["password"]) == 40
    cp = ChargePoint.objects.get(identity="DE-BOX-1")
    assert (cp.tenant_id, cp.location_id) == (tenant_a.pk, location.pk)
    assert body["password"] not in cp.password_hash
    assert check_secret(body["password"], cp.password_hash)
    detail = client_for(tenant_a).get(f"/api/v1/charge-points/{cp.pk}/").json()
    assert "password" not in detail


def test_register_refuses_location_of_other_tenant(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    foreign = LocationFactory(tenant=tenant_b)

    response = client_for(tenant_a).post(
        "/api/v1/charge-points/", {"identity": "DE-BOX-2", "location": foreign.pk}, format="json"
    )

    assert response.status_code == 400
    assert "location" in response.json()["fields"]
    assert not ChargePoint.objects.filter(identity="DE-BOX-2").exists()


def test_rotate_password_of_offline_charger_stores_new_secret(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    cp = ChargePointFactory(tenant=tenant_a, password_hash="")

    response = client_for(tenant_a).post(f"/api/v1/charge-points/{cp.pk}/rotate-password/", {}, format="json")

    assert response.status_code == 200, response.content
    cp.refresh_from_db()
    assert response.json()["command"] is None
    assert check_secret(response.json()["password"], cp.password_hash)


def test_command_to_offline_charger_is_409_and_recorded_as_offline(
    tenant_a: Tenant, client_for: Callable[..., APIClient], transactional_db: Any
) -> None:
    cp = ChargePointFactory(tenant=tenant_a)

    response = client_for(tenant_a).post(
        f"/api/v1/charge-points/{cp.pk}/commands/reset/", {"type": "Hard"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "charge_point_offline"
    assert list(Command.objects.values_list("action", "status", "payload")) == [("Reset", "offline", {"type": "Hard"})]


def test_command_input_is_validated_by_the_ocpp_schema(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    cp = ChargePointFactory(tenant=tenant_a)

    response = client_for(tenant_a).post(
        f"/api/v1/charge-points/{cp.pk}/commands/change-availability/", {"connectorId": 1, "type": "Off"}, format="json"
    )

    assert response.status_code == 400
    assert "type" in response.json()["fields"]
    assert Command.objects.count() == 0


def test_read_only_role_cannot_command(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    cp = ChargePointFactory(tenant=tenant_a)

    response = client_for(tenant_a, Role.READ_ONLY).post(
        f"/api/v1/charge-points/{cp.pk}/commands/clear-cache/", {}, format="json"
    )

    assert response.status_code == 403
    assert Command.objects.count() == 0


def test_charge_point_list_query_count(
    tenant_a: Tenant, client_for: Callable[..., APIClient], django_assert_num_queries: Any
) -> None:
    for _ in range(5):
        EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a))
    client = client_for(tenant_a)
    client.get("/api/v1/charge-points/")  # warm the caller's access lookup

    with django_assert_num_queries(2):  # the caller's roles, the page (no query per row)
        response = client.get("/api/v1/charge-points/")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 5


def test_admin_console_shows_a_button_per_command(
    tenant_a: Tenant, make_staff: Callable[..., Any], client: Any
) -> None:
    cp = ChargePointFactory(tenant=tenant_a)
    client.force_login(make_staff(tenant_a, Role.OPERATIONS))

    page = client.get(reverse("admin:stations_chargepoint_change", args=[cp.pk]))
    form = client.get(reverse("admin:ocpp_chargepoint_command", args=[cp.pk, "UnlockConnector"]))
    listing = client.get(reverse("admin:stations_chargepoint_changelist") + "?connection=offline&q=CP")

    assert page.status_code == 200
    for action in ("Reset", "UpdateFirmware", "SendLocalList", "SetChargingProfile", "TriggerMessage", "ReserveNow"):
        assert reverse("admin:ocpp_chargepoint_command", args=[cp.pk, action]) in page.content.decode()
    assert form.status_code == 200
    assert b"connectorId" in form.content
    assert listing.status_code == 200
    assert [o.pk for o in listing.context["cl"].result_list] == [cp.pk]


def test_admin_command_form_of_other_tenant_is_404(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., Any], client: Any
) -> None:
    cp_b = ChargePointFactory(tenant=tenant_b)
    client.force_login(make_staff(tenant_a, Role.ADMIN))

    response = client.post(
        reverse("admin:ocpp_chargepoint_command", args=[cp_b.pk, "Reset"]),
        {"payload": '{"type": "Hard"}', "timeout": 5},
    )

    assert response.status_code == 404
    assert Command.objects.count() == 0
