"""EVSE status pushes to a partner's locations Receiver over real HTTP (the partner simulator): a StatusNotification
recorded by the stations service (as the OCPP handler records it) goes through the outbox to the roaming subscriber,
and the push task PATCHes the EVSE's status; in order of change, coalesced and resumed after the partner was down.

The push task runs in this process (`apply`): its Celery transport is the platform's ordinary one."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.core import events
from apps.roaming import tasks
from apps.roaming.models import PushState, RoamingPartner
from apps.roaming.ocpi import push
from apps.roaming.partner_sim import PartnerSimulator
from apps.sessions import services as session_services
from apps.sessions.models import Cdr, ChargingSession
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Evse
from apps.tenants.models import Tenant
from tests.charging.test_cdr import ELEMENTS
from tests.customers.factories import TokenFactory
from tests.roaming.factories import partner_for
from tests.roaming.test_cpo_locations import assert_valid
from tests.roaming.test_cpo_tariffs_cdrs import _completed_cdr
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory


@pytest.fixture
def registered(ocpi_base: str, sim: PartnerSimulator, tenant_a: Tenant) -> tuple[RoamingPartner, PartnerSimulator]:
    partner, token_a = partner_for(
        tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["locations"]
    )
    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    partner.refresh_from_db()
    return partner, sim


@pytest.fixture
def site(tenant_a: Tenant) -> tuple[ChargePoint, Evse, Evse]:
    location = LocationFactory(tenant=tenant_a, ocpi_id="LOC-1")
    charge_point = ChargePointFactory(tenant=tenant_a, location=location)
    ChargePoint.objects.filter(pk=charge_point.pk).update(online=True)
    first = EvseFactory(charge_point=charge_point, connector_id=1)
    second = EvseFactory(charge_point=charge_point, connector_id=2)
    return charge_point, first, second


def patches(sim: PartnerSimulator) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    return [(r.path, r.body, r.headers) for r in sim.received if r.method == "PATCH"]


def status(charge_point: ChargePoint, connector_id: int, value: str) -> None:
    station_services.status_record(charge_point_id=charge_point.pk, connector_id=connector_id, status=value)


def test_a_status_notification_reaches_the_partner_as_an_evse_patch(
    registered: tuple[RoamingPartner, PartnerSimulator], site: tuple[ChargePoint, Evse, Evse]
) -> None:
    partner, sim = registered
    charge_point, first, _ = site

    status(charge_point, 1, "Charging")
    sent = tasks.push_partner.apply(args=(partner.pk,)).get()

    assert sent == 1
    [(path, body, headers)] = patches(sim)
    assert path == f"/ocpi/emsp/2.2.1/locations/DE/ALP/LOC-1/{first.pk}"
    first.refresh_from_db()
    assert body == {
        "status": "CHARGING",
        "last_updated": first.status_received_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == ("DE", "ALP")
    assert (headers["OCPI-to-country-code"], headers["OCPI-to-party-id"]) == ("NL", "SIM")
    assert sim.locations["DE/ALP/LOC-1"]["evses"] == [{"uid": str(first.pk), **body}]
    partner.refresh_from_db()
    assert partner.last_pushes["locations"]["object"] == f"evse:{first.pk}"
    assert tasks.push_partner.apply(args=(partner.pk,)).get() == 0  # nothing left: no second PATCH


def test_pushes_go_in_order_of_change_with_the_latest_state(
    registered: tuple[RoamingPartner, PartnerSimulator], site: tuple[ChargePoint, Evse, Evse]
) -> None:
    partner, sim = registered
    charge_point, first, second = site

    status(charge_point, 1, "Preparing")
    status(charge_point, 2, "Faulted")
    status(charge_point, 1, "Available")
    tasks.push_partner.apply(args=(partner.pk,))

    assert [(path.rsplit("/", 1)[1], body["status"]) for path, body, _ in patches(sim)] == [
        (str(first.pk), "AVAILABLE"),
        (str(second.pk), "OUTOFORDER"),
    ]


def test_a_partner_down_gets_the_latest_state_once_when_back(
    registered: tuple[RoamingPartner, PartnerSimulator], site: tuple[ChargePoint, Evse, Evse]
) -> None:
    partner, sim = registered
    charge_point, first, _ = site
    sim.fail_status = 503

    for value in ("Preparing", "Charging", "SuspendedEV", "Finishing", "Faulted"):
        status(charge_point, 1, value)
        tasks.push_partner.apply(args=(partner.pk,))
    down = patches(sim)
    partner.refresh_from_db()
    state = PushState.objects.get(partner=partner, object_key=f"evse:{first.pk}")

    assert len(down) == 1  # one try, then the backoff: no flood while it is down
    assert state.attempts == 1
    assert state.version - state.pushed_version == 5
    assert "503" in partner.last_errors["locations"]["message"]
    assert push.due_partner_ids() == []  # not due before the backoff ends

    sim.fail_status = None
    later = timezone.now() + dt.timedelta(hours=3)
    assert push.due_partner_ids(now=later) == [partner.pk]
    result = push.push_partner(partner_id=partner.pk, now=later)

    assert result.sent == 1
    resumed = patches(sim)[1:]
    assert [body["status"] for _, body, _ in resumed] == ["OUTOFORDER"]  # the latest state, once
    partner.refresh_from_db()
    assert "locations" not in partner.last_errors
    state.refresh_from_db()
    assert (state.pushed_version, state.attempts, state.last_error) == (state.version, 0, "")


def test_no_push_for_partners_without_locations_or_of_other_tenants(
    registered: tuple[RoamingPartner, PartnerSimulator], site: tuple[ChargePoint, Evse, Evse], tenant_b: Tenant
) -> None:
    partner, sim = registered
    charge_point, _, _ = site
    RoamingPartner.objects.filter(pk=partner.pk).update(enabled_modules=["tokens"])
    other = ChargePointFactory(tenant=tenant_b, location=LocationFactory(tenant=tenant_b))
    EvseFactory(charge_point=other, connector_id=1)

    status(charge_point, 1, "Charging")
    status(other, 1, "Charging")

    assert PushState.objects.count() == 0
    assert patches(sim) == []


def test_the_cdr_of_a_partners_driver_is_posted_once_with_our_total(ocpi_base: str, tenant_a: Tenant) -> None:
    emsp = PartnerSimulator(country_code="NL", party_id="SIM", endpoint_ids=["credentials", "cdrs"]).start()
    try:
        partner, token_a = partner_for(
            tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["cdrs"]
        )
        assert emsp.register_with(f"{ocpi_base}/ocpi/versions", token_a)["status_code"] == 1000
        ours = _completed_cdr(tenant_a, "OURS-1")  # our own driver's: not sent
        cdr = _completed_cdr(tenant_a, "THEIRS-1", party=partner.party)

        tasks.push_partner.apply(args=(partner.pk,))
        events.deliver(events.SessionEnded(tenant_id=tenant_a.pk, session_id=cdr.session_id, charge_point_id=0))
        tasks.push_partner.apply(args=(partner.pk,))  # a repeated SessionEnded: nothing more

        posts = [r for r in emsp.received if r.method == "POST" and r.path == "/ocpi/emsp/2.2.1/cdrs"]
        assert len(posts) == 1
        key = f"DE/ALP/{cdr.ocpi_id}"
        assert list(emsp.cdrs) == [key]
        received = json.loads(json.dumps(emsp.cdrs[key]), parse_float=Decimal)
        assert received["total_cost"] == cdr.total_cost
        assert received["id"] != ours.ocpi_id
        state = PushState.objects.get(partner=partner, object_key=f"cdr:{cdr.pk}")
        assert state.remote_url == f"{emsp.base_url}/ocpi/emsp/2.2.1/cdrs/{key}"
        assert state.pushed_version == state.version == 1
    finally:
        emsp.stop()


def _meter(charge_point_id: int, session_id: int, wh: int, at: dt.datetime) -> None:
    session_services.session_add_meter_values(
        charge_point_id=charge_point_id,
        connector_id=1,
        transaction_id=session_id,
        meter_value=[{"timestamp": at.isoformat(), "sampled_value": [{"value": str(wh), "unit": "Wh"}]}],
    )


def test_a_partners_session_is_put_then_patched_throttled_then_ended_and_listed(
    ocpi_base: str, tenant_a: Tenant
) -> None:
    emsp = PartnerSimulator(country_code="NL", party_id="SIM", endpoint_ids=["credentials", "sessions", "cdrs"]).start()
    try:
        partner, token_a = partner_for(
            tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["sessions", "cdrs"]
        )
        assert emsp.register_with(f"{ocpi_base}/ocpi/versions", token_a)["status_code"] == 1000
        cp = ChargePointFactory(tenant=tenant_a, location=LocationFactory(tenant=tenant_a, ocpi_id="LOC-9"))
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1))
        TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, elements=ELEMENTS))
        TokenFactory(tenant=tenant_a, uid="ROAM-1", country_code="NL", party_id="SIM")
        start = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=30)
        session, _ = session_services.session_start(
            charge_point_id=cp.pk, connector_id=1, id_tag="ROAM-1", meter_start=1_000, timestamp=start
        )
        ChargingSession.objects.filter(pk=session.pk).update(roaming_partner=partner.party)
        key = f"DE/ALP/{session.pk}"

        _meter(cp.pk, session.pk, 2_000, start + dt.timedelta(minutes=5))
        tasks.push_partner.apply(args=(partner.pk,))
        first = dict(emsp.sessions[key])
        _meter(cp.pk, session.pk, 3_500, start + dt.timedelta(minutes=6))
        tasks.push_partner.apply(args=(partner.pk,))  # within the interval: held back
        held = dict(emsp.sessions[key])
        push.push_partner(partner_id=partner.pk, now=timezone.now() + dt.timedelta(minutes=2))
        patched = dict(emsp.sessions[key])
        _meter(cp.pk, session.pk, 4_500, start + dt.timedelta(minutes=7))
        tasks.push_partner.apply(args=(partner.pk,))  # held back again: the row waits for the interval's end
        assert PushState.objects.get(partner=partner, object_key=f"session:{session.pk}").next_attempt_at is not None
        held_again = dict(emsp.sessions[key])
        session_services.session_stop(
            charge_point_id=cp.pk, transaction_id=session.pk, meter_stop=6_000,
            timestamp=start + dt.timedelta(minutes=20), reason="Local",
        )  # fmt: skip
        tasks.push_partner.apply(args=(partner.pk,))
        listed = emsp.call("GET", emsp.peer_endpoint("sessions"))

        methods = [(r.method, r.path.rsplit("/", 1)[-1]) for r in emsp.received if "/sessions/" in r.path]
        assert methods == [("PUT", str(session.pk)), ("PATCH", str(session.pk)), ("PATCH", str(session.pk))]
        assert_valid("mod_sessions_session_object", first)
        assert (first["status"], first["kwh"], first["location_id"]) == ("ACTIVE", 1.0, "LOC-9")
        assert held == first
        assert patched["kwh"] == 2.5
        assert held_again == patched
        # the end was not held back by the waiting meter update: pushed at once
        ended = emsp.sessions[key]
        assert ended["status"] == "COMPLETED"
        assert ended["kwh"] == 5.0
        cdr = Cdr.objects.get(session_id=session.pk)
        assert json.loads(json.dumps(ended["total_cost"]), parse_float=Decimal) == cdr.total_cost
        assert len(emsp.cdrs) == 1
        body = json.loads(listed.content)
        assert [s["id"] for s in body["data"]] == [str(session.pk)]
        assert_valid("mod_sessions_session_object", body["data"][0])
    finally:
        emsp.stop()


def test_a_charger_going_offline_pushes_unknown(
    registered: tuple[RoamingPartner, PartnerSimulator], site: tuple[ChargePoint, Evse, Evse]
) -> None:
    partner, sim = registered
    charge_point, first, second = site
    status(charge_point, 1, "Available")
    tasks.push_partner.apply(args=(partner.pk,))

    station_services.charge_point_disconnected(charge_point_id=charge_point.pk, connection_id="")
    tasks.push_partner.apply(args=(partner.pk,))

    assert [(path.rsplit("/", 1)[1], body["status"]) for path, body, _ in patches(sim)] == [
        (str(first.pk), "AVAILABLE"),
        (str(first.pk), "UNKNOWN"),
        (str(second.pk), "UNKNOWN"),
    ]
