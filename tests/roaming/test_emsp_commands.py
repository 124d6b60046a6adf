"""Commands Sender (we are eMSP; apps/roaming/ocpi/emsp_commands.py) against the simulated CPO over real HTTP: the
bodies we POST, every CommandResponse and CommandResult and the partner session state each gives, timeouts,
duplicates, unknown uids, malformed results and failed calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.utils import timezone

from apps.core.errors import Conflict
from apps.roaming import tasks
from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import EmspCommand, PartnerStatus, RoamingPartner
from apps.roaming.ocpi import emsp_commands
from apps.roaming.ocpi.emsp_tokens import token_object
from apps.sessions.models import PartnerSession
from apps.stations.models import PartnerEvse
from apps.tenants.models import Tenant
from tests.roaming import ocpi_rules
from tests.roaming.conftest import wait_until
from tests.roaming.emsp_commands_rig import Driven, driver_with_token, partner_evse, register_cpo


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


def _start(driven: Driven, evse: PartnerEvse, base: str) -> PartnerSession:
    return emsp_commands.session_start(
        driver=driven.driver, evse=evse, connector_id=None, token_uid=None, base_url=base
    )


def _state(session: PartnerSession) -> PartnerSession:
    session.refresh_from_db()
    return session


def _done(session: PartnerSession, command: str = "START_SESSION") -> EmspCommand:
    return wait_until(
        lambda: EmspCommand.objects.filter(session=session, command=command, state="done").first(),
        timeout=60,
        what=f"{command} done",
    )


def _active(session: PartnerSession, ocpi_id: str = "SESSION-1") -> None:
    """What the CPO's session PUT does to the row (the receivers slice's service writes it): it is running."""
    PartnerSession.objects.filter(pk=session.pk).update(ocpi_id=ocpi_id, state="ACTIVE")


# --------------------------------------------------------------------------- what we send


def test_start_session_body(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    cpo.command_plans["START_SESSION"] = {"result": None}
    session = _start(driven, evse, ocpi_base)

    assert session.state == "requested"
    assert len(cpo.cpo_commands) == 1
    sent = cpo.cpo_commands[0]
    body = sent["body"]
    row = EmspCommand.objects.get(session=session)
    assert sent["command"] == "START_SESSION"
    assert body == {
        "response_url": f"{ocpi_base}/ocpi/emsp/2.2.1/commands/START_SESSION/{row.uid}",
        "token": token_object(driven.token, partner, issuer=partner.tenant.name),
        "location_id": "LOC-100",
        "evse_uid": "EVSE-100",
        "connector_id": "1",
        "authorization_reference": session.authorization_reference,
    }
    assert body["token"]["uid"] == driven.token.uid
    assert (body["token"]["country_code"], body["token"]["party_id"]) == ("DE", "ALP")  # our party towards them
    assert body["token"]["valid"] is True
    assert ocpi_rules.check("mod_commands_startsession_object", body) == []
    assert ocpi_rules.check("mod_tokens_token_object", body["token"]) == []
    headers = next(r.headers for r in cpo.received if r.path.endswith("/commands/START_SESSION"))
    assert (headers["OCPI-from-country-code"], headers["OCPI-from-party-id"]) == ("DE", "ALP")
    assert (headers["OCPI-to-country-code"], headers["OCPI-to-party-id"]) == ("NL", "CPO")
    assert row.state == "pending"
    assert row.deadline > timezone.now() + dt.timedelta(seconds=30)  # the CPO's 30 s + our margin
    assert (session.driver_id, session.token_id, session.location_id) == (
        driven.driver.pk,
        driven.token.pk,
        evse.location_id,
    )
    assert (session.country_code, session.party_id, session.evse_uid, session.connector_id) == (
        "NL",
        "CPO",
        "EVSE-100",
        "1",
    )


def test_other_command_bodies(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    until = timezone.now() + dt.timedelta(minutes=20)
    reservation = emsp_commands.reservation_create(
        driver=driven.driver, evse=evse, expires_at=until, token_uid=driven.token.uid, base_url=ocpi_base
    )
    assert _done(reservation, "RESERVE_NOW").result == "ACCEPTED"
    emsp_commands.reservation_cancel(session=_state(reservation), base_url=ocpi_base)
    session = _start(driven, evse, ocpi_base)
    _active(session)
    emsp_commands.session_stop(session=_state(session), base_url=ocpi_base)
    emsp_commands.connector_unlock(session=_state(session), base_url=ocpi_base)

    bodies = {c["command"]: {k: v for k, v in c["body"].items() if k != "response_url"} for c in cpo.cpo_commands}
    assert bodies["RESERVE_NOW"] == {
        "token": token_object(driven.token, partner, issuer=partner.tenant.name),
        "expiry_date": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reservation_id": reservation.authorization_reference,
        "location_id": "LOC-100",
        "evse_uid": "EVSE-100",
        "authorization_reference": reservation.authorization_reference,
    }
    assert bodies["CANCEL_RESERVATION"] == {"reservation_id": reservation.authorization_reference}
    assert bodies["STOP_SESSION"] == {"session_id": "SESSION-1"}
    assert bodies["UNLOCK_CONNECTOR"] == {"location_id": "LOC-100", "evse_uid": "EVSE-100", "connector_id": "1"}
    for command in cpo.cpo_commands:
        anchor = f"mod_commands_{command['command'].lower().replace('_', '')}_object"
        assert ocpi_rules.check(anchor, command["body"]) == [], command
        assert command["body"]["response_url"].startswith(f"{ocpi_base}/ocpi/emsp/2.2.1/commands/{command['command']}/")


def test_version_details_list_our_commands_sender(ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner) -> None:
    answer = cpo.call("GET", f"{ocpi_base}/ocpi/2.2.1").json()
    endpoints = {(e["identifier"], e["role"]): e["url"] for e in answer["data"]["endpoints"]}
    assert endpoints[("commands", "SENDER")] == f"{ocpi_base}/ocpi/emsp/2.2.1/commands"


# --------------------------------------------------------------------------- the synchronous CommandResponse


@pytest.mark.parametrize(
    ("response", "state"),
    [("NOT_SUPPORTED", "not_supported"), ("REJECTED", "rejected"), ("UNKNOWN_SESSION", "failed")],
)
def test_start_refused_at_once(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    response: str,
    state: str,
) -> None:
    cpo.command_plans["START_SESSION"] = {"response": response, "message": "No remote start here"}
    session = _start(driven, evse, ocpi_base)

    assert session.state == state
    assert session.state_reason == f"START_SESSION {response}: No remote start here"
    row = EmspCommand.objects.get(session=session)
    assert (row.state, row.result, row.message) == ("done", response, "No remote start here")
    assert row.response["result"] == response
    assert cpo.result_answers == []


# --------------------------------------------------------------------------- the asynchronous CommandResult


START_RESULTS = [
    ("ACCEPTED", "accepted"),
    ("CANCELED_RESERVATION", "failed"),
    ("EVSE_OCCUPIED", "evse_occupied"),
    ("EVSE_INOPERATIVE", "evse_inoperative"),
    ("FAILED", "failed"),
    ("NOT_SUPPORTED", "not_supported"),
    ("REJECTED", "rejected"),
    ("TIMEOUT", "timeout"),
    ("UNKNOWN_RESERVATION", "failed"),
]


@pytest.mark.parametrize(("result", "state"), START_RESULTS)
def test_start_session_results(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    result: str,
    state: str,
) -> None:
    cpo.command_plans["START_SESSION"] = {"result": result, "message": f"charger says {result.lower()}"}
    session = _start(driven, evse, ocpi_base)
    row = _done(session)

    assert (row.result, row.result_body) == (
        result,
        {"result": result, "message": [{"language": "en", "text": f"charger says {result.lower()}"}]},
    )
    assert _state(session).state == state
    assert session.state_reason == f"START_SESSION {result}: charger says {result.lower()}"
    assert cpo.result_answers[0]["answer"]["status_code"] == 1000


@pytest.mark.parametrize(
    ("result", "state"),
    [
        (r, "RESERVATION" if r == "ACCEPTED" else ("canceled" if r == "CANCELED_RESERVATION" else s))
        for r, s in START_RESULTS
    ],
)
def test_reserve_now_results(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    result: str,
    state: str,
) -> None:
    cpo.command_plans["RESERVE_NOW"] = {"result": result}
    session = emsp_commands.reservation_create(
        driver=driven.driver,
        evse=evse,
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        token_uid=None,
        base_url=ocpi_base,
    )
    assert session.state == "reserving"
    _done(session, "RESERVE_NOW")
    assert _state(session).state == state
    assert session.state_reason == f"RESERVE_NOW {result}"


@pytest.mark.parametrize(
    ("response", "result", "state"),
    [
        ("ACCEPTED", "ACCEPTED", "stop_accepted"),
        ("ACCEPTED", "REJECTED", "ACTIVE"),
        ("ACCEPTED", "FAILED", "ACTIVE"),
        ("ACCEPTED", "TIMEOUT", "ACTIVE"),
        ("UNKNOWN_SESSION", None, "ACTIVE"),
        ("REJECTED", None, "ACTIVE"),
    ],
)
def test_stop_session_results(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    response: str,
    result: str | None,
    state: str,
) -> None:
    session = _start(driven, evse, ocpi_base)
    _done(session)
    _active(session)
    cpo.command_plans["STOP_SESSION"] = {"response": response, "result": result, "message": "from the CPO"}
    stopped = emsp_commands.session_stop(session=_state(session), base_url=ocpi_base)
    if response == "ACCEPTED":
        assert stopped.state == "stop_requested"
    _done(session, "STOP_SESSION")

    assert _state(session).state == state  # a refused stop leaves the session running, with the reason
    assert session.state_reason == f"STOP_SESSION {result or response}: from the CPO"


@pytest.mark.parametrize(
    ("result", "state"),
    [
        ("ACCEPTED", "canceled"),
        ("CANCELED_RESERVATION", "canceled"),
        ("UNKNOWN_RESERVATION", "canceled"),
        ("REJECTED", "RESERVATION"),
        ("FAILED", "RESERVATION"),
    ],
)
def test_cancel_reservation_results(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    result: str,
    state: str,
) -> None:
    reservation = emsp_commands.reservation_create(
        driver=driven.driver,
        evse=evse,
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        token_uid=None,
        base_url=ocpi_base,
    )
    _done(reservation, "RESERVE_NOW")
    cpo.command_plans["CANCEL_RESERVATION"] = {"result": result}
    assert emsp_commands.reservation_cancel(session=_state(reservation), base_url=ocpi_base).state == "cancel_requested"
    _done(reservation, "CANCEL_RESERVATION")
    assert _state(reservation).state == state


@pytest.mark.parametrize("result", ["ACCEPTED", "FAILED", "NOT_SUPPORTED"])
def test_unlock_connector_leaves_the_state(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, result: str
) -> None:
    session = _start(driven, evse, ocpi_base)
    _done(session)
    PartnerSession.objects.filter(pk=session.pk).update(state="COMPLETED", ocpi_id="S-9")
    cpo.command_plans["UNLOCK_CONNECTOR"] = {"result": result}
    emsp_commands.connector_unlock(session=_state(session), base_url=ocpi_base)
    row = _done(session, "UNLOCK_CONNECTOR")
    assert row.result == result
    assert (_state(session).state, session.state_reason) == ("COMPLETED", f"UNLOCK_CONNECTOR {result}")


def test_a_result_never_undoes_the_cpo_session(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    """The CPO's session PUT (ACTIVE) came before the START_SESSION result: ACCEPTED leaves it ACTIVE."""
    cpo.command_plans["START_SESSION"] = {"result": None}
    session = _start(driven, evse, ocpi_base)
    _active(session)
    row = EmspCommand.objects.get(session=session)
    answer = cpo.call("POST", row.request["response_url"], {"result": "ACCEPTED"}).json()
    assert answer["status_code"] == 1000
    assert _state(session).state == "ACTIVE"
    row.refresh_from_db()
    assert (row.state, row.result) == ("done", "ACCEPTED")


# --------------------------------------------------------------------------- timeouts


def test_no_result_in_time_is_timeout_and_a_late_result_is_taken(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, settings: Any
) -> None:
    settings.OCPI_COMMAND_RESULT_MARGIN = 5
    cpo.command_plans["START_SESSION"] = {"result": None, "timeout": 10}
    session = _start(driven, evse, ocpi_base)
    row = EmspCommand.objects.get(session=session)
    assert row.deadline <= timezone.now() + dt.timedelta(seconds=15)

    assert emsp_commands.commands_expire(now=timezone.now() + dt.timedelta(seconds=5)) == 0  # not yet
    assert _state(session).state == "requested"
    assert emsp_commands.commands_expire(now=timezone.now() + dt.timedelta(seconds=16)) == 1
    assert (_state(session).state, session.state_reason) == (
        "timeout",
        "START_SESSION TIMEOUT: No result from the operator within its timeout.",
    )
    assert tasks.emsp_commands_expire() == 0  # the beat task: nothing left; a second run changes nothing

    answer = cpo.call("POST", row.request["response_url"], {"result": "ACCEPTED"}).json()  # late, but true
    assert answer["status_code"] == 1000
    assert _state(session).state == "accepted"


def test_expire_task_only_expires_after_the_deadline(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, settings: Any
) -> None:
    settings.OCPI_COMMAND_RESULT_MARGIN = 0
    cpo.command_plans["START_SESSION"] = {"result": None, "timeout": 0}
    session = _start(driven, evse, ocpi_base)
    row = EmspCommand.objects.get(session=session)
    assert tasks.emsp_command_expire(row.pk) == "TIMEOUT"  # the countdown task, due now
    assert _state(session).state == "timeout"

    cpo.command_plans["START_SESSION"] = {"result": None, "timeout": 600}
    later = _start(driven, evse, ocpi_base)
    early = EmspCommand.objects.get(session=later)
    assert tasks.emsp_command_expire(early.pk) == ""  # woke early (deadline moved): nothing happens
    assert _state(later).state == "requested"


def test_countdown_task_in_a_real_worker_times_out(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    settings: Any,
    celery_worker: str,
) -> None:
    """The CPO accepts and never answers: the task queued on commit (a Celery worker on its own queue) times the
    command out once its deadline (the CPO's timeout + our margin) has passed."""
    settings.OCPI_COMMAND_RESULT_MARGIN = 1
    cpo.command_plans["START_SESSION"] = {"result": None, "timeout": 1}
    session = _start(driven, evse, ocpi_base)
    assert session.state == "requested"
    wait_until(lambda: _state(session).state == "timeout", timeout=90, what="timeout by the worker")
    row = EmspCommand.objects.get(session=session)
    assert (row.state, row.result, row.result_body) == ("done", "TIMEOUT", None)


# --------------------------------------------------------------------------- our response_url: bad, unknown, duplicate


def _pending(
    ocpi_base: str, cpo: CpoSimulator, driven: Driven, evse: PartnerEvse
) -> tuple[PartnerSession, EmspCommand]:
    cpo.command_plans["START_SESSION"] = {"result": None}
    session = _start(driven, evse, ocpi_base)
    return session, EmspCommand.objects.get(session=session)


def test_duplicate_result_changes_nothing(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    session, row = _pending(ocpi_base, cpo, driven, evse)
    url = row.request["response_url"]
    assert cpo.call("POST", url, {"result": "ACCEPTED"}).json()["status_code"] == 1000
    done = EmspCommand.objects.get(pk=row.pk)
    for again in ({"result": "ACCEPTED"}, {"result": "REJECTED", "message": [{"language": "en", "text": "no"}]}):
        answer = cpo.call("POST", url, again)
        assert (answer.status_code, answer.json()["status_code"]) == (200, 1000)
    after = EmspCommand.objects.get(pk=row.pk)
    assert (after.result, after.result_body, after.updated_at) == ("ACCEPTED", {"result": "ACCEPTED"}, done.updated_at)
    assert _state(session).state == "accepted"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "ACCEPTED",
        {},
        {"result": "MAYBE"},
        {"result": "accepted"},
        {"result": None},
        {"result": "ACCEPTED", "message": "text, not DisplayText"},
        {"result": "ACCEPTED", "message": [{"language": "en"}]},
        {"result": "ACCEPTED", "message": [{"language": "english", "text": "x"}]},
    ],
)
def test_malformed_result_is_2001_and_changes_nothing(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, body: Any
) -> None:
    session, row = _pending(ocpi_base, cpo, driven, evse)
    answer = cpo.call("POST", row.request["response_url"], body)
    assert answer.status_code == 200
    assert answer.json()["status_code"] == 2001
    assert "CommandResult" in answer.json()["status_message"]
    after = EmspCommand.objects.get(pk=row.pk)
    assert (after.state, after.result, after.result_body) == ("pending", "", None)
    assert _state(session).state == "requested"


def test_result_not_json_is_http_400(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    _session, row = _pending(ocpi_base, cpo, driven, evse)
    answer = requests.post(
        row.request["response_url"],
        data=b"{not json",
        headers={"Authorization": cpo.auth_header(cpo.client_token), "Content-Type": "application/json"},
        timeout=15,
    )
    assert (answer.status_code, answer.json()["status_code"]) == (400, 2001)
    assert EmspCommand.objects.get(pk=row.pk).state == "pending"


def test_unknown_uid_is_2003_404(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    session, row = _pending(ocpi_base, cpo, driven, evse)
    for url in (
        f"{ocpi_base}/ocpi/emsp/2.2.1/commands/START_SESSION/{'0' * 32}",
        f"{ocpi_base}/ocpi/emsp/2.2.1/commands/STOP_SESSION/{row.uid}",  # the uid of another command type
    ):
        answer = cpo.call("POST", url, {"result": "ACCEPTED"})
        assert (answer.status_code, answer.json()["status_code"]) == (404, 2003), url
    assert EmspCommand.objects.get(pk=row.pk).state == "pending"
    assert _state(session).state == "requested"


def test_another_partner_cannot_post_our_result(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven, tenant_b: Tenant
) -> None:
    """A CPO registered with tenant B learns tenant A's response_url: 2003/404, nothing changes."""
    session, row = _pending(ocpi_base, cpo, driven, evse)
    other = CpoSimulator(country_code="NL", party_id="CPO").start()
    try:
        register_cpo(ocpi_base, other, tenant_b)
        answer = other.call("POST", row.request["response_url"], {"result": "REJECTED"})
    finally:
        other.stop()
    assert (answer.status_code, answer.json()["status_code"]) == (404, 2003)
    assert EmspCommand.objects.get(pk=row.pk).state == "pending"
    assert _state(session).state == "requested"


# --------------------------------------------------------------------------- failed calls, unusable partners


@pytest.mark.parametrize(("fail_status", "text"), [(503, "HTTP 503"), (200, "OCPI status 3000")])
def test_failed_call_is_a_failed_state(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    fail_status: int,
    text: str,
) -> None:
    cpo.fail_status = fail_status
    session = _start(driven, evse, ocpi_base)
    assert session.state == "failed"
    assert session.state_reason.startswith("START_SESSION ERROR: POST ")
    assert text in session.state_reason
    row = EmspCommand.objects.get(session=session)
    assert (row.state, row.result) == ("done", "ERROR")
    partner.refresh_from_db()
    assert text in partner.last_errors["commands"]["message"]


def test_unreachable_cpo_is_a_failed_state(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    cpo.stop()
    session = _start(driven, evse, ocpi_base)
    assert session.state == "failed"
    assert "ConnectionError" in session.state_reason


def test_not_a_command_response_is_a_failed_state(
    ocpi_base: str, cpo: CpoSimulator, partner: RoamingPartner, evse: PartnerEvse, driven: Driven
) -> None:
    cpo.command_plans["START_SESSION"] = {"response": "SURE"}
    session = _start(driven, evse, ocpi_base)
    assert session.state == "failed"
    assert "not a CommandResponse: data.result: 'SURE' is not one of" in session.state_reason


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"status": PartnerStatus.SUSPENDED}, "suspended, not registered"),
        ({"status": PartnerStatus.PENDING}, "not registered"),
        ({"our_roles": ["CPO"]}, "we are not eMSP"),
        ({"enabled_modules": ["locations"]}, "commands module is not enabled"),
        ({"endpoints": []}, "has no commands endpoint"),
    ],
)
def test_partner_we_cannot_command(
    ocpi_base: str,
    cpo: CpoSimulator,
    partner: RoamingPartner,
    evse: PartnerEvse,
    driven: Driven,
    change: dict[str, Any],
    text: str,
) -> None:
    RoamingPartner.objects.filter(pk=partner.pk).update(**change)
    evse.location.partner.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        _start(driven, evse, ocpi_base)
    assert refused.value.code == "partner_unavailable"
    assert text in refused.value.message
    assert PartnerSession.objects.count() == 0
    assert cpo.cpo_commands == []


# --------------------------------------------------------------------------- our Token object


def test_token_object_of_a_bare_token_passes_the_spec(partner: RoamingPartner, tenant_a: Tenant) -> None:
    """A token with no eMAID, issuer or visual number still makes a complete Token (its uid as contract id, as the
    tokens Sender publishes it: the token in START_SESSION is the one the CPO was pushed)."""
    bare = driver_with_token(tenant_a, contract_id="", issuer="", uid="APP-0001", type="APP_USER").token
    body = token_object(bare, partner, issuer=partner.tenant.name)
    assert (body["contract_id"], body["issuer"], body["type"]) == ("APP-0001", tenant_a.name, "APP_USER")
    assert ocpi_rules.check("mod_tokens_token_object", body) == []
    bare.blocked = True
    bare.save()
    assert (
        token_object(bare, partner, issuer=partner.tenant.name)["valid"] is False
    )  # what our chargers would refuse, the CPO is told so
