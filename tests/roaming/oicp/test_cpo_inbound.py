"""Hubject calls us as CPO (apps/roaming/oicp/inbound.py, views.py): an EMP's AuthorizeRemoteStart goes over real
HTTPS with mutual TLS to the local Hubject, which forwards it to our daphne (as through our TLS-terminating proxy);
it reaches a simulated OCPP charger, the session runs with Hubject's SessionID, AuthorizeRemoteStop stops it, and
our ChargeDetailRecord comes back to the hub (validated there against the CPO file). Every refusal has its
StatusCode, and a refused or invalid call changes nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.utils import timezone

from apps.customers.models import Token
from apps.roaming.models import OicpConnection, RoamingCommand
from apps.roaming.oicp import cpo_push, schema
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.sessions.models import ChargingSession, Reservation, ReservationStatus, SessionStatus
from apps.stations.models import Evse
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.oicp.conftest import PROVIDER_ID, Client, example
from tests.roaming.oicp.factories import oicp_connection_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

OPERATOR = "DE*ALP"  # the roaming site's EVSEs are DE*ALP*E1*1 and DE*ALP*E1*2
HUBJECT_DN = "CN=hubject-hbs"
PROXY = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": f"{HUBJECT_DN},O=Hubject"}
START = f"/charging/v21/providers/{PROVIDER_ID}/authorize-remote/start"
STOP = f"/charging/v21/providers/{PROVIDER_ID}/authorize-remote/stop"
OTHER_DRIVER = {"RemoteIdentification": {"EvcoID": "DE-DCB-C99999999-X"}}


@pytest.fixture
def connection(ocpi_base: str, hub: HubSimulator, pki: LocalCA, site: Site, settings: Any) -> OicpConnection:
    """Our tenant's Hubject connection (OperatorID DE*ALP), its EVSE data at the hub, our endpoint known to it."""
    settings.OICP_INBOUND_CLIENT_DN = HUBJECT_DN
    hub.add_party("cpo.voltnet", operator_id=OPERATOR, endpoint=f"{ocpi_base}/oicp")
    hub.partner_headers = PROXY
    connection = oicp_connection_for(
        site.tenant, pki=pki, base_url=hub.url, operator_id=OPERATOR, hotline_phone_number="+4930123456"
    )
    assert cpo_push.evse_data_sync(connection_id=connection.pk).inserted == 2
    return connection


def start_body(evse_id: str = "DE*ALP*E1*1", evco: str = "DE-DCB-C12345678-X", **extra: Any) -> dict[str, Any]:
    return {
        "ProviderID": PROVIDER_ID,
        "EvseID": evse_id,
        "Identification": {"RemoteIdentification": {"EvcoID": evco}},
        "SessionID": str(uuid.uuid4()),
        "EMPPartnerSessionID": "fjord-42",
        **extra,
    }


def ours(ocpi_base: str, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    """A call straight to our endpoint, as our proxy would pass it on."""
    return requests.post(
        f"{ocpi_base}/oicp{path}", json=body, headers=PROXY if headers is None else headers, timeout=30
    )


def assert_answer(answer: dict[str, Any], code: str) -> None:
    assert (answer["Result"], answer["StatusCode"]["Code"]) == (code == "000", code), answer
    assert schema.operation_named("cpo", "AuthorizeRemoteStart").response_issues(answer) == []


def test_a_hubject_remote_start_charges_and_the_cdr_goes_back(
    connection: OicpConnection,
    hub: HubSimulator,
    emp: Client,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
) -> None:
    charger(session_seconds=(120.0, 120.0))
    body = start_body()

    began = time.monotonic()
    answer = emp.post(START, body).json()
    took = time.monotonic() - began

    assert_answer(answer, "000")
    assert took < 10, f"{took:.1f} s: over Hubject's budget"
    session = wait_until(
        lambda: ChargingSession.objects.filter(
            authorization_reference=body["SessionID"], status=SessionStatus.ACTIVE
        ).first(),
        what="the session Hubject started",
    )
    assert (session.roaming_partner, session.connector_id, session.id_tag) == ("DE*HBS", 1, "DE-DCB-C12345678-X")
    assert answer["CPOPartnerSessionID"] == str(session.pk)
    assert hub.sessions[body["SessionID"]].cpo_partner_session_id == str(session.pk)
    token = Token.objects.get(uid="DE-DCB-C12345678-X")
    assert (token.whitelist, token.issuer, token.country_code, token.party_id) == ("NEVER", PROVIDER_ID, "DE", "HBS")

    # the EVSE is taken now: a second start there is 602, forwarded by the hub
    busy = emp.post(START, start_body(evco="DE-DCB-C99999999-X")).json()
    assert_answer(busy, "602")

    wait_until(lambda: ChargingSession.objects.get(pk=session.pk).last_meter_wh > session.meter_start_wh, what="energy")
    stopped = emp.post(STOP, {"ProviderID": PROVIDER_ID, "EvseID": body["EvseID"], "SessionID": body["SessionID"]})
    assert_answer(stopped.json(), "000")
    session = wait_until(
        lambda: ChargingSession.objects.filter(pk=session.pk, status=SessionStatus.COMPLETED).first(),
        what="the stopped session",
    )
    cdr = wait_until(lambda: next(iter(hub.cdrs), None), what="the CDR at the hub").cdr
    assert cdr["SessionID"] == body["SessionID"]
    assert (cdr["EvseID"], cdr["Identification"], cdr["EMPPartnerSessionID"]) == (
        "DE*ALP*E1*1",
        body["Identification"],
        "fjord-42",
    )
    assert cdr["ConsumedEnergy"] == pytest.approx(session.energy_wh / 1000)
    assert cdr["MeterValueEnd"] - cdr["MeterValueStart"] == pytest.approx(cdr["ConsumedEnergy"])
    # the hub holds the CDR before its answer reaches us: the row is marked once the answer is in
    wait_until(
        lambda: RoamingCommand.objects.filter(
            module="oicp", command="CDR", session_id=session.pk, state=RoamingCommand.State.DELIVERED
        ).first(),
        what="the CDR marked delivered",
    )
    # the hub took it once: a repeated SessionEnded sends nothing more
    from apps.roaming.oicp import inbound

    assert inbound.cdr_send(session_id=session.pk) is True
    assert len(hub.calls("ChargeDetailRecord")) == 1
    commands = list(RoamingCommand.objects.filter(module="oicp").order_by("pk").values_list("command", "state"))
    assert commands[0] == ("START_SESSION", "delivered")
    assert ("STOP_SESSION", "delivered") in commands


def _counts() -> tuple[int, int, int]:
    return RoamingCommand.objects.count(), Token.objects.count(), ChargingSession.objects.count()


def test_refusals_each_with_their_code_and_nothing_changed(
    ocpi_base: str, connection: OicpConnection, site: Site
) -> None:
    before = _counts()

    unknown = ours(ocpi_base, START, start_body("DE*ALP*E9*9")).json()
    assert_answer(unknown, "603")
    offline = ours(ocpi_base, START, start_body())  # no charger connected
    assert_answer(offline.json(), "501")
    Evse.objects.filter(pk=site.evses[1].pk).update(status="Faulted")
    out = ours(ocpi_base, START, start_body("DE*ALP*E1*2")).json()
    assert_answer(out, "700")
    stop_unknown = ours(
        ocpi_base, STOP, {"ProviderID": PROVIDER_ID, "EvseID": "DE*ALP*E1*1", "SessionID": str(uuid.uuid4())}
    ).json()
    assert_answer(stop_unknown, "400")

    # no verified certificate of Hubject's, a body that breaks the file, not JSON, another provider in the path
    no_cert = ours(ocpi_base, START, start_body(), headers={})
    assert (no_cert.status_code, no_cert.json()["StatusCode"]["Code"]) == (403, "017")
    forged = ours(ocpi_base, START, start_body(), headers={**PROXY, "X-SSL-Client-S-DN": "CN=someone-else"})
    assert (forged.status_code, forged.json()["StatusCode"]["Code"]) == (403, "017")
    invalid = ours(ocpi_base, START, {**start_body(), "EvseID": "not an evse id"})
    assert (invalid.status_code, invalid.json()["StatusCode"]["Code"]) == (400, "022")
    assert "$.EvseID" in invalid.json()["StatusCode"]["AdditionalInfo"]
    not_json = requests.post(f"{ocpi_base}/oicp{START}", data=b"{", headers=PROXY, timeout=30)
    assert (not_json.status_code, not_json.json()["StatusCode"]["Code"]) == (400, "022")
    other = ours(ocpi_base, "/charging/v21/providers/DE-XYZ/authorize-remote/start", start_body())
    assert (other.status_code, other.json()["StatusCode"]["Code"]) == (400, "022")
    nowhere = ours(ocpi_base, "/charging/v99/nothing", {})
    assert (nowhere.status_code, nowhere.json()["StatusCode"]["Code"]) == (404, "320")

    # only the offline attempt left a record (of the start that failed), no session
    rows, tokens, sessions = _counts()
    assert (rows - before[0], sessions - before[2]) == (1, 0)
    assert RoamingCommand.objects.get(module="oicp").result["StatusCode"]["Code"] == "501"
    assert tokens - before[1] == 1  # the EMP's identification, cached as a token that never charges by itself


@pytest.mark.parametrize("name", ["eRoamingAuthorizeRemoteStart", "eRoamingAuthorizeRemoteStop"])
def test_hubjects_own_examples_are_taken(ocpi_base: str, connection: OicpConnection, name: str) -> None:
    """The CPO file's examples of what Hubject sends us pass our validation: answered for what they name (an EVSE
    we do not have: 603), never refused as invalid (022), and they start nothing."""
    body = example("cpo", name)
    path = START if name.endswith("Start") else STOP
    before = _counts()

    answer = ours(ocpi_base, path.replace(PROVIDER_ID, body["ProviderID"]), body)

    assert answer.status_code == 200, answer.text
    assert_answer(answer.json(), "603")
    assert _counts() == before


def test_a_hubject_reservation_reaches_the_charger_and_its_stop_cancels_it(
    connection: OicpConnection, emp: Client, site: Site, charger: Callable[..., ChargerThread]
) -> None:
    charger()
    reserve = f"/reservation/v11/providers/{PROVIDER_ID}/reservation-start-request"
    body = {
        "ProviderID": PROVIDER_ID,
        "EvseID": "DE*ALP*E1*2",
        "Identification": {"RemoteIdentification": {"EvcoID": "DE-DCB-C12345678-X"}},
        "SessionID": str(uuid.uuid4()),
        "Duration": 10,
    }

    answer = emp.post(reserve, body).json()

    assert (answer["Result"], answer["StatusCode"]["Code"]) == (True, "000"), answer
    reservation = Reservation.objects.get(pk=int(answer["CPOPartnerSessionID"]))
    assert (reservation.status, reservation.connector_id, reservation.charge_point_id) == (
        ReservationStatus.ACTIVE,
        2,
        site.charge_point.pk,
    )
    assert 9 * 60 < (reservation.expires_at - timezone.now()).total_seconds() <= 10 * 60
    # the EVSE is held: another driver's reservation there is 601, and changes nothing
    other = emp.post(reserve, {**body, "SessionID": str(uuid.uuid4()), "Identification": OTHER_DRIVER}).json()
    assert other["StatusCode"]["Code"] == "601", other
    assert Reservation.objects.count() == 1

    stop = f"/reservation/v11/providers/{PROVIDER_ID}/reservation-stop-request"
    stopped = emp.post(stop, {"ProviderID": PROVIDER_ID, "EvseID": "DE*ALP*E1*2", "SessionID": body["SessionID"]})
    assert (stopped.json()["Result"], stopped.json()["StatusCode"]["Code"]) == (True, "000"), stopped.json()
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.CANCELLED
    # a stop of a reservation we never made: 400
    unknown = emp.post(stop, {"ProviderID": PROVIDER_ID, "EvseID": "DE*ALP*E1*2", "SessionID": str(uuid.uuid4())})
    assert unknown.json()["StatusCode"]["Code"] == "400"
