"""Hubject calls us as CPO (OICP 2.3, the CPO file's AuthorizeRemoteStart and AuthorizeRemoteStop): an EMP's driver
starts or stops a session on one of our EVSEs through the hub, and we send the ChargeDetailRecord when it ends.

- **Which EVSE**: the EvseID as we pushed it (`OicpEvseState`, so only EVSEs Hubject holds of a connection that is
  enabled); anything else is StatusCode 603 "Unknown EVSE ID.".
- **Remote start** becomes RemoteStartTransaction through `sessions.commands` (the path OCPI's START_SESSION takes),
  answered within Hubject's 10 s budget: the charger gets `REMOTE_START_WAIT` seconds. The EMP authorized its driver:
  the identification is kept as a roaming token of the Hubject partner (`DE*HBS`, its EvcoID or UID, whitelist
  NEVER) and a `RoamingCommand` (module `oicp`) records the request, so the charger's StartTransaction is accepted
  without asking again (the same 15-minute rule as OCPI commands) and nothing else can start with that token. The
  session keeps Hubject's SessionID as its `authorization_reference`; `CPOPartnerSessionID` is our session id.
  Refusals: 700 out of service (Faulted, Unavailable, decommissioned), 602 in use (a session runs there, or the
  charger rejected), 501 the charger is offline or did not answer.
- **Remote stop** by SessionID (and EvseID): RemoteStopTransaction; 400 "Session is invalid." for a session we do not
  have or one that no longer runs.
- **ChargeDetailRecord** after such a session ended (`cdr_body`, sent by the task `roaming.oicp_cdr`, retried while
  Hubject cannot be reached): the SessionID, the EMP's identification as it came, start and end, meter readings and
  energy in kWh.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.customers import services as customer_services
from apps.customers.authorization import RoamingToken
from apps.customers.models import Token, TokenType, WhitelistType
from apps.roaming.models import (
    CommandType,
    OicpConnection,
    OicpEvseState,
    OicpOperation,
    PartnerReservation,
    RoamingCommand,
)
from apps.roaming.oicp import emp
from apps.roaming.oicp.client import OicpClient
from apps.roaming.oicp.services import HUBJECT, HUBJECT_PARTY
from apps.sessions import commands as session_commands
from apps.sessions.models import ChargingSession, SessionStatus, SignedMeterValue
from apps.stations import services as station_services
from apps.stations.models import ChargePointStatus, Command, Evse

REMOTE_START_WAIT = 7.0  # seconds for the charger: Hubject gives us 10 s for the whole answer
MODULE = "oicp"
OUT_OF_SERVICE = {ChargePointStatus.FAULTED, ChargePointStatus.UNAVAILABLE}
TEXT = {
    "000": "Success.",
    "400": "Session is invalid.",
    "501": "Communication to EVSE failed.",
    "602": "EVSE already in use/ wrong token.",
    "601": "EVSE reserved.",
    "603": "Unknown EVSE ID.",
    "700": "EVSE out of service.",
    "009": "Data transaction error.",
    "022": "Data error.",
}


@dataclass(frozen=True)
class Answer:
    """An eRoamingAcknowledgment for Hubject."""

    code: str
    info: str = ""
    session_id: str = ""
    cpo_session_id: str = ""
    emp_session_id: str = ""

    def body(self) -> dict[str, Any]:
        status: dict[str, str] = {"Code": self.code, "Description": TEXT.get(self.code, "")}
        if self.info:
            status["AdditionalInfo"] = self.info[:1000]
        body: dict[str, Any] = {"Result": self.code == "000", "StatusCode": status}
        for key, value in (
            ("SessionID", self.session_id),
            ("CPOPartnerSessionID", self.cpo_session_id),
            ("EMPPartnerSessionID", self.emp_session_id),
        ):
            if value:
                body[key] = value
        return body


def _held(evse_id: str) -> tuple[OicpConnection, Evse] | None:
    """The EVSE Hubject knows by this EvseID (as we pushed it), of an enabled connection."""
    state = (
        OicpEvseState.objects.filter(evse_id__iexact=evse_id, connection__enabled=True)
        .select_related("connection__tenant", "connection__partner")
        .first()
    )
    if state is None:
        return None
    evse = Evse.objects.filter(pk=state.evse_pk).select_related("charge_point").first()
    if evse is None:
        return None
    return state.connection, evse


def _startable(evse_id: str) -> tuple[OicpConnection, Evse] | tuple[str, str]:
    """The EVSE Hubject knows by this EvseID, if it can start or be reserved; else the refusal (code, info):
    603 not ours at Hubject, 700 out of service or decommissioned."""
    found = _held(evse_id)
    if found is None:
        return "603", f"{evse_id} is not one of our EVSEs at Hubject"
    _connection, evse = found
    if evse.decommissioned_at or evse.charge_point.decommissioned_at or evse.status in OUT_OF_SERVICE:
        return "700", f"{evse_id} is {evse.status or 'decommissioned'}"
    return found


def _uid(identification: dict[str, Any]) -> tuple[str, str]:
    """(the token uid, its OCPI type) of an OICP Identification: the EvcoID of a remote, QR or Plug&Charge
    identification, else the RFID UID."""
    for key in ("RemoteIdentification", "QRCodeIdentification", "PlugAndChargeIdentification", "RFIDIdentification"):
        evco = (identification.get(key) or {}).get("EvcoID")
        if evco:
            return str(evco), TokenType.APP_USER
    for key in ("RFIDMifareFamilyIdentification", "RFIDIdentification"):
        uid = (identification.get(key) or {}).get("UID")
        if uid:
            return str(uid), TokenType.RFID
    raise ApplicationError("The Identification names neither an EvcoID nor a UID.", code="invalid")


def _token(connection: OicpConnection, body: dict[str, Any]) -> Token:
    uid, kind = _uid(body["Identification"])
    return customer_services.token_cache_roaming(
        tenant=connection.tenant,
        data=RoamingToken(
            uid=uid,
            contract_id=uid if kind == TokenType.APP_USER else "",
            issuer=str(body["ProviderID"]),
            country_code=HUBJECT_PARTY[0],
            party_id=HUBJECT_PARTY[1],
            type=kind,
            whitelist=WhitelistType.NEVER,  # each start is authorized by the EMP through Hubject, never by us
        ),
    )


def remote_start(body: dict[str, Any]) -> Answer:
    """AuthorizeRemoteStart (the body validated against the CPO file)."""
    session_id, emp_session = str(body["SessionID"]), str(body.get("EMPPartnerSessionID") or "")

    def answer(code: str, info: str = "", cpo_session: str = "") -> Answer:
        return Answer(code, info, session_id, cpo_session, emp_session)

    found = _startable(str(body["EvseID"]))
    if isinstance(found, tuple) and isinstance(found[0], str):
        return answer(*found)
    connection, evse = found
    charge_point = evse.charge_point
    if session_commands.connector_busy(charge_point=charge_point, connector_id=evse.connector_id):
        return answer("602", "a session runs on this EVSE")
    if RoamingCommand.objects.filter(partner=connection.partner, module=MODULE, target__session_id=session_id).exists():
        return answer("400", f"SessionID {session_id} was used before")
    try:
        token = _token(connection, body)
    except ApplicationError as error:
        return answer("022", error.message)
    row = RoamingCommand.objects.create(  # committed before the charger's StartTransaction looks for it
        partner=connection.partner,
        module=MODULE,
        command=CommandType.START_SESSION,
        request={"token": {"uid": token.uid}, "oicp": body},
        target={"evse": evse.pk, "session_id": session_id},
        response_url="",
        charge_point=charge_point,
        timeout_s=int(REMOTE_START_WAIT),
    )
    try:
        command, reserved = session_commands.session_remote_start_token(
            token=token,
            charge_point=charge_point,
            connector_id=evse.connector_id,
            timeout=REMOTE_START_WAIT,
            authorization_reference=session_id,
        )
    except station_services.ChargePointOffline:
        return _finish(row, answer("501", "the charging station is not connected"))
    except ApplicationError as error:
        return _finish(row, answer("700", error.message))
    RoamingCommand.objects.filter(pk=row.pk).update(ocpp_command_id=command.pk, session_id=reserved)
    if command.status == "accepted":
        return _finish(row, answer("000", cpo_session=str(reserved)))
    if command.status == "rejected":
        return _finish(row, answer("602", "the charging station rejected the start"))
    return _finish(row, answer("501", f"the charging station answered {command.status}"))


def _finish(row: RoamingCommand, answer: Answer) -> Answer:
    RoamingCommand.objects.filter(pk=row.pk).update(
        state=RoamingCommand.State.DELIVERED, result=answer.body(), updated_at=timezone.now()
    )
    return answer


def remote_stop(body: dict[str, Any]) -> Answer:
    """AuthorizeRemoteStop (the body validated against the CPO file)."""
    session_id = str(body["SessionID"])
    answer = Answer("400", "", session_id, "", str(body.get("EMPPartnerSessionID") or ""))
    found = _held(str(body["EvseID"]))
    if found is None:
        return Answer("603", f"{body['EvseID']} is not one of our EVSEs at Hubject", session_id)
    connection, evse = found
    session = (
        ChargingSession.objects.filter(
            tenant_id=connection.tenant_id,
            charge_point_id=evse.charge_point_id,
            authorization_reference=session_id,
            roaming_partner=HUBJECT,
        )
        .select_related("charge_point")
        .first()
    )
    if session is None:
        return Answer("400", f"no session {session_id} at {body['EvseID']}", session_id)
    if session.status not in (SessionStatus.ACTIVE, SessionStatus.SUSPENDED):
        return Answer("400", f"the session is {session.status}", session_id)
    row = RoamingCommand.objects.create(
        partner=connection.partner,
        module=MODULE,
        command=CommandType.STOP_SESSION,
        request={"oicp": body},
        target={"evse": evse.pk, "session_id": session_id},
        response_url="",
        charge_point=session.charge_point,
        session_id=session.pk,
        timeout_s=int(REMOTE_START_WAIT),
    )
    answer = Answer("000", "", session_id, str(session.pk), answer.emp_session_id)
    try:
        command = session_commands.session_remote_stop_command(session=session, timeout=REMOTE_START_WAIT)
    except station_services.ChargePointOffline:
        return _finish(row, Answer("501", "the charging station is not connected", session_id))
    except ApplicationError as error:
        return _finish(row, Answer("400", error.message, session_id))
    RoamingCommand.objects.filter(pk=row.pk).update(ocpp_command_id=command.pk)
    if command.status != "accepted":
        return _finish(row, Answer("501", f"the charging station answered {command.status}", session_id))
    return _finish(row, answer)


# --------------------------------------------------------------------------- reservations


DEFAULT_RESERVATION_MINUTES = 15
CONNECTOR_ERRORS = {"ConnectorLockFailure"}  # OCPP 1.6 error codes OICP calls ConnectorError (the rest: Critical)
MAX_SIGNED_VALUE = 3000  # the CPO file's SignedMeteringValue maximum length
MAX_PROGRESS = 8  # Start, Progress1 … Progress8, End: 10 values at most


def reservation_start(body: dict[str, Any]) -> Answer:
    """AuthorizeRemoteReservationStart: ReserveNow at the charger for the EMP's driver (for `Duration` minutes,
    15 if not given), linked to Hubject's SessionID (`PartnerReservation`); the charger's answer is the StatusCode."""
    session_id = str(body.get("SessionID") or uuid.uuid4())
    emp_session = str(body.get("EMPPartnerSessionId") or "")

    def answer(code: str, info: str = "", cpo_session: str = "") -> Answer:
        return Answer(code, info, session_id, cpo_session, emp_session)

    found = _startable(str(body["EvseID"]))
    if isinstance(found, tuple) and isinstance(found[0], str):
        return answer(*found)
    connection, evse = found
    charge_point = evse.charge_point
    if PartnerReservation.objects.filter(partner=connection.partner, their_reservation_id=session_id).exists():
        return answer("400", f"SessionID {session_id} was used before")
    try:
        token = _token(connection, body)
        reservation = session_commands.reservation_create_for_token(
            token=token,
            charge_point=charge_point,
            connector_id=evse.connector_id,
            expires_at=timezone.now() + dt.timedelta(minutes=int(body.get("Duration") or DEFAULT_RESERVATION_MINUTES)),
        )
    except ApplicationError as error:
        code = "601" if error.code == "connector_reserved" else "602" if error.code == "connector_busy" else "022"
        return answer(code, error.message)
    PartnerReservation.objects.create(
        partner=connection.partner, charge_point=charge_point, their_reservation_id=session_id, reservation=reservation
    )
    with contextlib.suppress(station_services.ChargePointOffline, ApplicationError):
        session_commands.reservation_send(reservation=reservation, timeout=REMOTE_START_WAIT)
    reservation.refresh_from_db()
    command = Command.objects.filter(pk=reservation.command_id).first() if reservation.command_id else None
    if command is None or command.status != "accepted":
        with contextlib.suppress(ApplicationError):
            session_commands.reservation_cancel(reservation=reservation, timeout=REMOTE_START_WAIT)
        if command is None or command.status in ("timeout", "offline", "error"):
            return answer("501", reservation.detail or "the charging station did not answer")
        return answer("602", f"the charging station answered {(command.response or {}).get('status', command.status)}")
    return answer("000", cpo_session=str(reservation.pk))


def reservation_stop(body: dict[str, Any]) -> Answer:
    """AuthorizeRemoteReservationStop: CancelReservation of the reservation made under this SessionID."""
    session_id = str(body["SessionID"])
    found = _held(str(body["EvseID"]))
    if found is None:
        return Answer("603", f"{body['EvseID']} is not one of our EVSEs at Hubject", session_id)
    connection, evse = found
    link = (
        PartnerReservation.objects.filter(
            partner=connection.partner, charge_point=evse.charge_point, their_reservation_id=session_id
        )
        .select_related("reservation")
        .first()
    )
    if link is None:
        return Answer("400", f"no reservation {session_id} at {body['EvseID']}", session_id)
    try:
        session_commands.reservation_cancel(reservation=link.reservation, timeout=REMOTE_START_WAIT)
    except ApplicationError as error:
        return Answer("400", error.message, session_id)
    return Answer("000", "", session_id, str(link.reservation_id))


# --------------------------------------------------------------------------- the CDR


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hubject_session(session_id: int, *, running: bool = False) -> tuple[ChargingSession, RoamingCommand] | None:
    """A session that Hubject started or authorized (its start recorded), with that record; a completed one unless
    `running` is asked for."""
    session = ChargingSession.objects.filter(pk=session_id, roaming_partner=HUBJECT).select_related("evse").first()
    if session is None or not session.authorization_reference:
        return None
    if not running and session.stopped_at is None:
        return None
    start = (
        RoamingCommand.objects.filter(
            module=MODULE,
            command=CommandType.START_SESSION,
            partner__tenant_id=session.tenant_id,
            target__session_id=session.authorization_reference,
        )
        .select_related("partner__oicp_connection")
        .first()
    )
    if start is None:
        return None
    return session, start


def cdr_body(session: ChargingSession, start: RoamingCommand) -> dict[str, Any]:
    """The eRoamingChargeDetailRecord of a session Hubject started."""
    request = start.request["oicp"]
    assert session.stopped_at is not None
    assert session.meter_stop_wh is not None
    meter_start = Decimal(session.meter_start_wh) / 1000
    meter_stop = Decimal(session.meter_stop_wh) / 1000
    body: dict[str, Any] = {
        "SessionID": request["SessionID"],
        "CPOPartnerSessionID": str(session.pk),
        "EvseID": request.get("EvseID") or (session.evse.evse_uid if session.evse else ""),
        "Identification": request["Identification"],
        "ChargingStart": _stamp(session.started_at),
        "ChargingEnd": _stamp(session.stopped_at),
        "SessionStart": _stamp(session.started_at),
        "SessionEnd": _stamp(session.stopped_at),
        "MeterValueStart": float(meter_start),
        "MeterValueEnd": float(meter_stop),
        "ConsumedEnergy": float(meter_stop - meter_start),
    }
    if request.get("EMPPartnerSessionID"):
        body["EMPPartnerSessionID"] = request["EMPPartnerSessionID"]
    if request.get("PartnerProductID"):
        body["PartnerProductID"] = request["PartnerProductID"]
    signed = signed_metering_values(session)
    if signed:  # calibration law (Eichrecht): what the charger signed, for the EMP's transparency software
        body["SignedMeteringValues"] = signed
        if all(value["SignedMeteringValue"].startswith("OCMF|") for value in signed):
            body["CalibrationLawVerificationInfo"] = {"MeteringSignatureEncodingFormat": "OCMF"}
    return body


def signed_metering_values(session: ChargingSession) -> list[dict[str, str]]:
    """The session's signed meter values as OICP wants them: the Transaction.Begin one as Start, up to 8 others as
    Progress (the last ones), the Transaction.End one as End, in that order (10 at most). A value longer than the
    file allows (3,000 characters) is left out: cut, a signature proves nothing."""
    values = [
        (row.context, row.data)
        for row in SignedMeterValue.objects.filter(session=session).order_by("timestamp", "pk")
        if row.data and len(row.data) <= MAX_SIGNED_VALUE
    ]
    start = [data for context, data in values if context == "Transaction.Begin"][:1]
    end = [data for context, data in values if context == "Transaction.End"][-1:]
    progress = [data for context, data in values if context not in ("Transaction.Begin", "Transaction.End")]
    return (
        [{"SignedMeteringValue": data, "MeteringStatus": "Start"} for data in start]
        + [{"SignedMeteringValue": data, "MeteringStatus": "Progress"} for data in progress[-MAX_PROGRESS:]]
        + [{"SignedMeteringValue": data, "MeteringStatus": "End"} for data in end]
    )


def cdr_send(*, session_id: int) -> bool:
    """POST the session's ChargeDetailRecord to Hubject once (a RoamingCommand `CDR` row marks it sent); False when
    the session is not one Hubject started. Raises the client's errors (the task retries).

    The row stays locked while the POST runs (bounded by the client's timeout), so a second send of the same
    session (a repeated SessionEnded, a retried task) waits for the first and then finds it delivered."""
    found = hubject_session(session_id)
    if found is None:
        return False
    session, start = found
    connection: OicpConnection = start.partner.oicp_connection
    with transaction.atomic():
        sent, created = RoamingCommand.objects.select_for_update().get_or_create(
            partner=start.partner,
            module=MODULE,
            command="CDR",
            session_id=session.pk,
            defaults={"request": {}, "target": {"session_id": session.authorization_reference}, "response_url": ""},
        )
        if not created and sent.state == RoamingCommand.State.DELIVERED:
            return True
        body = cdr_body(session, start)
        client = OicpClient(connection)
        try:
            answer = client.call(OicpOperation.CHARGE_DETAIL_RECORD, body)
        finally:
            client.close()
        state = RoamingCommand.State.DELIVERED if answer.get("Result") else RoamingCommand.State.UNDELIVERED
        RoamingCommand.objects.filter(pk=sent.pk).update(
            request=body, result=answer, state=state, attempts=sent.attempts + 1, updated_at=timezone.now()
        )
    return True


# --------------------------------------------------------------------------- we are EMP (apps/roaming/oicp/emp.py)


def emp_charge_detail_record(request: dict[str, Any]) -> Answer:
    code, info, _cdr = emp.charge_detail_record(request)
    return Answer(code, info, session_id=str(request["SessionID"]))


def emp_charging_notification(request: dict[str, Any]) -> Answer:
    code, info = emp.charging_notification(request)
    return Answer(code, info, session_id=str(request["SessionID"]))


# --------------------------------------------------------------------------- charging notifications (we are CPO)

PROGRESS_EVERY_S = 300  # Hubject: at least 5 minutes between two Progress notifications of a session


def error_type(error_code: str) -> str:
    """OICP's ErrorType of an OCPP 1.6 ChargePointErrorCode: the driver can fix a connector lock (re-plug); anything
    else needs the station looked at."""
    return "ConnectorError" if error_code in CONNECTOR_ERRORS else "CriticalError"


def notification_body(
    session: ChargingSession, start: RoamingCommand, kind: str, *, error_code: str = "", info: str = ""
) -> dict[str, Any]:
    """The ChargingNotification (Start, Progress, End, or Error with the charger's error code) of a session Hubject
    started, as it stands now."""
    request = start.request["oicp"]
    connection: OicpConnection = start.partner.oicp_connection
    if kind == "Error":
        error: dict[str, Any] = {
            "Type": "Error",
            "SessionID": request["SessionID"],
            "CPOPartnerSessionID": str(session.pk),
            "Identification": request["Identification"],
            "OperatorID": connection.operator_id,
            "EvseID": request.get("EvseID") or (session.evse.evse_uid if session.evse else ""),
            "ErrorType": error_type(error_code),
            "ErrorAdditionalInfo": (info or f"OCPP error code {error_code or 'unknown'}")[:250],
        }
        if request.get("EMPPartnerSessionID"):
            error["EMPPartnerSessionID"] = request["EMPPartnerSessionID"]
        return error
    body: dict[str, Any] = {
        "Type": kind,
        "SessionID": request["SessionID"],
        "CPOPartnerSessionID": str(session.pk),
        "Identification": request["Identification"],
        "EvseID": request.get("EvseID") or (session.evse.evse_uid if session.evse else ""),
        "OperatorID": connection.operator_id,
        "ChargingStart": _stamp(session.started_at),
        "SessionStart": _stamp(session.started_at),
        "MeterValueStart": float(Decimal(session.meter_start_wh) / 1000),
    }
    if request.get("EMPPartnerSessionID"):
        body["EMPPartnerSessionID"] = request["EMPPartnerSessionID"]
    now = timezone.now()
    last_wh = session.last_meter_wh if session.last_meter_wh is not None else session.meter_start_wh
    if kind == "Progress":
        body["EventOccurred"] = _stamp(now)
        body["ChargingDuration"] = int((now - session.started_at).total_seconds() * 1000)
        body["ConsumedEnergyProgress"] = float(Decimal(max(0, last_wh - session.meter_start_wh)) / 1000)
    elif kind == "End":
        end = session.stopped_at or now
        stop_wh = session.meter_stop_wh if session.meter_stop_wh is not None else last_wh
        body.update(
            ChargingEnd=_stamp(end),
            SessionEnd=_stamp(end),
            MeterValueEnd=float(Decimal(stop_wh) / 1000),
            ConsumedEnergy=float(Decimal(max(0, stop_wh - session.meter_start_wh)) / 1000),
        )
    return body


def notification_send(*, session_id: int, kind: str, error_code: str = "", info: str = "") -> bool:
    """POST a ChargingNotification of a session Hubject started (False: not such a session, or the connection
    does not send notifications). The EMP's live view is fed by these; a failed one is not retried (the next
    Progress, the End and the CDR carry the newer state)."""
    found = hubject_session(session_id, running=kind != "End")
    if found is None:
        return False
    session, start = found
    connection: OicpConnection = start.partner.oicp_connection
    if OicpOperation.CHARGING_NOTIFICATIONS not in connection.enabled_operations or not connection.enabled:
        return False
    client = OicpClient(connection)
    try:
        body = notification_body(session, start, kind, error_code=error_code, info=info)
        client.call(OicpOperation.CHARGING_NOTIFICATIONS, body)
    finally:
        client.close()
    return True
