"""Our EVSE data and status at Hubject (apps/roaming/oicp/cpo_push.py), against the local Hubject over real HTTPS
with mutual TLS: fullLoad first, then only inserts, updates and deletes; EVSEs of another operator left out; every
body valid against the CPO file (the client checks before sending, the hub on receipt); a StatusNotification at
Hubject within 1 s through the outbox and a real Celery worker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.core.errors import ApplicationError
from apps.roaming.models import OicpConnection, OicpEvseState, OicpOperationState
from apps.roaming.oicp import cpo_push, services
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.stations import decommission, network
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Evse
from apps.tenants.models import Tenant
from tests.roaming.conftest import wait_until
from tests.roaming.oicp.conftest import OPERATOR_ID, hubject_site
from tests.roaming.oicp.factories import oicp_connection_for
from tests.stations.factories import EvseFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connection(tenant_a: Tenant, hub: HubSimulator, pki: LocalCA) -> OicpConnection:
    hub.add_party("cpo.voltnet", operator_id=OPERATOR_ID)
    return oicp_connection_for(tenant_a, pki=pki, base_url=hub.url, hotline_phone_number="+4930123456")


@pytest.fixture
def site(tenant_a: Tenant) -> dict[str, Any]:
    return hubject_site(tenant_a)


def data_calls(hub: HubSimulator) -> list[tuple[str, list[str]]]:
    return [
        (call.body["ActionType"], [r["EvseID"] for r in call.body["OperatorEvseData"]["EvseDataRecord"]])
        for call in hub.calls("PushEvseData")
    ]


def live(hub: HubSimulator) -> dict[str, dict[str, Any]]:
    return {key: stored.record for key, stored in hub.evses.items() if stored.deleted is None}


def test_full_load_first_then_only_what_changed(connection: OicpConnection, hub: HubSimulator, site: Any) -> None:
    first = cpo_push.evse_data_sync(connection_id=connection.pk)

    assert (first.action, first.inserted, first.skipped, first.refused) == ("fullLoad", 2, 1, "")
    assert data_calls(hub) == [("fullLoad", ["DE*ABC*E1001*1", "DE*ABC*E1001*2"])]
    ac, dc = live(hub)["DEABCE10011"], live(hub)["DEABCE10012"]
    assert ac["Address"] == {
        "Country": "DEU",
        "City": "Berlin",
        "Street": "Energiestraße",
        "PostalCode": "10115",
        "HouseNum": "12a",
        "TimeZone": ac["Address"]["TimeZone"],
    }
    assert ac["Address"]["TimeZone"] in ("UTC+01:00", "UTC+02:00")
    assert ac["GeoCoordinates"] == {"DecimalDegree": {"Latitude": "52.520008", "Longitude": "13.404954"}}
    assert (ac["Plugs"], ac["ChargingFacilities"]) == (
        ["Type 2 Outlet"],
        [{"PowerType": "AC_3_PHASE", "Voltage": 230, "Amperage": 32, "Power": 22, "ChargingModes": ["Mode_3"]}],
    )
    assert (dc["Plugs"], dc["ChargingFacilities"][0]["Power"]) == (["CCS Combo 2 Plug (Cable Attached)"], 300)
    assert dc["ChargingFacilities"][0]["Amperage"] == 99  # the file's maximum: a 400 A DC charger says 99
    assert (ac["ChargingStationId"], ac["HardwareManufacturer"]) == ("CP-HBS-1", "Alpitronic")
    assert ac["ChargingPoolID"] == dc["ChargingPoolID"] == f"DE*ABC*P{site['location'].pk}"  # one place for EMPs
    assert ac["AccessibilityLocation"] == "ParkingGarage"
    assert ac["HotlinePhoneNumber"] == "+4930123456"
    # the statuses followed the data: Hubject shows them at once
    assert hub.statuses == {
        "DEABCE10011": (OPERATOR_ID, "DE*ABC*E1001*1", "Available"),
        "DEABCE10012": (OPERATOR_ID, "DE*ABC*E1001*2", "Occupied"),
    }

    # nothing changed: nothing sent
    assert cpo_push.evse_data_sync(connection_id=connection.pk).sent == 0
    assert len(hub.calls("PushEvseData")) == 1

    # a new EVSE, a changed address (both records), one decommissioned
    EvseFactory(charge_point=site["charge_point"], connector_id=4, evse_uid="DE*ABC*E1001*4", status="Available")
    network.location_update(location=site["location"], address="Energiestraße 14")
    decommission.evse_decommission(evse=site["dc"])
    delta = cpo_push.evse_data_sync(connection_id=connection.pk)

    assert (delta.action, delta.inserted, delta.updated, delta.deleted, delta.skipped) == ("delta", 1, 1, 1, 1)
    assert data_calls(hub)[1:] == [
        ("delete", ["DE*ABC*E1001*2"]),
        ("insert", ["DE*ABC*E1001*4"]),
        ("update", ["DE*ABC*E1001*1"]),
    ]
    assert sorted(live(hub)) == ["DEABCE10011", "DEABCE10014"]
    assert live(hub)["DEABCE10011"]["Address"]["HouseNum"] == "14"
    assert live(hub)["DEABCE10014"]["Plugs"] == ["Type 2 Outlet"]  # no connector described: the default plug
    assert hub.statuses["DEABCE10014"][2] == "Available"  # a new EVSE's status follows its data
    assert set(OicpEvseState.objects.filter(connection=connection).values_list("evse_id", flat=True)) == {
        "DE*ABC*E1001*1",
        "DE*ABC*E1001*4",
    }


def test_the_admins_full_load_replaces_and_a_refused_delta_starts_over(
    connection: OicpConnection, hub: HubSimulator, site: Any
) -> None:
    cpo_push.evse_data_sync(connection_id=connection.pk)
    # Hubject lost our records (a reset of its QA system): our delta is refused, the next sync is a fullLoad
    hub.evses.clear()
    network.location_update(location=site["location"], name="Parkhaus Mitte (P2)")

    refused = cpo_push.evse_data_sync(connection_id=connection.pk)
    assert refused.refused.startswith("009")
    assert not OicpEvseState.objects.filter(connection=connection).exists()
    state = OicpOperationState.objects.get(connection=connection, operation="PushEvseData")
    assert (state.last_outcome, state.last_status_code) == ("refused", "009")

    again = cpo_push.evse_data_sync(connection_id=connection.pk)
    assert (again.action, again.inserted) == ("fullLoad", 2)
    names = live(hub)["DEABCE10011"]["ChargingStationNames"]
    assert names == [{"lang": connection.tenant.language[:2], "value": "Parkhaus Mitte (P2)"}]
    forced = cpo_push.evse_data_sync(connection_id=connection.pk, full=True)
    assert (forced.action, forced.inserted) == ("fullLoad", 2)


def test_without_a_hotline_nothing_invalid_is_sent(
    tenant_a: Tenant, hub: HubSimulator, pki: LocalCA, site: Any
) -> None:
    hub.add_party("cpo.voltnet", operator_id=OPERATOR_ID)
    connection = oicp_connection_for(tenant_a, pki=pki, base_url=hub.url)  # no hotline number
    with pytest.raises(ValueError, match="HotlinePhoneNumber"):
        cpo_push.evse_data_sync(connection_id=connection.pk)
    assert hub.received == []
    state = OicpOperationState.objects.get(connection=connection, operation="PushEvseData")
    assert "HotlinePhoneNumber" in state.last_error
    with pytest.raises(ApplicationError, match="hotline_phone_number"):
        services.oicp_connection_update(connection=connection, hotline_phone_number="030 123456")


def test_a_status_notification_reaches_hubject_within_a_second(
    connection: OicpConnection, hub: HubSimulator, site: Any, celery_worker: str
) -> None:
    cpo_push.evse_data_sync(connection_id=connection.pk)
    ac: Evse = site["ac"]

    started = time.monotonic()
    station_services.status_record(charge_point_id=ac.charge_point_id, connector_id=1, status="Charging")
    wait_until(lambda: hub.statuses["DEABCE10011"][2] == "Occupied", timeout=10, what="Occupied at Hubject")
    elapsed = time.monotonic() - started

    assert elapsed < 1.0, f"{elapsed:.3f} s"
    call = hub.calls("PushEvseStatus")[-1]
    assert call.body == {
        "ActionType": "update",
        "OperatorEvseStatus": {
            "OperatorID": OPERATOR_ID,
            "OperatorName": connection.tenant.name,
            "EvseStatusRecord": [{"EvseID": "DE*ABC*E1001*1", "EvseStatus": "Occupied"}],
        },
    }
    # the charger goes offline: Unknown; an EVSE Hubject does not hold (another operator's) is never sent
    station_services.status_record(charge_point_id=ac.charge_point_id, connector_id=3, status="Faulted")
    ChargePoint.objects.filter(pk=ac.charge_point_id).update(online=False)
    station_services.status_record(charge_point_id=ac.charge_point_id, connector_id=2, status="Available")
    wait_until(lambda: hub.statuses["DEABCE10012"][2] == "Unknown", timeout=10, what="Unknown at Hubject")
    sent = [r["EvseID"] for c in hub.calls("PushEvseStatus") for r in c.body["OperatorEvseStatus"]["EvseStatusRecord"]]
    assert "DE*XYZ*E77*1" not in sent
