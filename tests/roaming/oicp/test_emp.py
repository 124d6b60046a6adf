"""We are EMP at Hubject (apps/roaming/oicp/emp.py): tenant Beta's driver charges on tenant Alpha's charger through
the local Hubject, over real HTTPS with mutual TLS, as two partners of the hub would. Beta pulls Alpha's EVSE data
and statuses into its partner catalog, its driver finds the station in the driver search with Beta's retail price,
starts it by EVSE id (AuthorizeRemoteStart through the hub to our CPO side and the simulated OCPP charger), stops it,
and Alpha's CDR comes back through the hub into Beta's billing as a receipt. Every request and forward is checked by
the hub against the OpenAPI files (lengths included; `hub.errors` must stay empty)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from apps.billing.models import InvoiceLine
from apps.roaming.models import OicpConnection, OicpOperation
from apps.roaming.oicp import cpo_push, emp
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.sessions.models import ChargingSession, PartnerCdr, PartnerSession, Reservation, SessionStatus
from apps.stations.models import PartnerEvse, PartnerLocation
from apps.tariffs import services as tariff_services
from apps.tenants.models import Role, Tenant
from tests.customers.factories import DriverFactory, TokenFactory
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.oicp.conftest import Client, evse_record, push_evse_data
from tests.roaming.oicp.factories import oicp_connection_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OPERATOR = "DE*ALP"
PROVIDER = "NL-BET"
EVCO = "NL-BET-C12345678-X"
HUBJECT_DN = "CN=hubject-hbs"
PROXY = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": f"{HUBJECT_DN},O=Hubject"}
LIST = "/api/v1/driver/partner-sessions/"
EMP_OPERATIONS = [
    OicpOperation.PULL_EVSE_DATA,
    OicpOperation.PULL_EVSE_STATUS,
    OicpOperation.AUTHORIZE_REMOTE_START,
    OicpOperation.AUTHORIZE_REMOTE_STOP,
    OicpOperation.AUTHORIZE_REMOTE_RESERVATION_START,
    OicpOperation.AUTHORIZE_REMOTE_RESERVATION_STOP,
]
RESERVATIONS = "/api/v1/driver/partner-reservations/"


@pytest.fixture
def alpha(ocpi_base: str, hub: HubSimulator, pki: LocalCA, site: Site, settings: Any) -> OicpConnection:
    """Alpha is CPO at the hub (OperatorID DE*ALP): its two EVSEs pushed, our endpoint known to the hub."""
    settings.OICP_INBOUND_CLIENT_DN = HUBJECT_DN
    hub.add_party("cpo.alpha", operator_id=OPERATOR, endpoint=f"{ocpi_base}/oicp")
    hub.partner_headers = PROXY
    connection = oicp_connection_for(
        site.tenant,
        pki=pki,
        common_name="cpo.alpha",
        base_url=hub.url,
        operator_id=OPERATOR,
        provider_id="",
        enabled_operations=[
            OicpOperation.PUSH_EVSE_DATA,
            OicpOperation.PUSH_EVSE_STATUS,
            OicpOperation.CHARGE_DETAIL_RECORD,
            OicpOperation.CHARGING_NOTIFICATIONS,
        ],
        hotline_phone_number="+4930123456",
    )
    assert cpo_push.evse_data_sync(connection_id=connection.pk).inserted == 2
    return connection


@pytest.fixture
def beta(ocpi_base: str, hub: HubSimulator, pki: LocalCA, tenant_b: Tenant, settings: Any) -> OicpConnection:
    """Beta is EMP at the hub (ProviderID NL-BET), its drivers pay 0.50 EUR/kWh + 21 % VAT on Hubject's EVSEs."""
    settings.OICP_INBOUND_CLIENT_DN = HUBJECT_DN
    hub.partner_headers = PROXY
    hub.add_party("emp.beta", provider_id=PROVIDER, endpoint=f"{ocpi_base}/oicp")
    connection = oicp_connection_for(
        tenant_b,
        pki=pki,
        common_name="emp.beta",
        base_url=hub.url,
        operator_id="",
        provider_id=PROVIDER,
        enabled_operations=EMP_OPERATIONS,
    )
    tariff_services.roaming_retail_rule_create(
        tenant=tenant_b,
        partner=connection.partner,
        mode="fixed_kwh",
        price_per_kwh_excl_vat=Decimal("0.50"),
        vat_rate=Decimal("21"),
        currency="EUR",
    )
    return connection


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_an_emp_tenant_pulls_starts_through_the_hub_and_bills_the_cdr(
    alpha: OicpConnection,
    beta: OicpConnection,
    hub: HubSimulator,
    site: Site,
    tenant_b: Tenant,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
    key_client_for: Callable[..., APIClient],
) -> None:
    charger(session_seconds=(600.0, 600.0))
    # the charger's statuses reach the hub (PushEvseStatus on every change, through the roaming worker)
    wait_until(lambda: len(hub.statuses) == 2 and all(s[2] == "Available" for s in hub.statuses.values()), what="2")
    # our LastCall is in whole seconds, rounded down (a change at the hub is pulled twice rather than missed): so
    # that the delta pull below sees nothing, the first pull starts in a later second than the hub's last change
    wait_until(
        lambda: all(e.updated < dt.datetime.now(dt.UTC).replace(microsecond=0) for e in list(hub.evses.values())),
        what="the hub's EVSE data a second old",
    )

    # Beta pulls: one location (Alpha's location, the charging pool of the EVSE data) with its two EVSEs, Available
    pulled = emp.evse_data_pull(connection_id=beta.pk)
    assert (pulled.records, pulled.locations, pulled.skipped) == (2, 1, [])
    location = PartnerLocation.objects.get(tenant=tenant_b)
    assert (location.partner_id, location.country_code, location.party_id, location.ocpi_id) == (
        beta.partner_id,
        "DE",
        "ALP",
        f"DE*ALP*P{site.location.pk}",
    )
    assert (location.city, location.country) == (site.location.city, "DEU")
    assert (location.latitude, location.longitude) == (site.location.latitude, site.location.longitude)
    evses = {e.evse_id: e for e in PartnerEvse.objects.filter(location=location)}
    assert sorted(evses) == ["DE*ALP*E1*1", "DE*ALP*E1*2"]
    assert {e.status for e in evses.values()} == {"AVAILABLE"}
    assert evses["DE*ALP*E1*1"].connectors.get().standard == "IEC_62196_T2"
    # nothing changed at the hub since: a delta pull asks with LastCall and gets nothing
    assert emp.evse_data_pull(connection_id=beta.pk).records == 0
    assert "LastCall" in hub.calls("PullEvseData")[-1].body

    # Beta's driver finds it in the driver search, priced by Beta's rule
    driver = DriverFactory(tenant=tenant_b)
    TokenFactory(tenant=tenant_b, driver=driver, uid="04A1B2C3D4E5F6", contract_id=EVCO)
    api = key_client_for(tenant_b, ["driver:read", "driver:write"])
    here = {"lat": str(site.location.latitude), "lon": str(site.location.longitude)}
    page = api.get("/api/v1/driver/stations/", {**here, "radius_km": "5", "driver": driver.pk})
    assert page.status_code == 200, page.json()
    (found,) = [s for s in page.json()["results"] if s["network"] == "partner"]
    price = found["evses"][0]["price"]
    assert (price["retail_mode"], price["per_kwh"]) == ("fixed_kwh", {"excl_vat": "0.5000", "incl_vat": "0.6050"})

    # start by EVSE id: Hubject answers once Alpha's charger accepted
    started = api.post(LIST, {"driver": driver.pk, "evse_id": "DE*ALP*E1*1"}, format="json")
    assert started.status_code == 202, started.json()
    body = started.json()
    assert body["state"] == "accepted", body
    hubject_id = body["authorization_reference"]
    assert str(uuid.UUID(hubject_id)) == hubject_id
    (request,) = hub.calls("AuthorizeRemoteStart")
    assert request.body["Identification"] == {"RemoteIdentification": {"EvcoID": EVCO}}
    running = wait_until(
        lambda: ChargingSession.objects.filter(
            authorization_reference=hubject_id, status=SessionStatus.ACTIVE, tenant=site.tenant
        ).first(),
        what="Alpha's session",
    )
    assert running.connector_id == 1
    # Alpha's Start notification reaches Beta through the hub: the driver's live view says charging
    live = wait_until(
        lambda: PartnerSession.objects.filter(pk=body["id"], state="ACTIVE").first(), what="Beta's live view"
    )
    assert live.start_date_time is not None
    assert next(n["Type"] for n in hub.notifications if n["SessionID"] == hubject_id) == "Start"
    wait_until(lambda: ChargingSession.objects.get(pk=running.pk).last_meter_wh > running.meter_start_wh, what="kWh")

    # a second start on that EVSE: Alpha answers 602 (in use), the driver's new session says so, and that EVSE's
    # status is pulled by id at once through the roaming worker (PullEvseStatusById), so the search stops offering it
    pulls = len(hub.calls("PullEvseStatus"))
    second = api.post(LIST, {"driver": driver.pk, "evse_id": "DE*ALP*E1*1"}, format="json")
    assert second.status_code == 202, second.json()
    assert second.json()["state"] == "evse_occupied", second.json()
    asked = wait_until(lambda: hub.calls("PullEvseStatus")[pulls:], what="PullEvseStatusById")
    assert [call.body for call in asked] == [{"ProviderID": PROVIDER, "EvseID": ["DE*ALP*E1*1"]}]
    wait_until(lambda: PartnerEvse.objects.get(evse_id="DE*ALP*E1*1").status == "CHARGING", what="E1*1 charging")
    assert PartnerEvse.objects.get(evse_id="DE*ALP*E1*2").status == "AVAILABLE"

    stopped = api.post(f"{LIST}{body['id']}/stop/", {}, format="json")
    assert stopped.status_code == 202, stopped.json()
    assert stopped.json()["state"] == "stop_accepted", stopped.json()

    # Alpha's CDR goes to the hub, the hub forwards it to Beta: a partner CDR, the session completed, a receipt
    done = wait_until(
        lambda: ChargingSession.objects.filter(pk=running.pk, status=SessionStatus.COMPLETED).first(), what="stopped"
    )
    cdr = wait_until(lambda: PartnerCdr.objects.filter(tenant=tenant_b).first(), what="Beta's CDR")
    kwh = (Decimal(done.energy_wh) / 1000).quantize(Decimal("0.0001"))
    assert (cdr.ocpi_id, cdr.authorization_reference, cdr.total_energy) == (hubject_id, hubject_id, kwh)
    assert (cdr.driver_id, cdr.partner_id) == (driver.pk, beta.partner_id)
    session = PartnerSession.objects.get(pk=body["id"])
    assert (session.state, session.kwh) == ("COMPLETED", kwh)
    wait_until(lambda: "End" in [n["Type"] for n in hub.notifications if n["SessionID"] == hubject_id], what="End")
    line = wait_until(lambda: InvoiceLine.objects.filter(partner_cdr_id=cdr.pk).first(), what="the receipt line")
    excl = _money(kwh * Decimal("0.50"))
    assert (line.total_excl_vat, line.total_incl_vat) == (excl, excl + _money(excl * Decimal("0.21")))
    assert (line.location_name, line.evse_reference) == (location.name, "DE*ALP*E1*1")
    assert line.invoice.tenant_id == tenant_b.pk
    cdr.refresh_from_db()
    assert cdr.review == "no_tariff"  # OICP CDRs carry no price to check

    # the same CDR again straight to our endpoint: 009, nothing more stored or billed
    # the hub records its forward once our answer is back, which can come after the receipt is already written
    forwarded = wait_until(
        lambda: next((f for f in hub.forwarded if f.url.endswith("/charge-detail-record")), None), what="the forward"
    )
    again = requests.post(forwarded.url, json=forwarded.body, headers=PROXY, timeout=30).json()
    assert (again["Result"], again["StatusCode"]["Code"]) == (False, "009")
    assert (PartnerCdr.objects.count(), InvoiceLine.objects.filter(partner_cdr_id__isnull=False).count()) == (1, 1)


def test_a_cdr_or_notification_we_cannot_place_is_refused_and_changes_nothing(
    ocpi_base: str, beta: OicpConnection, settings: Any
) -> None:
    settings.OICP_INBOUND_CLIENT_DN = HUBJECT_DN
    url = f"{ocpi_base}/oicp/cdrmgmt/v22/operators/DE*ALP/charge-detail-record"
    cdr = {
        "SessionID": str(uuid.uuid4()),
        "EvseID": "DE*ALP*E1*1",
        "Identification": {"RemoteIdentification": {"EvcoID": EVCO}},
        "ChargingStart": "2026-12-05T10:00:00Z",
        "ChargingEnd": "2026-12-05T11:00:00Z",
        "SessionStart": "2026-12-05T10:00:00Z",
        "SessionEnd": "2026-12-05T11:00:00Z",
        "ConsumedEnergy": 12.5,
    }
    unknown = requests.post(url, json=cdr, headers=PROXY, timeout=30)
    assert (unknown.status_code, unknown.json()["StatusCode"]["Code"]) == (200, "400")
    invalid = requests.post(url, json={**cdr, "SessionID": "not-a-uuid"}, headers=PROXY, timeout=30)
    assert (invalid.status_code, invalid.json()["StatusCode"]["Code"]) == (400, "022")
    other_operator = requests.post(url.replace("DE*ALP", "DE*XYZ"), json=cdr, headers=PROXY, timeout=30)
    assert (other_operator.status_code, other_operator.json()["StatusCode"]["Code"]) == (400, "022")
    untrusted = requests.post(url, json=cdr, timeout=30)
    assert (untrusted.status_code, untrusted.json()["StatusCode"]["Code"]) == (403, "017")
    note = {"Type": "Start", "SessionID": cdr["SessionID"], "EvseID": "DE*ALP*E1*1"}
    note["Identification"] = cdr["Identification"]
    note["ChargingStart"] = cdr["ChargingStart"]
    answer = requests.post(
        f"{ocpi_base}/oicp/notificationmgmt/v11/charging-notifications", json=note, headers=PROXY, timeout=30
    )
    assert answer.json()["StatusCode"]["Code"] in ("400", "022"), answer.json()
    assert (PartnerCdr.objects.count(), PartnerSession.objects.count()) == (0, 0)


def test_our_drivers_card_at_another_cpo_is_authorized_through_the_hub_and_its_cdr_billed(
    beta: OicpConnection, hub: HubSimulator, cpo: Client, tenant_b: Tenant
) -> None:
    """A CPO behind Hubject asks about a bare RFID UID: the hub asks us (the only EMP), we authorize our driver's
    card and open the driver's partner session under Hubject's SessionID; the CPO's CDR then reaches our billing."""
    driver = DriverFactory(tenant=tenant_b)
    TokenFactory(tenant=tenant_b, driver=driver, uid="04A1B2C3D4E5F6", contract_id=EVCO)
    TokenFactory(tenant=tenant_b, driver=driver, uid="0BADC0DE", blocked=True)
    card = {"RFIDMifareFamilyIdentification": {"UID": "04A1B2C3D4E5F6"}}
    start = "/charging/v21/operators/DE*ABC/authorize/start"
    evse = {"OperatorID": "DE*ABC", "EvseID": "DE*ABC*E7*1"}

    answer = cpo.post(start, {**evse, "Identification": card}).json()

    assert (answer["AuthorizationStatus"], answer["StatusCode"]["Code"], answer["ProviderID"]) == (
        "Authorized",
        "000",
        PROVIDER,
    )
    session = PartnerSession.objects.get(tenant=tenant_b, authorization_reference=answer["SessionID"])
    assert (session.state, session.driver_id) == ("PENDING", driver.pk)
    assert (session.country_code, session.party_id) == ("DE", "ABC")
    assert answer["EMPPartnerSessionID"] == str(session.pk)
    # a blocked card and one we do not know are refused, and open nothing
    for uid in ("0BADC0DE", "DEADBEEF"):
        refused = cpo.post(start, {**evse, "Identification": {"RFIDMifareFamilyIdentification": {"UID": uid}}}).json()
        assert refused["AuthorizationStatus"] == "NotAuthorized", refused
    assert PartnerSession.objects.count() == 1

    # who may stop it (AuthorizeStop through the hub): the driver's other card yes; a blocked one, another's no
    TokenFactory(tenant=tenant_b, driver=driver, uid="0C0FFEE0", contract_id="")
    TokenFactory(tenant=tenant_b, uid="0DDBA110", contract_id="")
    stop = "/charging/v21/operators/DE*ABC/authorize/stop"
    verdicts = {
        uid: cpo.post(
            stop,
            {
                "OperatorID": "DE*ABC",
                "SessionID": answer["SessionID"],
                "Identification": {"RFIDMifareFamilyIdentification": {"UID": uid}},
            },
        ).json()["AuthorizationStatus"]
        for uid in ("0BADC0DE", "0DDBA110", "0C0FFEE0")
    }
    assert verdicts == {"0BADC0DE": "NotAuthorized", "0DDBA110": "NotAuthorized", "0C0FFEE0": "Authorized"}

    # the CPO's CDR: through the hub to us, the session completed, our driver's receipt at Beta's 0.50 EUR/kWh
    cdr = {
        "SessionID": answer["SessionID"],
        "EvseID": "DE*ABC*E7*1",
        "Identification": card,
        "ChargingStart": "2026-12-05T10:00:00Z",
        "ChargingEnd": "2026-12-05T11:00:00Z",
        "SessionStart": "2026-12-05T09:59:00Z",
        "SessionEnd": "2026-12-05T11:01:00Z",
        "ConsumedEnergy": 20.5,
    }
    ack = cpo.post("/cdrmgmt/v22/operators/DE*ABC/charge-detail-record", cdr).json()
    assert ack["Result"] is True, ack
    assert next(f for f in hub.forwarded if f.url.endswith("/charge-detail-record")).answer["Result"] is True
    stored = PartnerCdr.objects.get(tenant=tenant_b)
    assert (stored.total_energy, stored.driver_id, stored.session_id) == (Decimal("20.5000"), driver.pk, session.pk)
    assert PartnerSession.objects.get(pk=session.pk).state == "COMPLETED"
    line = wait_until(lambda: InvoiceLine.objects.filter(partner_cdr_id=stored.pk).first(), what="the receipt line")
    assert (line.total_excl_vat, line.total_incl_vat) == (Decimal("10.25"), Decimal("12.40"))


def test_the_admin_full_pull_fills_the_catalog_of_the_tenants_own_connection_only(
    beta: OicpConnection,
    hub: HubSimulator,
    cpo: Client,
    pki: LocalCA,
    tenant_a: Tenant,
    tenant_b: Tenant,
    make_staff: Callable[..., Any],
    client: Any,
    celery_worker: str,
) -> None:
    """The admin action "Full pull of Hubject's EVSE data" (EMP): Beta's admin selects Beta's connection and, smuggled
    into the form, Alpha's; the roaming worker pulls for Beta only, and Beta's partner catalog gets what the hub
    lists."""
    pushed = cpo.post(
        "/evsepush/v23/operators/DE*ABC/data-records", push_evse_data("fullLoad", evse_record("DE*ABC*E7*1"))
    ).json()
    assert pushed["Result"] is True, pushed
    hub.add_party("emp.alpha", provider_id="DE-AEM")
    other = oicp_connection_for(
        tenant_a,
        pki=pki,
        common_name="emp.alpha",
        base_url=hub.url,
        operator_id="",
        provider_id="DE-AEM",
        enabled_operations=[OicpOperation.PULL_EVSE_DATA],
    )
    client.force_login(make_staff(tenant_b, Role.ADMIN, is_staff=True))

    page = client.post(
        "/admin/roaming/oicpconnection/",
        {"action": "evse_data_full_pull", "_selected_action": [beta.pk, other.pk], "index": 0, "select_across": 0},
        follow=True,
    )

    assert page.status_code == 200
    assert "A full pull of Hubject&#x27;s EVSE data was queued for 1 connection." in page.content.decode()
    evse = wait_until(lambda: PartnerEvse.objects.filter(location__tenant=tenant_b).first(), what="the pulled EVSE")
    assert (evse.evse_id, evse.location.party_id) == ("DE*ABC*E7*1", "ABC")
    wait_until(lambda: OicpConnection.objects.get(pk=beta.pk).evse_data_pulled_at, what="the pull's time")
    assert not PartnerLocation.objects.filter(tenant=tenant_a).exists()
    assert OicpConnection.objects.get(pk=other.pk).evse_data_pulled_at is None
    assert hub.errors == []


def test_a_driver_reserves_a_hubject_evse_and_cancels_it_at_the_other_tenants_charger(
    alpha: OicpConnection,
    beta: OicpConnection,
    hub: HubSimulator,
    site: Site,
    tenant_b: Tenant,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
    key_client_for: Callable[..., APIClient],
) -> None:
    """AuthorizeRemoteReservationStart through the hub to Alpha's CPO side (ReserveNow at the simulated charger),
    then AuthorizeRemoteReservationStop (CancelReservation); a reservation longer than OICP's 99 minutes is refused
    before anything is sent or stored."""
    charger()
    wait_until(lambda: len(hub.statuses) == 2, what="the statuses at the hub")
    emp.evse_data_pull(connection_id=beta.pk, full=True)
    driver = DriverFactory(tenant=tenant_b)
    TokenFactory(tenant=tenant_b, driver=driver, uid="04A1B2C3D4E5F6", contract_id=EVCO)
    api = key_client_for(tenant_b, ["driver:read", "driver:write"])
    target = {"driver": driver.pk, "evse_id": "DE*ALP*E1*2"}

    too_long = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=120)
    refused = api.post(RESERVATIONS, {**target, "expires_at": too_long.isoformat()}, format="json")
    assert refused.status_code == 400, refused.json()
    assert "expires_at" in refused.json()["fields"], refused.json()
    assert (PartnerSession.objects.count(), hub.calls("AuthorizeRemoteReservationStart")) == (0, [])

    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    reserved = api.post(RESERVATIONS, {**target, "expires_at": until.isoformat()}, format="json")

    assert reserved.status_code == 202, reserved.json()
    body = reserved.json()
    assert body["state"] == "RESERVATION", body
    (request,) = hub.calls("AuthorizeRemoteReservationStart")
    assert (request.body["Duration"], request.body["EvseID"]) == (30, "DE*ALP*E1*2")
    assert request.body["SessionID"] == body["authorization_reference"]
    held = Reservation.objects.get(charge_point=site.charge_point)
    assert (held.status, held.connector_id) == ("active", 2)

    cancelled = api.post(f"{RESERVATIONS}{body['id']}/cancel/", {}, format="json")

    assert cancelled.status_code == 202, cancelled.json()
    assert cancelled.json()["state"] == "canceled", cancelled.json()
    (stop,) = hub.calls("AuthorizeRemoteReservationStop")
    assert stop.body["SessionID"] == body["authorization_reference"]
    assert Reservation.objects.get(pk=held.pk).status == "cancelled"
    # cancelled already: a second cancel is refused here, and nothing more reaches the hub
    again = api.post(f"{RESERVATIONS}{body['id']}/cancel/", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "partner_session_state")
    assert len(hub.calls("AuthorizeRemoteReservationStop")) == 1


def test_the_status_of_a_few_evses_is_pulled_by_id(beta: OicpConnection, hub: HubSimulator, cpo: Client) -> None:
    """PullEvseStatusById: only the EVSEs asked for are asked and written (a CPO's EVSE turned Occupied since the
    last sweep; another one changed too but is not asked for, so it keeps the catalog's status)."""
    records = [evse_record("DE*ABC*E7*1"), evse_record("DE*ABC*E7*2")]
    pushed = cpo.post("/evsepush/v23/operators/DE*ABC/data-records", push_evse_data("fullLoad", *records)).json()
    assert pushed["Result"] is True, pushed
    statuses = {
        "ActionType": "fullLoad",
        "OperatorEvseStatus": {
            "OperatorID": "DE*ABC",
            "EvseStatusRecord": [
                {"EvseID": "DE*ABC*E7*1", "EvseStatus": "Available"},
                {"EvseID": "DE*ABC*E7*2", "EvseStatus": "Available"},
            ],
        },
    }
    assert cpo.post("/evsepush/v21/operators/DE*ABC/status-records", statuses).json()["Result"] is True
    emp.evse_data_pull(connection_id=beta.pk, full=True)
    assert set(PartnerEvse.objects.values_list("status", flat=True)) == {"AVAILABLE"}
    for record in statuses["OperatorEvseStatus"]["EvseStatusRecord"]:  # type: ignore[index]
        record["EvseStatus"] = "Occupied"
    assert cpo.post("/evsepush/v21/operators/DE*ABC/status-records", statuses).json()["Result"] is True

    changed = emp.evse_status_by_id(connection_id=beta.pk, evse_ids=["DE*ABC*E7*1", "DE*XYZ*E1*1"])

    assert changed == 1
    assert dict(PartnerEvse.objects.values_list("evse_id", "status")) == {
        "DE*ABC*E7*1": "CHARGING",
        "DE*ABC*E7*2": "AVAILABLE",
    }
    assert hub.calls("PullEvseStatus")[-1].body == {"ProviderID": PROVIDER, "EvseID": ["DE*ABC*E7*1"]}
