"""Where roaming meets authorization and sessions, over real HTTP (the partner simulator as the eMSP), real OCPP (a
simulated charger under daphne) and real PostgreSQL:

- a real-time authorization at the eMSP (seconds) runs before the StartTransaction's database transaction: no
  transaction, row lock or tag lock is held while the eMSP thinks, and one running session per token still holds;
- the tokens of a partner that is suspended, unregistered or removed do not charge (whatever their whitelist) and are
  Invalid in the chargers' local list, until the partner is active again;
- one uid per tenant across eMSPs: a second eMSP's push of a uid is refused (2001) and changes nothing, and a
  real-time answer carrying another eMSP's token (or another uid) is ignored;
- the eMSP's authorization_reference (real-time authorization, START_SESSION) is kept on the session and emitted on
  the OCPI Session and CDR;
- every OCPI Session and CDR we emit names an EVSE uid and a connector id of the Location we emit.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.customers import selectors as customer_selectors
from apps.customers import services as customer_services
from apps.customers.models import Token
from apps.roaming import services as roaming_services
from apps.roaming.models import RoamingPartner
from apps.roaming.ocpi import objects
from apps.roaming.partner_sim import PartnerSimulator
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, SessionStatus
from tests.charging.factories import ChargingSessionFactory
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.factories import registered
from tests.stations.factories import ConnectorFactory

pytestmark = pytest.mark.slow


@pytest.fixture
def partner(ocpi_base: str, sim: PartnerSimulator, site: Site) -> RoamingPartner:
    return registered(ocpi_base, sim, site.tenant)


def authorize_calls(sim: PartnerSimulator, uid: str) -> int:
    return len([r for r in sim.received if r.path.startswith(f"/ocpi/emsp/2.2.1/tokens/{uid}/authorize")])


# --------------------------------------------------------------------------- 1. no transaction around the eMSP call


def test_a_slow_real_time_authorization_holds_no_transaction_and_blocks_no_writer(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    sim.authorizations["SLOWCARD1"] = {"allowed": "ALLOWED", "token": sim.token_object("SLOWCARD1", whitelist="NEVER")}
    sim.authorize_hold = hold = threading.Event()
    # a session on connector 1 whose StopTransaction never came: the next StartTransaction there closes it
    stale = ChargingSessionFactory(
        charge_point=site.charge_point,
        evse=site.evses[0],
        connector_id=1,
        status=SessionStatus.ACTIVE,
        started_at=timezone.now() - dt.timedelta(hours=1),
        last_meter_wh=0,
    )
    tag_key = f"{site.tenant.pk}:slowcard1"

    charger(connectors=1, id_tags=["SLOWCARD1"], idle_seconds=(0.2, 0.4), session_seconds=(120.0, 120.0))
    try:
        assert sim.authorize_waiting.wait(60), "the eMSP was not asked"
        hold.wait(2.0)  # the eMSP thinks for a while
        with connection.cursor() as cursor:
            # no backend of this database has had a transaction open for more than a second
            cursor.execute(
                "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start < now() - interval '1 second'"
            )
            assert cursor.fetchall() == []
            cursor.execute(
                "SELECT l.locktype, l.mode, a.query FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
                " AND l.locktype IN ('advisory', 'tuple', 'transactionid')"
            )
            assert cursor.fetchall() == []
        with transaction.atomic():
            # another writer of the stale session (its MeterValues, say) is not blocked
            locked = ChargingSession.objects.select_for_update(nowait=True).get(pk=stale.pk)
            assert locked.status == SessionStatus.ACTIVE
            # nor another start of the same tag (the tag lock is taken after the eMSP answered)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('charging.id_tag'), hashtext(%s))", [tag_key])
                assert cursor.fetchone() == (True,)
    finally:
        hold.set()
        sim.authorize_hold = None

    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag="SLOWCARD1", status=SessionStatus.ACTIVE).first(),
        what="the session started with the eMSP's answer",
    )
    assert (session.auth_status, session.roaming_partner) == ("Accepted", "NL*SIM")
    stale.refresh_from_db()
    assert stale.status == SessionStatus.COMPLETED  # closed by the new start's evidence, after the eMSP answered
    assert authorize_calls(sim, "SLOWCARD1") == 1


def test_two_starts_of_one_token_during_a_slow_authorization_give_one_session_and_concurrent_tx(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site
) -> None:
    sim.authorizations["TWINCARD"] = {"allowed": "ALLOWED", "token": sim.token_object("TWINCARD", whitelist="NEVER")}
    sim.authorize_hold = hold = threading.Event()
    answers: dict[int, Any] = {}
    errors: list[BaseException] = []
    now = timezone.now()

    def start(connector_id: int) -> None:
        try:
            answers[connector_id] = session_services.session_start(
                charge_point_id=site.charge_point.pk,
                connector_id=connector_id,
                id_tag="TWINCARD",
                meter_start=1000 * connector_id,
                timestamp=now + dt.timedelta(seconds=connector_id),
            )
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: authorize_calls(sim, "TWINCARD") == 2, what="both starts asking the eMSP at once")
    finally:
        hold.set()
        sim.authorize_hold = None
    for thread in threads:
        thread.join(60)

    assert errors == []
    statuses = sorted(info.status for _session, info in answers.values())
    assert statuses == ["Accepted", "ConcurrentTx"]
    running = ChargingSession.objects.filter(id_tag="TWINCARD", status=SessionStatus.ACTIVE)
    assert running.count() == 1
    loser = ChargingSession.objects.get(id_tag="TWINCARD", status=SessionStatus.INVALID)
    assert loser.auth_status == "ConcurrentTx"  # recorded (energy never lost), never running


# --------------------------------------------------------------------------- 2. a partner that is not active


def test_a_suspended_partners_tokens_are_refused_at_the_charger_and_in_the_local_list_until_reinstated(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    assert sim.push_token(sim.token_object("SUSPCARD", whitelist="ALWAYS"))["status_code"] == 1000
    assert sim.push_token(sim.token_object("SUSPCAR2", whitelist="ALLOWED"))["status_code"] == 1000
    wire = {uid: Token.objects.get(uid=uid).wire_id for uid in ("SUSPCARD", "SUSPCAR2")}

    roaming_services.partner_suspend(partner=partner)

    listed = {e.id_tag: e.status for e in customer_selectors.local_auth_list(tenant=site.tenant)}
    assert (listed[wire["SUSPCARD"]], listed[wire["SUSPCAR2"]]) == ("Invalid", "Invalid")
    allowed = customer_services.token_authorize(tenant=site.tenant, id_tag="SUSPCAR2", location_id=site.location.pk)
    assert (allowed.status, allowed.reason) == ("Invalid", "roaming_partner_inactive")
    charger(connectors=1, id_tags=["SUSPCARD"], idle_seconds=(0.5, 0.5), session_seconds=(1.0, 1.0))
    refused = wait_until(
        lambda: ChargingSession.objects.filter(id_tag="SUSPCARD").first(), what="the StartTransaction of SUSPCARD"
    )
    assert (refused.auth_status, refused.auth_reason, refused.status) == (
        "Invalid",
        "roaming_partner_inactive",
        SessionStatus.INVALID,
    )
    assert not [r for r in sim.received if r.path.endswith("/authorize")]  # a suspended partner is not asked

    roaming_services.partner_reinstate(partner=partner)

    wait_until(
        lambda: ChargingSession.objects.filter(id_tag="SUSPCARD", auth_status="Accepted").exists(),
        what="SUSPCARD charging again once its eMSP is reinstated",
    )
    listed = {e.id_tag: e.status for e in customer_selectors.local_auth_list(tenant=site.tenant)}
    assert (listed[wire["SUSPCARD"]], listed[wire["SUSPCAR2"]]) == ("Accepted", "Accepted")


def test_the_tokens_of_a_removed_or_unregistered_partner_are_refused(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site
) -> None:
    assert sim.push_token(sim.token_object("GONECARD", whitelist="ALWAYS"))["status_code"] == 1000
    assert customer_services.token_authorize(tenant=site.tenant, id_tag="GONECARD").status == "Accepted"

    roaming_services.partner_unregistered(partner_id=partner.pk)

    unregistered = customer_services.token_authorize(tenant=site.tenant, id_tag="GONECARD")
    assert (unregistered.status, unregistered.reason) == ("Invalid", "roaming_partner_inactive")

    roaming_services.partner_delete(partner=partner)

    deleted = customer_services.token_authorize(tenant=site.tenant, id_tag="GONECARD")
    assert (deleted.status, deleted.reason) == ("Invalid", "roaming_partner_inactive")
    assert Token.objects.get(uid="GONECARD").whitelist == "ALWAYS"  # the stored token itself is unchanged


# --------------------------------------------------------------------------- 4. the eMSP's authorization_reference


def test_the_authorization_reference_of_a_real_time_authorization_reaches_the_session_and_the_cdr(
    ocpi_base: str, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    registered(ocpi_base, sim, site.tenant, modules=["locations", "tokens", "sessions", "cdrs"])
    sim.authorizations["REFCARD1"] = {
        "allowed": "ALLOWED",
        "authorization_reference": "Auth-Ref-0001",
        "token": sim.token_object("REFCARD1", whitelist="NEVER"),
    }

    charger(connectors=1, id_tags=["REFCARD1"], idle_seconds=(0.2, 0.4), session_seconds=(1.0, 1.0))
    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag="REFCARD1", status=SessionStatus.COMPLETED).first(),
        what="a completed session of REFCARD1",
    )

    assert session.authorization_reference == "Auth-Ref-0001"
    emitted = sim.call("GET", sim.peer_endpoint("sessions")).json()["data"]
    assert [s["authorization_reference"] for s in emitted if s["id"] == str(session.pk)] == ["Auth-Ref-0001"]
    cdrs = wait_until(lambda: sim.call("GET", sim.peer_endpoint("cdrs")).json()["data"], what="the CDR listed")
    assert [c["authorization_reference"] for c in cdrs if c["session_id"] == str(session.pk)] == ["Auth-Ref-0001"]


def test_the_authorization_reference_of_start_session_reaches_the_session(
    partner: RoamingPartner,
    sim: PartnerSimulator,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
) -> None:
    charger(session_seconds=(120.0, 120.0))
    body = {
        "token": sim.token_object("app-user-ref", type="APP_USER", whitelist="ALLOWED"),
        "location_id": "LOC-1",
        "evse_uid": "DE*ALP*E1*1",
        "authorization_reference": "START-REF-42",
    }

    answer, response_url = sim.send_command("START_SESSION", body)

    assert answer["data"]["result"] == "ACCEPTED", answer
    assert sim.wait_result(response_url, timeout=90) == {"result": "ACCEPTED"}
    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag="app-user-ref", status=SessionStatus.ACTIVE).first(),
        what="the started session",
    )
    assert (session.auth_method, session.authorization_reference) == ("COMMAND", "START-REF-42")
    document = objects.session_object(session, partner)
    assert document["authorization_reference"] == "START-REF-42"


# --------------------------------------------------------------------------- 3. one uid per tenant across eMSPs


@pytest.fixture
def sim2() -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(country_code="NL", party_id="OTH", name="Other eMSP").start()
    yield simulator
    simulator.stop()


def token_state(uid: str) -> tuple[Any, ...]:
    token = Token.objects.select_related("roaming_push").get(uid=uid)
    push = token.roaming_push
    return (
        token.pk,
        token.country_code,
        token.party_id,
        token.contract_id,
        token.whitelist,
        token.valid,
        token.updated_at,
        push.partner_id,
        push.last_updated,
    )


def test_a_second_emsp_cannot_overwrite_or_take_over_another_emsps_uid(
    partner: RoamingPartner, sim: PartnerSimulator, sim2: PartnerSimulator, ocpi_base: str, site: Site
) -> None:
    registered(ocpi_base, sim2, site.tenant)
    assert sim.push_token(sim.token_object("SHARED01", whitelist="ALWAYS"))["status_code"] == 1000
    before = token_state("SHARED01")

    put = sim2.push_token(sim2.token_object("shared01", whitelist="ALWAYS", valid=False))
    patch = sim2.push_token({"valid": False, "last_updated": "2026-12-04T18:00:00Z"}, method="PATCH", uid="SHARED01")
    get = sim2.push_token(None, method="GET", uid="SHARED01")

    assert put["status_code"] == 2001
    assert put["status_message"] == "token.uid: 'shared01' is a token of NL*SIM; uids are unique here."
    assert (patch["http_status"], patch["status_code"]) == (404, 2004)
    assert (get["http_status"], get["status_code"]) == (404, 2004)
    assert token_state("SHARED01") == before
    assert Token.objects.filter(uid__iexact="shared01").count() == 1
    # the first eMSP's driver still charges as its driver
    result = customer_services.token_authorize(tenant=site.tenant, id_tag="SHARED01")
    assert (result.status, result.token.party_id if result.token else None) == ("Accepted", "SIM")


def test_a_real_time_answer_with_another_emsps_token_is_ignored(
    partner: RoamingPartner, sim: PartnerSimulator, sim2: PartnerSimulator, ocpi_base: str, site: Site
) -> None:
    other = registered(ocpi_base, sim2, site.tenant)
    # NL*OTH answers for a uid with a token in NL*SIM's name, and for another uid than the one asked
    sim2.authorizations["SPOOF01"] = {"allowed": "ALLOWED", "token": sim.token_object("SPOOF01", whitelist="ALWAYS")}
    sim2.authorizations["SPOOF02"] = {"allowed": "ALLOWED", "token": sim2.token_object("SHARED02")}
    assert sim.push_token(sim.token_object("SHARED02", whitelist="NEVER"))["status_code"] == 1000
    sim.authorizations["SHARED02"] = {"allowed": "BLOCKED", "token": sim.token_object("SHARED02", whitelist="NEVER")}
    before = token_state("SHARED02")

    spoofed = customer_services.token_authorize(tenant=site.tenant, id_tag="SPOOF01")
    wrong_uid = customer_services.token_authorize(tenant=site.tenant, id_tag="SPOOF02")

    assert (spoofed.status, spoofed.reason) == ("Invalid", "unknown")
    assert (wrong_uid.status, wrong_uid.reason) == ("Invalid", "unknown")
    assert not Token.objects.filter(uid__in=["SPOOF01", "SPOOF02"]).exists()
    assert token_state("SHARED02") == before
    other.refresh_from_db()
    assert "not one of this partner's" in other.last_errors["tokens"]["message"]


# ------------------------------------------------------------- 5. sessions and CDRs name our Location's keys


def test_every_session_and_cdr_we_emit_names_an_evse_and_connector_of_the_location_we_emit(
    ocpi_base: str, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    registered(ocpi_base, sim, site.tenant, modules=["locations", "tokens", "sessions", "cdrs"])
    for evse in site.evses:  # connector keys that differ from the OCPP connector numbers (1, 2)
        evse.connectors.all().delete()
        ConnectorFactory(evse=evse)
        ConnectorFactory(evse=evse)
    for uid in ("LOCCARD1", "LOCCARD2"):
        assert sim.push_token(sim.token_object(uid, whitelist="ALWAYS"))["status_code"] == 1000

    charger(connector_tags=["LOCCARD1", "LOCCARD2"], idle_seconds=(0.2, 0.4), session_seconds=(1.0, 1.0))
    wait_until(
        lambda: (
            ChargingSession.objects.filter(
                id_tag__in=["LOCCARD1", "LOCCARD2"], status=SessionStatus.COMPLETED, cdr__isnull=False
            )
            .values("id_tag")
            .distinct()
            .count()
            == 2
        ),
        what="a CDR on each connector",
    )

    locations = sim.call("GET", sim.peer_endpoint("locations")).json()["data"]
    emitted = {
        (location["id"], evse["uid"], connector["id"])
        for location in locations
        for evse in location.get("evses", [])
        for connector in evse["connectors"]
    }
    sessions = sim.call("GET", sim.peer_endpoint("sessions")).json()["data"]
    cdrs = sim.call("GET", sim.peer_endpoint("cdrs")).json()["data"]
    assert len(sessions) >= 2
    assert len(cdrs) >= 2
    for session in sessions:
        assert (session["location_id"], session["evse_uid"], session["connector_id"]) in emitted, session
    for cdr in cdrs:
        where = cdr["cdr_location"]
        assert (where["id"], where["evse_uid"], where["connector_id"]) in emitted, where
