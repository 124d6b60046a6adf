"""Driver API on partner EVSEs (apps/roaming/api/driver_views.py): start by EVSE id or QR, or by partner, Location.id
and EVSE.uid; stop, reserve, cancel, unlock; the live view read from the partner session row; errors in the API's
one shape; tenant scoping. End to end over real HTTP: the driver API on daphne, the simulated CPO, its result."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import EmspCommand, PartnerStatus, RoamingPartner
from apps.roaming.ocpi.emsp_tokens import token_object
from apps.sessions.models import PartnerSession
from apps.stations.models import PartnerEvse
from apps.tenants.models import Tenant
from tests.roaming.conftest import wait_until
from tests.roaming.emsp_commands_rig import Driven, driver_with_token, partner_evse, register_cpo
from tests.tenants.factories import api_key_for

LIST = "/api/v1/driver/partner-sessions/"
RESERVATIONS = "/api/v1/driver/partner-reservations/"


@pytest.fixture
def cpo() -> Iterator[CpoSimulator]:
    simulator = CpoSimulator(country_code="NL", party_id="CPO").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, cpo: CpoSimulator, tenant_a: Tenant) -> RoamingPartner:
    return register_cpo(ocpi_base, cpo, tenant_a)


@pytest.fixture
def evse(partner: RoamingPartner) -> PartnerEvse:
    return partner_evse(partner)


@pytest.fixture
def driven(tenant_a: Tenant) -> Driven:
    return driver_with_token(tenant_a)


@pytest.fixture
def api(key_client_for: Callable[..., APIClient], tenant_a: Tenant) -> APIClient:
    return key_client_for(tenant_a, ["driver:write"])


def _later(seconds: int) -> str:
    return (timezone.now() + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wait_state(session_id: int, state: str) -> PartnerSession:
    return wait_until(
        lambda: PartnerSession.objects.filter(pk=session_id, state=state).first(), timeout=60, what=f"state {state}"
    )


# --------------------------------------------------------------------------- start, by EVSE id, QR or uids


@pytest.mark.parametrize(
    "target",
    [
        {"evse_id": "NL*CPO*E100*1"},
        {"evse_id": "nlcpoe1001"},  # as typed: no separators, any case
        {"evse_id": "https://qr.example.com/start/NL*CPO*E100*1"},  # the QR code's payload
        "uids",
    ],
)
def test_start_answers_at_once_then_the_result_comes(
    api: APIClient, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, target: Any
) -> None:
    if target == "uids":
        target = {"partner": partner.pk, "location_id": "LOC-100", "evse_uid": "EVSE-100"}
    answer = api.post(LIST, {"driver": driven.driver.pk, **target}, format="json")

    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert body["state"] == "requested"
    assert (body["driver"], body["token_uid"], body["evse_uid"], body["location_ocpi_id"]) == (
        driven.driver.pk,
        driven.token.uid,
        "EVSE-100",
        "LOC-100",
    )
    assert [c["command"] for c in body["commands"]] == ["START_SESSION"]
    assert body["commands"][0]["state"] in ("pending", "done")
    assert cpo.cpo_commands[0]["body"]["authorization_reference"] == body["authorization_reference"]
    _wait_state(body["id"], "accepted")
    live = api.get(f"{LIST}{body['id']}/").json()
    assert (live["state"], live["state_reason"]) == ("accepted", "START_SESSION ACCEPTED")
    assert live["commands"][0]["result"] == "ACCEPTED"


def test_live_view_reads_the_row(
    api: APIClient, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    body = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json").json()
    _wait_state(body["id"], "accepted")
    started = timezone.now().replace(microsecond=0)
    # what the CPO's session PATCHes write (the receivers' service): status, kWh, cost
    PartnerSession.objects.filter(pk=body["id"]).update(
        state="ACTIVE",
        ocpi_id="S-1",
        kwh="12.3450",
        currency="EUR",
        total_cost_excl_vat="4.1200",
        total_cost_incl_vat="4.9000",
        start_date_time=started,
    )
    live = api.get(f"{LIST}{body['id']}/").json()
    assert live["state"] == "ACTIVE"
    assert live["kwh"] == 12.345
    assert (live["currency"], live["total_cost_excl_vat"], live["total_cost_incl_vat"]) == ("EUR", "4.1200", "4.9000")
    assert live["start_date_time"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert live["end_date_time"] is None
    listed = api.get(LIST, {"driver": driven.driver.pk, "state": "ACTIVE"}).json()
    assert [s["id"] for s in listed["results"]] == [body["id"]]


def test_list_has_no_n_plus_one(
    api: APIClient, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    cpo.command_plans["START_SESSION"] = {"result": None}

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(LIST).status_code == 200
        return len(captured)

    api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    one = queries_for_list()
    for _ in range(3):
        api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    assert queries_for_list() == one
    assert len(api.get(LIST).json()["results"]) == 4


# --------------------------------------------------------------------------- refusals in the API's error shape


def _nothing_sent(cpo: CpoSimulator) -> None:
    assert cpo.cpo_commands == []
    assert PartnerSession.objects.count() == 0
    assert EmspCommand.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({"evse_id": "NL*CPO*E999*1"}, 404, "partner_evse_not_found", None),
        ({}, 400, "validation_error", "evse_id"),
        ({"evse_id": "NL*CPO*E100*1", "location_id": "LOC-100"}, 400, "validation_error", "location_id"),
        ({"location_id": "LOC-100", "evse_uid": "EVSE-100"}, 400, "validation_error", "partner"),
        ({"evse_id": "NL*CPO*E100*1", "connector_id": "9"}, 400, "validation_error", "connector_id"),
        ({"evse_id": "NL*CPO*E100*1", "token_uid": "NOT-MINE"}, 422, "token_unknown", None),
        ({"evse_id": "NL*CPO*E100*1", "colour": "red"}, 400, "validation_error", "colour"),
    ],
)
def test_bad_start_requests(
    api: APIClient,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    payload: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    answer = api.post(LIST, {"driver": driven.driver.pk, **payload}, format="json")
    assert answer.status_code == status, answer.json()
    error = answer.json()
    assert error["code"] == code
    assert set(error) == {"code", "message", "fields"}
    if field:
        assert field in error["fields"]
    _nothing_sent(cpo)


@pytest.mark.parametrize(
    ("token_fields", "code"),
    [({"blocked": True}, "token_blocked"), ({"valid": False}, "token_invalid")],
)
def test_token_that_may_not_charge(
    api: APIClient,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    tenant_a: Tenant,
    token_fields: dict[str, Any],
    code: str,
) -> None:
    refused = driver_with_token(tenant_a, **token_fields)
    answer = api.post(
        LIST,
        {"driver": refused.driver.pk, "evse_id": "NL*CPO*E100*1", "token_uid": refused.token.uid},
        format="json",
    )
    assert (answer.status_code, answer.json()["code"]) == (403, code)
    _nothing_sent(cpo)


def test_expired_token(
    api: APIClient, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, tenant_a: Tenant
) -> None:
    refused = driver_with_token(tenant_a, expires_at=timezone.now() - dt.timedelta(days=1))
    answer = api.post(
        LIST, {"driver": refused.driver.pk, "evse_id": "NL*CPO*E100*1", "token_uid": refused.token.uid}, format="json"
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "token_expired")
    _nothing_sent(cpo)


@pytest.mark.parametrize(
    "change",
    [{"status": PartnerStatus.SUSPENDED}, {"endpoints": []}, {"enabled_modules": ["locations"]}],
)
def test_partner_we_cannot_command_is_409(
    api: APIClient,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    change: dict[str, Any],
) -> None:
    RoamingPartner.objects.filter(pk=partner.pk).update(**change)
    answer = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    assert answer.status_code == 409
    assert answer.json()["code"] == "partner_unavailable"
    assert answer.json()["message"].startswith("Cannot send commands: ")
    _nothing_sent(cpo)


def test_removed_evse_is_409(api: APIClient, cpo: CpoSimulator, evse: PartnerEvse, driven: Driven) -> None:
    PartnerEvse.objects.filter(pk=evse.pk).update(status="REMOVED")
    answer = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (409, "evse_removed")
    _nothing_sent(cpo)


def test_stop_before_the_cpo_reported_the_session_is_409(
    api: APIClient, cpo: CpoSimulator, evse: PartnerEvse, driven: Driven
) -> None:
    body = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json").json()
    _wait_state(body["id"], "accepted")
    answer = api.post(f"{LIST}{body['id']}/stop/", {}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (409, "partner_session_unknown")
    PartnerSession.objects.filter(pk=body["id"]).update(ocpi_id="S-1", state="COMPLETED")
    answer = api.post(f"{LIST}{body['id']}/stop/", {}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (409, "partner_session_state")
    assert [c["command"] for c in cpo.cpo_commands] == ["START_SESSION"]


# --------------------------------------------------------------------------- tenants


def test_driver_of_tenant_b_cannot_start_on_tenant_a_partner_evse(
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    tenant_b: Tenant,
    key_client_for: Callable[..., APIClient],
) -> None:
    api_b = key_client_for(tenant_b, ["driver:write"])
    driver_b = driver_with_token(tenant_b)
    by_id = api_b.post(LIST, {"driver": driver_b.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    assert (by_id.status_code, by_id.json()["code"]) == (404, "partner_evse_not_found")
    by_uids = api_b.post(
        LIST,
        {"driver": driver_b.driver.pk, "partner": partner.pk, "location_id": "LOC-100", "evse_uid": "EVSE-100"},
        format="json",
    )
    assert (by_uids.status_code, list(by_uids.json()["fields"])) == (400, ["partner"])
    as_a = api_b.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    assert (as_a.status_code, list(as_a.json()["fields"])) == (400, ["driver"])
    _nothing_sent(cpo)


def test_tenant_b_cannot_see_or_stop_tenant_a_sessions(
    api: APIClient,
    cpo: CpoSimulator,
    evse: PartnerEvse,
    driven: Driven,
    tenant_b: Tenant,
    key_client_for: Callable[..., APIClient],
) -> None:
    body = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json").json()
    session = _wait_state(body["id"], "accepted")
    PartnerSession.objects.filter(pk=session.pk).update(ocpi_id="S-1", state="ACTIVE")
    api_b = key_client_for(tenant_b, ["driver:write"])
    assert api_b.get(f"{LIST}{session.pk}/").status_code == 404
    assert api_b.get(LIST).json()["results"] == []
    for action in ("stop", "unlock"):
        assert api_b.post(f"{LIST}{session.pk}/{action}/", {}, format="json").status_code == 404
    assert [c["command"] for c in cpo.cpo_commands] == ["START_SESSION"]
    assert PartnerSession.objects.get(pk=session.pk).state == "ACTIVE"


def test_read_scope_cannot_start(
    cpo: CpoSimulator, evse: PartnerEvse, driven: Driven, tenant_a: Tenant, key_client_for: Callable[..., APIClient]
) -> None:
    reader = key_client_for(tenant_a, ["driver:read"])
    answer = reader.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json")
    assert answer.status_code == 403
    _nothing_sent(cpo)


# --------------------------------------------------------------------------- reservations


def test_reserve_then_cancel(api: APIClient, cpo: CpoSimulator, evse: PartnerEvse, driven: Driven) -> None:
    until = (timezone.now() + dt.timedelta(minutes=30)).replace(microsecond=0)
    answer = api.post(
        RESERVATIONS,
        {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1", "expires_at": until.isoformat()},
        format="json",
    )
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["state"], body["reservation_expires_at"]) == ("reserving", until.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _wait_state(body["id"], "RESERVATION")
    assert api.get(f"{RESERVATIONS}{body['id']}/").json()["state"] == "RESERVATION"

    cancelled = api.post(f"{RESERVATIONS}{body['id']}/cancel/", {}, format="json")
    assert (cancelled.status_code, cancelled.json()["state"]) == (202, "cancel_requested")
    _wait_state(body["id"], "canceled")
    again = api.post(f"{RESERVATIONS}{body['id']}/cancel/", {}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "partner_session_state")
    assert [c["command"] for c in cpo.cpo_commands] == ["RESERVE_NOW", "CANCEL_RESERVATION"]


def test_reservation_in_the_past_is_400(api: APIClient, cpo: CpoSimulator, evse: PartnerEvse, driven: Driven) -> None:
    answer = api.post(
        RESERVATIONS,
        {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1", "expires_at": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert (answer.status_code, list(answer.json()["fields"])) == (400, ["expires_at"])
    _nothing_sent(cpo)


def test_a_session_is_not_a_reservation(api: APIClient, cpo: CpoSimulator, evse: PartnerEvse, driven: Driven) -> None:
    body = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json").json()
    assert api.get(f"{RESERVATIONS}{body['id']}/").status_code == 404
    assert api.post(f"{RESERVATIONS}{body['id']}/cancel/", {}, format="json").status_code == 404


# --------------------------------------------------------------------------- end to end over real HTTP


def test_end_to_end_start_and_stop(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, tenant_a: Tenant
) -> None:
    """The driver app calls our API on daphne; we POST START_SESSION to the CPO with our token and authorization
    reference; the CPO answers ACCEPTED and POSTs its CommandResult to our response_url: the session is accepted.
    The CPO's session PUT (our sessions Receiver) makes it ACTIVE with kWh and cost; stop goes the same way, and the
    CPO's PATCH completes it."""
    _, key = api_key_for(tenant_a, ["driver:write"])
    headers = {"Authorization": f"Api-Key {key}"}
    started = requests.post(
        f"{ocpi_base}{LIST}", json={"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, headers=headers, timeout=30
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["state"] == "requested"

    command = cpo.cpo_commands[0]
    assert command["command"] == "START_SESSION"
    assert command["body"]["token"] == token_object(driven.token, partner, issuer=partner.tenant.name)
    assert command["body"]["authorization_reference"] == body["authorization_reference"]
    uid = EmspCommand.objects.get(session_id=body["id"]).uid
    assert command["body"]["response_url"] == f"{ocpi_base}/ocpi/emsp/2.2.1/commands/START_SESSION/{uid}"

    def live() -> dict[str, Any]:
        return requests.get(f"{ocpi_base}{LIST}{body['id']}/", headers=headers, timeout=30).json()  # type: ignore[no-any-return]

    wait_until(lambda: live()["state"] == "accepted", timeout=60, what="accepted")
    assert cpo.result_answers[0]["answer"]["status_code"] == 1000

    # the CPO's session, PUT to our sessions Receiver: it lands on this row (matched by our authorization_reference)
    cpo_session = next(iter(cpo.cpo_sessions.values()))
    assert cpo_session["authorization_reference"] == body["authorization_reference"]
    path = f"/NL/CPO/{cpo_session['id']}"
    pushed = cpo.push("sessions", path, {**cpo_session, "status": "ACTIVE"}, "PUT")
    assert pushed["status_code"] == 1000, pushed
    patch = {"kwh": 7.25, "total_cost": {"excl_vat": 2.9, "incl_vat": 3.45}, "last_updated": _later(1)}
    assert cpo.push("sessions", path, patch, "PATCH")["status_code"] == 1000
    now = live()
    assert (now["state"], now["ocpi_id"], now["kwh"]) == ("ACTIVE", cpo_session["id"], 7.25)
    assert (now["currency"], now["total_cost_excl_vat"], now["total_cost_incl_vat"]) == ("EUR", "2.9000", "3.4500")
    assert (now["driver"], now["token_uid"]) == (driven.driver.pk, driven.token.uid)

    stopped = requests.post(f"{ocpi_base}{LIST}{body['id']}/stop/", json={}, headers=headers, timeout=30)
    assert (stopped.status_code, stopped.json()["state"]) == (202, "stop_requested")
    assert cpo.cpo_commands[1]["command"] == "STOP_SESSION"
    assert cpo.cpo_commands[1]["body"]["session_id"] == cpo_session["id"]
    wait_until(lambda: live()["state"] == "stop_accepted", timeout=60, what="stop accepted")
    assert [c["command"] for c in live()["commands"]] == ["STOP_SESSION", "START_SESSION"]
    ended = {"status": "COMPLETED", "end_date_time": _later(2), "kwh": 9.5, "last_updated": _later(2)}
    assert cpo.push("sessions", path, ended, "PATCH")["status_code"] == 1000
    assert (live()["state"], live()["kwh"]) == ("COMPLETED", 9.5)


def test_unlock(api: APIClient, cpo: CpoSimulator, evse: PartnerEvse, driven: Driven) -> None:
    body = api.post(LIST, {"driver": driven.driver.pk, "evse_id": "NL*CPO*E100*1"}, format="json").json()
    _wait_state(body["id"], "accepted")
    cpo.command_plans["UNLOCK_CONNECTOR"] = {"result": "FAILED", "message": "Cable stuck"}
    answer = api.post(f"{LIST}{body['id']}/unlock/", {}, format="json")
    assert answer.status_code == 202
    wait_until(
        lambda: PartnerSession.objects.get(pk=body["id"]).state_reason == "UNLOCK_CONNECTOR FAILED: Cable stuck",
        timeout=60,
        what="unlock result",
    )
    assert PartnerSession.objects.get(pk=body["id"]).state == "accepted"
    assert cpo.cpo_commands[1]["body"] == {
        "response_url": cpo.cpo_commands[1]["body"]["response_url"],
        "location_id": "LOC-100",
        "evse_uid": "EVSE-100",
        "connector_id": "1",
    }
