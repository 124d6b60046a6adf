"""A roaming partner's drivers on our chargers, over real HTTP and real OCPP: the partner simulator as the eMSP, a
simulated OCPP 1.6 charger under daphne, and a real Celery worker for the asynchronous command results.

- tokens: a pushed token authorizes at the charger; an unknown one is authorized in real time at the eMSP (with the
  LocationReferences); whitelist types decide when the eMSP cannot be reached; the session carries the partner.
- commands: START_SESSION reaches the charger and the CommandResult arrives at the partner's response_url;
  STOP_SESSION; a charger that does not answer gives TIMEOUT; refusals are answered at once and record nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apps.core import outbox
from apps.customers import services as customer_services
from apps.customers.models import Token
from apps.reports import services as report_services
from apps.roaming.models import RoamingCommand, RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import Command
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.factories import registered

pytestmark = pytest.mark.slow


@pytest.fixture
def partner(ocpi_base: str, sim: PartnerSimulator, site: Site) -> RoamingPartner:
    return registered(ocpi_base, sim, site.tenant)


def completed(uid: str) -> ChargingSession | None:
    return ChargingSession.objects.filter(id_tag=uid, status=SessionStatus.COMPLETED).first()


# --------------------------------------------------------------------------- tokens at the charger


def test_a_pushed_token_charges_on_the_simulated_charger_as_the_partners_driver(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    charger: Callable[..., ChargerThread],
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.REPORTS_EXPORT_DIR = tmp_path
    assert sim.push_token(sim.token_object("SIMCARD01", whitelist="ALWAYS"))["status_code"] == 1000

    sim_charger = charger(connectors=1, id_tags=["SIMCARD01"], idle_seconds=(0.2, 0.4), session_seconds=(1.0, 1.0))
    session = wait_until(lambda: completed("SIMCARD01"), what="a completed session of SIMCARD01")
    outbox.deliver_pending(wait=True)  # no worker here: the stop's SessionStopped (pricing, CDR), then SessionEnded
    session.refresh_from_db()

    assert session.auth_status == "Accepted"
    assert session.roaming_partner == "NL*SIM"
    assert session.token == Token.objects.get(uid="SIMCARD01")
    assert session.cdr_ocpi_id  # priced and CDR'd through the same completion path as our own drivers
    assert any(s.status == "Accepted" for s in sim_charger.stats.sessions.values())
    # ALWAYS: decided from the pushed token, the eMSP was not asked
    assert not [r for r in sim.received if r.path.endswith("/authorize")]
    # and the partner filter of the session exports finds it (and the own network's filter does not)
    assert exported(site, ["NL*SIM"], tmp_path) == {session.pk: "NL*SIM"}
    assert exported(site, ["-"], tmp_path) == {}


def exported(site: Site, partners: list[str], folder: Path) -> dict[int, str]:
    """Session id -> Roaming partner column of a CSV session export with this partner filter."""
    report_services.session_lines_render()
    job = report_services.export_job_create(
        tenant=site.tenant, requested_by=None, personal_data=False, roaming_partners=partners
    )
    done = report_services.export_job_run(job_id=job.pk)
    assert done is not None
    assert done.status == "done", done.error
    text = (folder / done.file_name).read_text(encoding="utf-8-sig")
    return {int(r["Session id"]): r["Roaming partner"] for r in csv.DictReader(io.StringIO(text))}


def test_an_unknown_token_is_authorized_in_real_time_at_the_emsp(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    sim.authorizations["RTCARD01"] = {"allowed": "ALLOWED", "token": sim.token_object("RTCARD01", whitelist="NEVER")}

    charger(connectors=1, id_tags=["RTCARD01"], idle_seconds=(0.2, 0.4), session_seconds=(1.0, 1.0))
    session = wait_until(lambda: completed("RTCARD01"), what="a completed session of RTCARD01")

    assert session.auth_status == "Accepted"
    assert session.roaming_partner == "NL*SIM"
    asked = [r for r in sim.received if r.path.startswith("/ocpi/emsp/2.2.1/tokens/RTCARD01/authorize")]
    assert asked
    assert asked[0].method == "POST"
    assert asked[0].path.endswith("?type=RFID")
    assert asked[0].body == {"location_id": "LOC-1"}
    assert asked[0].headers["OCPI-to-party-id"] == "SIM"
    cached = Token.objects.get(uid="RTCARD01")
    assert (cached.country_code, cached.party_id, cached.whitelist) == ("NL", "SIM", "NEVER")


def test_a_token_the_emsp_refuses_in_real_time_does_not_charge(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    sim.authorizations["BLOCKED1"] = {"allowed": "BLOCKED", "token": sim.token_object("BLOCKED1", valid=False)}

    sim_charger = charger(connectors=1, id_tags=["BLOCKED1"], idle_seconds=(0.2, 0.4), session_seconds=(1.0, 1.0))
    wait_until(lambda: sim_charger.stats.sessions, what="a StartTransaction answered")

    assert {s.status for s in sim_charger.stats.sessions.values()} == {"Blocked"}


@pytest.mark.parametrize(
    ("whitelist", "partner_up", "status", "reason", "asked"),
    [
        ("ALWAYS", False, "Accepted", "accepted", False),
        ("ALLOWED", False, "Accepted", "accepted", False),
        ("ALLOWED_OFFLINE", False, "Accepted", "accepted", True),
        ("ALLOWED_OFFLINE", True, "Blocked", "roaming:blocked", True),
        ("NEVER", False, "Invalid", "roaming_no_answer", True),
        ("NEVER", True, "Blocked", "roaming:blocked", True),
    ],
)
def test_whitelist_types_decide_when_the_emsp_is_unreachable(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    whitelist: str,
    partner_up: bool,
    status: str,
    reason: str,
    asked: bool,
) -> None:
    assert sim.push_token(sim.token_object("WLCARD01", whitelist=whitelist))["status_code"] == 1000
    sim.authorizations["WLCARD01"] = {"allowed": "BLOCKED", "token": sim.token_object("WLCARD01", whitelist=whitelist)}
    if not partner_up:
        sim.stop()
    before = len(sim.received)

    result = customer_services.token_authorize(tenant=site.tenant, id_tag="WLCARD01", location_id=site.location.pk)

    assert (result.status, result.reason) == (status, reason)
    if partner_up:
        assert (len(sim.received) > before) == asked
    else:
        partner.refresh_from_db()
        assert ("tokens" in partner.last_errors) == asked


# --------------------------------------------------------------------------- commands


def start_session(sim: PartnerSimulator, uid: str, **fields: Any) -> tuple[dict[str, Any], str]:
    body = {"token": sim.token_object(uid, type="APP_USER", whitelist="NEVER"), "location_id": "LOC-1", **fields}
    return sim.send_command("START_SESSION", body)


def test_start_session_reaches_the_charger_and_the_result_arrives_then_stop_session(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
) -> None:
    sim_charger = charger(session_seconds=(120.0, 120.0))
    evse = site.evses[1]

    answer, response_url = start_session(sim, "app-user-7f3a9c", evse_uid=str(evse.pk), connector_id="1")

    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    assert answer["data"]["result"] == "ACCEPTED"
    assert answer["data"]["timeout"] >= 30
    assert sim.wait_result(response_url, timeout=90) == {"result": "ACCEPTED"}
    command = Command.objects.get(action="RemoteStartTransaction")
    assert command.payload == {"idTag": "app-user-7f3a9c", "connectorId": 2}
    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag="app-user-7f3a9c", status=SessionStatus.ACTIVE).first(),
        what="the started session",
    )
    assert (session.roaming_partner, session.auth_method, session.connector_id) == ("NL*SIM", "COMMAND", 2)
    # the token came with the command: the charger's StartTransaction did not ask the eMSP again (15 minutes)
    assert not [r for r in sim.received if r.path.endswith("/authorize")]
    row = RoamingCommand.objects.get(command="START_SESSION")
    assert (row.state, row.ocpp_command_id, row.partner_id) == ("delivered", command.pk, partner.pk)
    posted = [r for r in sim.received if r.path == sim.result_path(response_url)]
    assert posted[0].headers["OCPI-from-party-id"] == "ALP"

    stop, stop_url = sim.send_command("STOP_SESSION", {"session_id": str(session.pk)})

    assert stop["data"]["result"] == "ACCEPTED", stop
    assert sim.wait_result(stop_url, timeout=90) == {"result": "ACCEPTED"}
    wait_until(lambda: completed("app-user-7f3a9c"), what="the stopped session")
    assert sim_charger.stats.sessions


def test_a_charger_that_does_not_answer_gives_timeout(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
    settings: Any,
) -> None:
    settings.OCPI_COMMAND_TIMEOUT = 2
    charger(unanswered=("RemoteStartTransaction",))

    answer, response_url = start_session(sim, "app-user-timeout", evse_uid="DE*ALP*E1*1")

    assert answer["data"] == {"result": "ACCEPTED", "timeout": answer["data"]["timeout"]}
    result = sim.wait_result(response_url, timeout=60)
    assert result["result"] == "TIMEOUT"
    assert "did not answer RemoteStartTransaction in time" in result["message"][0]["text"]
    assert Command.objects.get(action="RemoteStartTransaction").status == "timeout"
    assert not ChargingSession.objects.exists()


def test_unlock_connector_and_a_reservation_cancelled(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
) -> None:
    charger()
    evse = site.evses[0]

    unlock, unlock_url = sim.send_command(
        "UNLOCK_CONNECTOR", {"location_id": "LOC-1", "evse_uid": str(evse.pk), "connector_id": "1"}
    )
    reserve, reserve_url = sim.send_command(
        "RESERVE_NOW",
        {
            "token": sim.token_object("RESCARD1"),
            "expiry_date": "2099-01-01T00:00:00Z",
            "reservation_id": "sim-res-1",
            "location_id": "LOC-1",
            "evse_uid": str(evse.pk),
        },
    )

    assert (unlock["data"]["result"], reserve["data"]["result"]) == ("ACCEPTED", "ACCEPTED")
    assert sim.wait_result(unlock_url) == {"result": "ACCEPTED"}
    assert sim.wait_result(reserve_url) == {"result": "ACCEPTED"}
    reserve_now = Command.objects.get(action="ReserveNow")
    assert reserve_now.payload["connectorId"] == 1
    assert reserve_now.payload["reservationId"] != "sim-res-1"  # our id goes to the charger, never theirs

    cancel, cancel_url = sim.send_command("CANCEL_RESERVATION", {"reservation_id": "sim-res-1"})

    assert cancel["data"]["result"] == "ACCEPTED"
    assert sim.wait_result(cancel_url) == {"result": "CANCELED_RESERVATION"}


@pytest.mark.parametrize(
    ("command", "body", "status_code", "result", "message"),
    [
        ("START_SESSION", {"location_id": "NOWHERE"}, 2003, None, "Unknown location 'NOWHERE'"),
        ("START_SESSION", {"location_id": "LOC-1", "evse_uid": "999999"}, 2003, None, "has no EVSE '999999'"),
        ("START_SESSION", {"location_id": "LOC-1", "connector_id": "1"}, 2001, None, "evse_uid: is required"),
        ("START_SESSION", {"location_id": "LOC-1", "token": {"uid": "x"}}, 2001, None, "token.country_code: is"),
        ("START_SESSION", {"location_id": "LOC-1", "response_url": "ftp://x"}, 2001, None, "not an absolute http"),
        ("STOP_SESSION", {"session_id": "123456"}, 1000, "UNKNOWN_SESSION", "Unknown session '123456'"),
        ("CANCEL_RESERVATION", {"reservation_id": "nope"}, 1000, "REJECTED", "no reservation 'nope'"),
        ("UNLOCK_CONNECTOR", {"location_id": "LOC-1"}, 2001, None, "unlock_connector.connector_id: is required"),
        ("STOP_CHARGING", {}, 2001, None, "'STOP_CHARGING' is not one of"),
    ],
)
def test_refused_commands_are_answered_at_once_and_record_nothing(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    command: str,
    body: dict[str, Any],
    status_code: int,
    result: str | None,
    message: str,
) -> None:
    if command == "START_SESSION":
        body = {"token": sim.token_object("CARD-X"), **body}

    answer, _ = sim.send_command(command, body)

    assert answer["status_code"] == status_code, answer
    text = answer["data"]["message"][0]["text"] if result else answer["status_message"]
    assert message in text
    if result:
        assert answer["data"]["result"] == result
    assert not RoamingCommand.objects.exists()
    assert not Command.objects.exists()


def test_a_token_of_another_emsp_and_an_offline_charger_are_rejected(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site
) -> None:
    foreign = {**sim.token_object("CARD-Y"), "party_id": "OTH"}
    Token.objects.create(tenant=site.tenant, uid="OWN-CARD-1", contract_id="DE-ALP-1")
    ours, _ = sim.send_command(
        "START_SESSION", {"token": sim.token_object("own-card-1"), "location_id": "LOC-1", "evse_uid": "DE*ALP*E1*1"}
    )
    assert ours["data"]["result"] == "REJECTED"
    assert "another issuer's here" in ours["data"]["message"][0]["text"]

    other, _ = sim.send_command("START_SESSION", {"token": foreign, "location_id": "LOC-1", "evse_uid": "DE*ALP*E1*1"})
    offline, _ = sim.send_command(
        "START_SESSION", {"token": sim.token_object("CARD-Y"), "location_id": "LOC-1", "evse_uid": "DE*ALP*E1*1"}
    )

    assert other["data"]["result"] == "REJECTED"
    assert "NL*OTH" in other["data"]["message"][0]["text"]
    assert offline["data"]["result"] == "REJECTED"
    assert "offline" in offline["data"]["message"][0]["text"]
    assert not RoamingCommand.objects.exists()


def test_a_result_the_partner_cannot_take_is_kept_and_delivered_later(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site
) -> None:
    """command_deliver raises while the partner is unreachable (the task retries with backoff), keeps the result and
    the error, delivers it once they answer again, and a given-up result is marked undelivered."""
    from apps.roaming import commands
    from apps.roaming.ocpi.client import PartnerCallError

    dead = "http://127.0.0.1:9/ocpi/emsp/2.2.1/results/START_SESSION/1"  # nothing listens on the discard port
    row = commands.command_accept(
        partner=partner, command="START_SESSION", request={}, response_url=dead, charge_point=site.charge_point
    )
    commands.command_execute(
        roaming_command_id=row.pk, runners={"START_SESSION": lambda r: commands.Result("REJECTED")}
    )

    with pytest.raises(PartnerCallError):
        commands.command_deliver(roaming_command_id=row.pk)

    row.refresh_from_db()
    assert (row.state, row.attempts, row.result) == ("answered", 1, {"result": "REJECTED"})
    assert row.last_error
    partner.refresh_from_db()
    assert "commands" in partner.last_errors
    live = sim.response_url("START_SESSION")
    RoamingCommand.objects.filter(pk=row.pk).update(response_url=live)  # the partner is back (same result URL)

    assert commands.command_deliver(roaming_command_id=row.pk).state == "delivered"
    assert sim.wait_result(live, timeout=5) == {"result": "REJECTED"}
    commands.command_execute(roaming_command_id=row.pk)  # a task run again changes nothing
    assert RoamingCommand.objects.get(pk=row.pk).result == {"result": "REJECTED"}

    other = commands.command_accept(
        partner=partner, command="STOP_SESSION", request={}, response_url=dead, charge_point=site.charge_point
    )
    commands.command_execute(roaming_command_id=other.pk, runners={"STOP_SESSION": lambda r: commands.Result("FAILED")})
    commands.command_give_up(roaming_command_id=other.pk)
    assert RoamingCommand.objects.get(pk=other.pk).state == "undelivered"
