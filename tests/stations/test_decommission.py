"""Decommissioning (OCPI REMOVED) instead of deleting: what history points to leaves service and stays readable.

A decommissioned location, charge point or EVSE is gone from the operational lists (unless asked for), the driver
station search and smart charging; no session or reservation starts on it (API or charger); it stays readable by
id, in the sessions and the export, and in the admin (filterable).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.energy import selectors as energy_selectors
from apps.energy.models import NodeKind
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, Reservation, SessionStatus
from apps.stations.models import ChargePoint, Command, Evse, Location
from apps.tenants.models import Role, Tenant, User
from tests.charging.factories import ChargingSessionFactory
from tests.customers.factories import DriverFactory, TokenFactory
from tests.energy.factories import GridNodeFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(tenant_a: Tenant) -> dict[str, Any]:
    location = LocationFactory(tenant=tenant_a, name="Depot", address="Hafenstraße 7")
    charge_point = ChargePointFactory(tenant=tenant_a, location=location, identity="DEPOT-1")
    evse = EvseFactory(charge_point=charge_point, connector_id=1, evse_uid="DE*ALP*E1*1")
    ConnectorFactory(evse=evse)
    other_evse = EvseFactory(charge_point=charge_point, connector_id=2, evse_uid="DE*ALP*E1*2")
    ConnectorFactory(evse=other_evse)
    session = ChargingSessionFactory(
        charge_point=charge_point, location=location, evse=evse, status=SessionStatus.COMPLETED
    )
    return {"location": location, "cp": charge_point, "evse": evse, "other_evse": other_evse, "session": session}


def _ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_decommissioning_a_location_takes_its_chargers_and_evses_out_of_service(
    site: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    client = client_for(tenant_a, Role.OPERATIONS)

    response = client.post(f"/api/v1/locations/{site['location'].pk}/decommission/", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["decommissioned_at"] is not None
    at = Location.objects.get(pk=site["location"].pk).decommissioned_at
    assert ChargePoint.objects.get(pk=site["cp"].pk).decommissioned_at == at
    assert set(Evse.objects.filter(charge_point=site["cp"]).values_list("decommissioned_at", flat=True)) == {at}
    # history is untouched
    session = ChargingSession.objects.get(pk=site["session"].pk)
    assert (session.location_id, session.charge_point_id, session.evse_id) == (
        site["location"].pk,
        site["cp"].pk,
        site["evse"].pk,
    )


def test_decommissioned_rows_leave_the_lists_but_stay_readable(
    site: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    client = client_for(tenant_a, Role.READ_ONLY)
    kept = LocationFactory(tenant=tenant_a)
    client_for(tenant_a, Role.ADMIN).post(f"/api/v1/charge-points/{site['cp'].pk}/decommission/", {}, format="json")

    locations = _ids(client.get("/api/v1/locations/"))
    charge_points = _ids(client.get("/api/v1/charge-points/"))
    evses = _ids(client.get("/api/v1/evses/"))
    connectors = _ids(client.get("/api/v1/connectors/"))
    removed_cps = _ids(client.get("/api/v1/charge-points/?decommissioned=true"))
    removed_evses = _ids(client.get("/api/v1/evses/?decommissioned=true"))
    in_service_cps = _ids(client.get("/api/v1/charge-points/?decommissioned=false"))
    detail = client.get(f"/api/v1/charge-points/{site['cp'].pk}/")
    session = client.get(f"/api/v1/sessions/{site['session'].pk}/")

    assert locations == {site["location"].pk, kept.pk}  # the location itself is still in service
    assert site["cp"].pk not in charge_points
    assert evses.isdisjoint({site["evse"].pk, site["other_evse"].pk})
    assert connectors.isdisjoint(set(site["cp"].evses.values_list("connectors", flat=True)))
    assert removed_cps == {site["cp"].pk}
    assert removed_evses == {site["evse"].pk, site["other_evse"].pk}
    assert site["cp"].pk not in in_service_cps
    assert detail.status_code == 200
    assert detail.json()["decommissioned_at"] is not None
    assert session.status_code == 200
    assert session.json()["charge_point"] == site["cp"].pk


def test_the_driver_station_search_shows_only_what_is_in_service(
    site: dict[str, Any],
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    client = client_for(tenant_a, Role.READ_ONLY)
    other = LocationFactory(tenant=tenant_a, name="Other")
    other_cp = ChargePointFactory(tenant=tenant_a, location=other)
    ConnectorFactory(evse=EvseFactory(charge_point=other_cp, connector_id=1, evse_uid="DE*ALP*E9*1"))
    admin = client_for(tenant_a, Role.ADMIN)

    client.get("/api/v1/driver/stations/")  # cached (Redis), dropped by each commit below
    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction never commits: as if it did
        admin.post(f"/api/v1/evses/{site['evse'].pk}/decommission/", {}, format="json")
    one_evse_gone = client.get("/api/v1/driver/stations/").json()["results"]
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"/api/v1/locations/{other.pk}/decommission/", {}, format="json")
    location_gone = client.get("/api/v1/driver/stations/").json()["results"]

    depot = next(row for row in one_evse_gone if row["id"] == site["location"].pk)
    assert [e["evse_id"] for e in depot["evses"]] == ["DE*ALP*E1*2"]
    assert {row["id"] for row in one_evse_gone} == {site["location"].pk, other.pk}
    assert {row["id"] for row in location_gone} == {site["location"].pk}


def test_no_session_or_reservation_starts_on_a_decommissioned_evse(
    site: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    driver = DriverFactory(tenant=tenant_a)
    TokenFactory(tenant=tenant_a, driver=driver, uid="GOOD-1")
    client = client_for(tenant_a, Role.ADMIN)
    client.post(f"/api/v1/evses/{site['evse'].pk}/decommission/", {}, format="json")
    before = (Command.objects.count(), ChargingSession.objects.count(), Reservation.objects.count())

    by_qr = client.post("/api/v1/driver/sessions/", {"driver": driver.pk, "qr": "DE*ALP*E1*1"}, format="json")
    by_connector = client.post(
        "/api/v1/driver/sessions/",
        {"driver": driver.pk, "charge_point": site["cp"].pk, "connector_id": 1},
        format="json",
    )
    reserve = client.post(
        "/api/v1/reservations/",
        {
            "driver": driver.pk,
            "charge_point": site["cp"].pk,
            "connector_id": 1,
            "expires_at": (timezone.now() + dt.timedelta(minutes=10)).isoformat(),
        },
        format="json",
    )

    for response in (by_qr, by_connector, reserve):
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "decommissioned"
        assert "DE*ALP*E1*1 is decommissioned" in response.json()["message"]
    assert (Command.objects.count(), ChargingSession.objects.count(), Reservation.objects.count()) == before


def test_a_charger_that_starts_anyway_is_told_invalid(site: dict[str, Any], tenant_a: Tenant) -> None:
    """StartTransaction from a decommissioned charger (a local start): recorded, refused, so it stops at once."""
    TokenFactory(tenant=tenant_a, uid="GOOD-1")
    site["cp"].decommissioned_at = timezone.now()
    site["cp"].save()

    session, info = session_services.session_start(
        charge_point_id=site["cp"].pk, connector_id=2, id_tag="GOOD-1", meter_start=0, timestamp=timezone.now()
    )

    assert info.status == "Invalid"
    assert (session.status, session.auth_reason) == (SessionStatus.INVALID, "decommissioned")


def test_smart_charging_leaves_decommissioned_chargers_out(tenant_a: Tenant) -> None:
    location = LocationFactory(tenant=tenant_a)
    root = GridNodeFactory(tenant=tenant_a, location=location, max_current_a=63)
    chargers = []
    for n in range(2):
        cp = ChargePointFactory(tenant=tenant_a, location=location)
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1, evse_uid=f"DE*ALP*E7{n}*1"))
        GridNodeFactory(tenant=tenant_a, location=location, parent=root, kind=NodeKind.CHARGE_POINT, charge_point=cp)
        chargers.append(cp)
    ChargePoint.objects.filter(pk=chargers[1].pk).update(decommissioned_at=timezone.now())

    inp = energy_selectors.site_input(site_id=root.pk, at=timezone.now())
    roots_before = energy_selectors.site_root_ids()
    ChargePoint.objects.filter(pk=chargers[0].pk).update(decommissioned_at=timezone.now())
    roots_after = energy_selectors.site_root_ids()

    assert set(inp.charge_points) == {chargers[0].pk}
    assert {n.id for n in inp.site.nodes if n.id.startswith("c")} == {f"c{chargers[0].pk}:1"}
    assert root.pk in roots_before
    assert root.pk not in roots_after


def test_admin_lists_decommissioned_rows_filterably_and_decommissions(
    site: dict[str, Any], tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(tenant_a, Role.OPERATIONS))
    kept = ChargePointFactory(tenant=tenant_a, location=site["location"])

    decommissioned = client.post(
        "/admin/stations/chargepoint/", {"action": "decommission_selected", "_selected_action": [site["cp"].pk]}
    )
    everything = client.get("/admin/stations/chargepoint/")
    removed = client.get("/admin/stations/chargepoint/?decommissioned=yes")
    in_service = client.get("/admin/stations/chargepoint/?decommissioned=no")

    assert decommissioned.status_code == 302
    assert ChargePoint.objects.get(pk=site["cp"].pk).decommissioned_at is not None
    assert {o.pk for o in everything.context["cl"].result_list} == {site["cp"].pk, kept.pk}
    assert {o.pk for o in removed.context["cl"].result_list} == {site["cp"].pk}
    assert {o.pk for o in in_service.context["cl"].result_list} == {kept.pk}


def test_a_read_only_user_cannot_decommission(
    site: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    response = client_for(tenant_a, Role.READ_ONLY).post(
        f"/api/v1/locations/{site['location'].pk}/decommission/", {}, format="json"
    )

    assert response.status_code == 403
    assert Location.objects.get(pk=site["location"].pk).decommissioned_at is None
