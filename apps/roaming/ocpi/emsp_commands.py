"""OCPI 2.2.1 commands module, Sender interface (we are eMSP; mod_commands.asciidoc): our drivers start, stop,
reserve, cancel and unlock on a CPO partner's EVSEs.

A command is recorded (`roaming.EmspCommand`, with the driver's `charging.PartnerSession` in its "requested" state),
committed, then POSTed to the CPO's commands Receiver `{commands}/{command}` with our `response_url`
`/ocpi/emsp/2.2.1/commands/{command}/{uid}`, outside any transaction (the CPO may POST its result before it answers
us). The CPO's synchronous CommandResponse decides at once when it is not ACCEPTED; when it is, its CommandResult
arrives at the response_url within the CPO's `timeout`, or the command times out (`commands_expire`, beat and a
countdown task, `timeout` + OCPI_COMMAND_RESULT_MARGIN seconds). A call that fails (unreachable, HTTP error, an
OCPI status other than 1000, an answer that is not a CommandResponse) is the outcome ERROR.

What each outcome means for the driver is the PartnerSession's state, with the command, the outcome and the CPO's
message in `state_reason` ("START_SESSION EVSE_OCCUPIED: ..."):

| command            | while it runs    | ACCEPTED      | other outcomes                                          |
| ------------------ | ---------------- | ------------- | ------------------------------------------------------- |
| START_SESSION      | requested        | accepted      | rejected, not_supported, evse_occupied, evse_inoperative, |
|                    |                  |               | timeout; failed (FAILED, ERROR, UNKNOWN_*, others)      |
| RESERVE_NOW        | reserving        | RESERVATION   | as START_SESSION; CANCELED_RESERVATION: canceled        |
| STOP_SESSION       | stop_requested   | stop_accepted | back to the state before (it goes on), with the reason  |
| CANCEL_RESERVATION | cancel_requested | canceled      | CANCELED_/UNKNOWN_RESERVATION: canceled; others: back   |
|                    |                  |               | to RESERVATION, with the reason                         |
| UNLOCK_CONNECTOR   | (unchanged)      | (unchanged)   | (unchanged); the outcome is in the reason and command   |

A result never undoes what the CPO reported meanwhile (its session PUT/PATCH moves the same row to PENDING, ACTIVE,
COMPLETED ...): a state is only set from the state the command left. A duplicate CommandResult changes nothing; a
late one (after our timeout) is taken. A result for a uid we did not send this partner is 2003 (HTTP 404), a
malformed one 2001, and nothing changes.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Replace, Upper
from django.http import HttpResponse
from django.utils import timezone

from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.customers.authorization import AuthorizationStatus, token_status
from apps.customers.models import Driver, Token, TokenSource
from apps.roaming import services as roaming_services
from apps.roaming.models import CommandType, EmspCommand, PartnerStatus, RoamingPartner, Role
from apps.roaming.ocpi import client
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.emsp_tokens import token_object
from apps.roaming.ocpi.transport import (
    UNKNOWN_LOCATION,
    OcpiError,
    OcpiRequest,
    envelope,
    ocpi_datetime,
    ocpi_view,
)
from apps.sessions import commands as session_commands
from apps.sessions import services as session_services
from apps.sessions.models import PartnerSession, PartnerSessionState
from apps.stations.models import PartnerEvse, PartnerEvseStatus, PartnerLocation

logger = logging.getLogger(__name__)

S = PartnerSessionState
RESPONSE_TYPES = ("ACCEPTED", "NOT_SUPPORTED", "REJECTED", "UNKNOWN_SESSION")
RESULT_TYPES = (
    "ACCEPTED",
    "CANCELED_RESERVATION",
    "EVSE_OCCUPIED",
    "EVSE_INOPERATIVE",
    "FAILED",
    "NOT_SUPPORTED",
    "REJECTED",
    "TIMEOUT",
    "UNKNOWN_RESERVATION",
)
ERROR = "ERROR"  # our outcome of a call that failed
TIMEOUT = "TIMEOUT"
MAX_TIMEOUT_S = 86_400  # a CPO's `timeout` beyond a day is taken as a day


@dataclass(frozen=True)
class Plan:
    """What a command does to its session: `running` while it runs (None: unchanged), `accepted` on ACCEPTED, and
    `outcomes` for the others; an outcome not listed puts the session back in the state it had before."""

    running: str | None
    accepted: str | None
    outcomes: dict[str, str]


START_OUTCOMES: dict[str, str] = {
    "REJECTED": S.REJECTED,
    "NOT_SUPPORTED": S.NOT_SUPPORTED,
    "EVSE_OCCUPIED": S.EVSE_OCCUPIED,
    "EVSE_INOPERATIVE": S.EVSE_INOPERATIVE,
    "TIMEOUT": S.TIMEOUT,
    "FAILED": S.FAILED,
    "UNKNOWN_SESSION": S.FAILED,
    "UNKNOWN_RESERVATION": S.FAILED,
    "CANCELED_RESERVATION": S.FAILED,
    ERROR: S.FAILED,
}
PLANS: dict[str, Plan] = {
    CommandType.START_SESSION: Plan(S.REQUESTED, S.COMMAND_ACCEPTED, START_OUTCOMES),
    CommandType.RESERVE_NOW: Plan(
        S.RESERVE_REQUESTED, S.RESERVATION, {**START_OUTCOMES, "CANCELED_RESERVATION": S.CANCELED_RESERVATION}
    ),
    CommandType.STOP_SESSION: Plan(S.STOP_REQUESTED, S.STOP_ACCEPTED, {}),
    CommandType.CANCEL_RESERVATION: Plan(
        S.CANCEL_REQUESTED,
        S.CANCELED_RESERVATION,
        {"CANCELED_RESERVATION": S.CANCELED_RESERVATION, "UNKNOWN_RESERVATION": S.CANCELED_RESERVATION},
    ),
    CommandType.UNLOCK_CONNECTOR: Plan(None, None, {}),
}
# where a driver can stop or cancel from
STOPPABLE = (S.COMMAND_ACCEPTED, S.PENDING, S.ACTIVE, S.STOP_ACCEPTED)
CANCELLABLE = (S.RESERVATION,)


def send_timeout() -> float:
    """How long we wait for the CPO's synchronous CommandResponse (seconds)."""
    return float(getattr(settings, "OCPI_HTTP_TIMEOUT", 10))


def result_margin() -> dt.timedelta:
    """What we give the CPO beyond its own `timeout` before a command is TIMEOUT."""
    return dt.timedelta(seconds=float(getattr(settings, "OCPI_COMMAND_RESULT_MARGIN", 30)))


def task_queue() -> str:
    return str(getattr(settings, "OCPI_TASK_QUEUE", "celery"))


# --------------------------------------------------------------------------- the partner, the EVSE, the driver


def commands_url(partner: RoamingPartner) -> str:
    """The CPO's commands Receiver, or a 409 saying why we cannot command this partner."""
    problem = ""
    if partner.status != PartnerStatus.REGISTERED:
        problem = f"the roaming partner {partner.party} is {partner.get_status_display().lower()}, not registered"
    elif Role.EMSP not in (partner.our_roles or []):
        problem = f"we are not eMSP towards the roaming partner {partner.party}"
    elif "commands" not in (partner.enabled_modules or []):
        problem = f"the commands module is not enabled for the roaming partner {partner.party}"
    url = partner.endpoint_url("commands", "RECEIVER") if not problem else None
    if not problem and not url:
        problem = f"the roaming partner {partner.party} has no commands endpoint"
    if problem:
        raise Conflict(f"Cannot send commands: {problem}.", code="partner_unavailable")
    assert url is not None
    return url.rstrip("/")


def _candidates(text: str) -> list[str]:
    """An EVSE id as written or read from a QR code: the id itself, or a URL ending in it."""
    text = text.strip().rstrip("/")
    found: list[str] = []
    for candidate in (text, text.rsplit("/", 1)[-1], text.rsplit("=", 1)[-1]):
        if candidate and candidate not in found:
            found.append(candidate)
    return found


def partner_evse_find(
    *,
    tenant_id: int,
    evse_id: str = "",
    partner_id: int | None = None,
    location_id: str = "",
    evse_uid: str = "",
) -> PartnerEvse:
    """A partner EVSE of the tenant's partners: by its eMI3 EVSE id (or a QR payload naming it), or by the partner,
    its Location.id and EVSE.uid. 404 `partner_evse_not_found` otherwise."""
    evses = PartnerEvse.objects.select_related("location__partner__tenant").filter(location__tenant_id=tenant_id)
    evse: PartnerEvse | None = None
    if evse_id:
        for candidate in _candidates(evse_id):
            evse = evses.filter(evse_id=candidate).order_by("pk").first()  # as stored (indexed)
            if evse is None:  # typed: any case, with or without the eMI3 separators
                bare = evses.annotate(bare=Replace(Upper("evse_id"), Value("*"), Value("")))
                evse = bare.filter(bare=candidate.replace("*", "").upper()).order_by("pk").first()
            if evse is not None:
                break
    elif partner_id is not None and location_id and evse_uid:
        evse = (
            evses.filter(location__partner_id=partner_id, location__ocpi_id__iexact=location_id, uid__iexact=evse_uid)
            .order_by("pk")
            .first()
        )
    if evse is None:
        raise NotFound("No partner EVSE matches.", code="partner_evse_not_found")
    return evse


def driver_token(*, driver: Driver, token_uid: str | None) -> Token:
    """The driver's own token that may charge now (as on our own chargers: valid, not blocked or expired, its
    driver, customer and contract active). 422 `token_unknown` without one, 403 `token_<status>` when refused."""
    token = session_commands.driver_token(driver=driver, uid=token_uid)
    if token.source != TokenSource.LOCAL:
        raise ApplicationError(
            f"Token {token.uid} is another operator's; use one of ours.", code="token_unknown", status_code=422
        )
    token = Token.objects.select_related("driver", "business_customer", "business_contract").get(pk=token.pk)
    status, reason = token_status(token=token, at=timezone.now())
    if status != AuthorizationStatus.ACCEPTED:
        raise ApplicationError(
            f"Token {token.uid} may not charge: {status} ({reason}).",
            code=f"token_{status.lower()}",
            status_code=403,
        )
    return token


def _connector(evse: PartnerEvse, connector_id: str | None) -> str:
    """The connector to send: the one named (it must be the EVSE's), else the only one, else none (the CPO chooses;
    400 when the EVSE says START_SESSION_CONNECTOR_REQUIRED)."""
    ids = list(evse.connectors.order_by("connector_id").values_list("connector_id", flat=True))
    if connector_id:
        match = next((c for c in ids if c.lower() == connector_id.lower()), None)
        if match is None:
            raise ApplicationError(
                f"EVSE {evse.evse_id or evse.uid} has no connector {connector_id!r}.",
                code="validation_error",
                fields={"connector_id": [f"One of: {', '.join(ids) or 'none'}."]},
            )
        return match
    if len(ids) == 1:
        return ids[0]
    if "START_SESSION_CONNECTOR_REQUIRED" in (evse.capabilities or []):
        raise ApplicationError(
            "This EVSE needs a connector to be named.",
            code="validation_error",
            fields={"connector_id": [f"Required here: one of {', '.join(ids)}."]},
        )
    return ""


def _usable(evse: PartnerEvse) -> None:
    if evse.status == PartnerEvseStatus.REMOVED:
        raise Conflict(f"EVSE {evse.evse_id or evse.uid} has been removed by its operator.", code="evse_removed")


# --------------------------------------------------------------------------- sending


def _response_url(base_url: str, command: str, uid: str) -> str:
    return f"{base_url.rstrip('/')}/ocpi/emsp/2.2.1/commands/{command}/{uid}"


def _record(
    *,
    partner: RoamingPartner,
    session: PartnerSession,
    command: str,
    body: dict[str, Any],
    base_url: str,
    uid: str,
    previous_state: str = "",
) -> EmspCommand:
    body = {"response_url": _response_url(base_url, command, uid), **body}
    return EmspCommand.objects.create(
        partner=partner,
        session=session,
        uid=uid,
        command=command,
        request=body,
        deadline=timezone.now() + dt.timedelta(seconds=send_timeout()) + result_margin(),
        previous_state=previous_state,
    )


def _message(texts: Any) -> str:
    """The English text of a DisplayText list, else the first one."""
    if not isinstance(texts, list):
        return ""
    items = [t for t in texts if isinstance(t, dict) and isinstance(t.get("text"), str)]
    english = next((t for t in items if t.get("language") == "en"), None)
    chosen = english or (items[0] if items else None)
    return str(chosen["text"])[:512] if chosen else ""


def _parse_response(data: Any) -> tuple[str, int, str]:
    """(result, timeout, message) of a CommandResponse, or OcpiError when it is not one."""
    obj = f.as_object(data, "data")
    result = f.enum(obj, "result", "data", RESPONSE_TYPES)
    timeout = f.integer(obj, "timeout", "data")
    texts = f.display_texts(obj, "message", "data")
    assert result is not None
    assert timeout is not None
    return result, min(max(int(timeout), 0), MAX_TIMEOUT_S), _message(texts)


def send(*, command_id: int) -> EmspCommand:
    """POST a recorded command to the CPO (outside any transaction) and take its synchronous CommandResponse."""
    row = EmspCommand.objects.select_related("partner").get(pk=command_id)
    partner = row.partner
    try:
        url = f"{commands_url(partner)}/{row.command}"
        answer = client.call(
            "POST",
            url,
            token=partner.their_token,
            token_style=partner.token_style,
            body=row.request,
            routing=partner,
            timeout=send_timeout(),
        )
        result, timeout, message = _parse_response(answer.data)
    except (client.PartnerCallError, Conflict) as error:
        roaming_services.partner_error_record(partner_id=partner.pk, module="commands", message=error.message)
        return finish(command_id=row.pk, result=ERROR, message=error.message)
    except OcpiError as error:
        text = f"The operator's answer is not a CommandResponse: {error.message}"
        roaming_services.partner_error_record(partner_id=partner.pk, module="commands", message=text)
        return finish(command_id=row.pk, result=ERROR, message=text, response=answer.data)
    if result != "ACCEPTED":
        return finish(command_id=row.pk, result=result, message=message, response=answer.data)
    deadline = timezone.now() + dt.timedelta(seconds=timeout) + result_margin()
    with transaction.atomic():
        moved = EmspCommand.objects.filter(pk=row.pk, state=EmspCommand.State.SENDING).update(
            state=EmspCommand.State.PENDING, response=answer.data, deadline=deadline, updated_at=timezone.now()
        )
        if not moved:  # the result came first: keep it, note the answer
            EmspCommand.objects.filter(pk=row.pk, response__isnull=True).update(response=answer.data)
        else:
            countdown = (deadline - timezone.now()).total_seconds() + 1
            transaction.on_commit(lambda: _expire_later(row.pk, countdown))
    row.refresh_from_db()
    return row


def _expire_later(command_id: int, countdown: float) -> None:
    from apps.roaming import tasks  # the task calls this module

    tasks.emsp_command_expire.apply_async((command_id,), countdown=max(countdown, 0), queue=task_queue())


# --------------------------------------------------------------------------- outcomes


def _reason(command: str, result: str, message: str) -> str:
    return f"{command} {result}" + (f": {message}" if message else "")


def _target(row: EmspCommand, result: str) -> str | None:
    plan = PLANS[row.command]
    if plan.running is None:
        return None
    if result == "ACCEPTED":
        return plan.accepted
    return plan.outcomes.get(result, row.previous_state or None)


def _apply(row: EmspCommand, result: str, message: str, *, only_from: str | None) -> None:
    """The session's state after `result`, from the state the command left (`only_from`)."""
    reason = _reason(row.command, result, message)
    target = _target(row, result)
    if target is None:  # a command that leaves the state alone: the outcome is the reason
        current = PartnerSession.objects.filter(pk=row.session_id).values_list("state", flat=True).first()
        if current is not None:
            session_services.partner_session_state_set(
                session_id=row.session_id, state=current, reason=reason, only_from=[current]
            )
        return
    if only_from is not None:
        session_services.partner_session_state_set(
            session_id=row.session_id, state=target, reason=reason, only_from=[only_from]
        )


def finish(
    *,
    command_id: int,
    result: str,
    message: str,
    response: Any = None,
    result_body: Any = None,
    expired: bool = False,
    now: dt.datetime | None = None,
) -> EmspCommand:
    """The outcome of a command: stored once (a command already done is returned as it is, except that a CommandResult
    arriving after our own timeout is taken) and applied to its session."""
    with transaction.atomic():
        row = EmspCommand.objects.select_for_update().get(pk=command_id)
        plan = PLANS[row.command]
        if row.state == EmspCommand.State.DONE:
            late = result_body is not None and row.result == TIMEOUT and row.result_body is None
            if not late:
                return row
            only_from = _target(row, TIMEOUT)  # the state our timeout left
        else:
            if expired and row.deadline > (now or timezone.now()):
                return row  # the answer came meanwhile and moved the deadline
            only_from = plan.running
        row.state = EmspCommand.State.DONE
        row.result = result
        row.message = message[:512]
        if response is not None and row.response is None:
            row.response = response
        if result_body is not None:
            row.result_body = result_body
        row.save(update_fields=["state", "result", "message", "response", "result_body", "updated_at"])
        _apply(row, result, message, only_from=only_from)
    return row


def result_receive(*, partner: RoamingPartner, command: str, uid: str, body: Any) -> EmspCommand:
    """A CommandResult the CPO POSTed to our response_url: 2003 (HTTP 404) for a uid we did not send this partner
    for this command, 2001 for a malformed body; a duplicate changes nothing."""
    row = EmspCommand.objects.filter(partner=partner, uid=uid, command=command).first()
    if row is None:
        raise OcpiError(UNKNOWN_LOCATION, f"No {command} command {uid!r} was sent to you.", http_status=404)
    obj = f.as_object(body, "CommandResult")
    result = f.enum(obj, "result", "CommandResult", RESULT_TYPES)
    texts = f.display_texts(obj, "message", "CommandResult")
    assert result is not None
    return finish(command_id=row.pk, result=result, message=_message(texts), result_body=obj)


def commands_expire(*, now: dt.datetime | None = None) -> int:
    """TIMEOUT for every command whose result did not come in time (beat, and a countdown task per command)."""
    now = now or timezone.now()
    ids = list(
        EmspCommand.objects.filter(deadline__lte=now)
        .exclude(state=EmspCommand.State.DONE)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    expired = 0
    for pk in ids:
        row = finish(
            command_id=pk,
            result=TIMEOUT,
            message="No result from the operator within its timeout.",
            expired=True,
            now=now,
        )
        expired += row.result == TIMEOUT and row.result_body is None
    return expired


# --------------------------------------------------------------------------- what our drivers do


def _new_id() -> str:
    return uuid.uuid4().hex


def _sent(row: EmspCommand) -> PartnerSession:
    send(command_id=row.pk)
    return PartnerSession.objects.select_related("partner").get(pk=row.session_id)


def _commandable(driver: Driver, evse: PartnerEvse) -> tuple[PartnerLocation, RoamingPartner]:
    """The EVSE's location and partner, when the driver's tenant may command it there."""
    location = evse.location
    partner = location.partner
    if location.tenant_id != driver.tenant_id:
        raise NotFound("No partner EVSE matches.", code="partner_evse_not_found")
    commands_url(partner)
    _usable(evse)
    return location, partner


def _open(
    *,
    partner: RoamingPartner,
    location: PartnerLocation,
    evse: PartnerEvse,
    token: Token,
    command: str,
    state: str,
    connector_id: str,
    reference: str,
    body: dict[str, Any],
    base_url: str,
    **session_fields: Any,
) -> PartnerSession:
    """The driver's PartnerSession and the command that opens it (START_SESSION, RESERVE_NOW), recorded in one
    transaction, then sent."""
    with transaction.atomic():
        session = session_services.partner_session_request(
            partner_id=partner.pk,
            token=token,
            state=state,
            country_code=location.country_code,
            party_id=location.party_id,
            location_id=location.pk,
            location_ocpi_id=location.ocpi_id,
            evse_uid=evse.uid,
            connector_id=connector_id,
            authorization_reference=reference,
            **session_fields,
        )
        row = _record(partner=partner, session=session, command=command, body=body, base_url=base_url, uid=_new_id())
    return _sent(row)


def session_start(
    *, driver: Driver, evse: PartnerEvse, connector_id: str | None, token_uid: str | None, base_url: str
) -> PartnerSession:
    """START_SESSION on a partner EVSE for our driver: the PartnerSession (state `requested`, or already the CPO's
    refusal) with our authorization_reference."""
    location, partner = _commandable(driver, evse)
    token = driver_token(driver=driver, token_uid=token_uid)
    connector = _connector(evse, connector_id)
    reference = _new_id()
    body: dict[str, Any] = {
        "token": token_object(token, partner, issuer=partner.tenant.name),
        "location_id": location.ocpi_id,
        "evse_uid": evse.uid,
    }
    if connector:
        body["connector_id"] = connector
    body["authorization_reference"] = reference
    return _open(
        partner=partner, location=location, evse=evse, token=token, command=CommandType.START_SESSION,
        state=S.REQUESTED, connector_id=connector, reference=reference, body=body, base_url=base_url,
    )  # fmt: skip


def reservation_create(
    *, driver: Driver, evse: PartnerEvse, expires_at: dt.datetime, token_uid: str | None, base_url: str
) -> PartnerSession:
    """RESERVE_NOW of a partner EVSE until `expires_at`: a PartnerSession in `reserving`; our reservation_id is its
    authorization_reference."""
    location, partner = _commandable(driver, evse)
    if expires_at <= timezone.now():
        raise ApplicationError(
            "The reservation must end in the future.",
            code="validation_error",
            fields={"expires_at": ["Must be in the future."]},
        )
    token = driver_token(driver=driver, token_uid=token_uid)
    reference = _new_id()
    body: dict[str, Any] = {
        "token": token_object(token, partner, issuer=partner.tenant.name),
        "expiry_date": ocpi_datetime(expires_at),
        "reservation_id": reference,
        "location_id": location.ocpi_id,
        "evse_uid": evse.uid,
        "authorization_reference": reference,
    }
    return _open(
        partner=partner, location=location, evse=evse, token=token, command=CommandType.RESERVE_NOW,
        state=S.RESERVE_REQUESTED, connector_id="", reference=reference, body=body, base_url=base_url,
        reservation_expires_at=expires_at,
    )  # fmt: skip


def _follow_up(
    *, session: PartnerSession, command: str, allowed: tuple[str, ...], body: dict[str, Any], base_url: str
) -> PartnerSession:
    """STOP_SESSION, CANCEL_RESERVATION, UNLOCK_CONNECTOR on an existing partner session."""
    partner = RoamingPartner.objects.get(pk=session.partner_id)
    commands_url(partner)
    plan = PLANS[command]
    with transaction.atomic():
        locked = PartnerSession.objects.select_for_update().get(pk=session.pk)
        if allowed and locked.state not in allowed:
            raise Conflict(
                f"Partner session {locked.pk} is {locked.get_state_display().lower()} ({locked.state}): "
                f"{command} needs one of {', '.join(allowed)}.",
                code="partner_session_state",
            )
        if plan.running is not None:
            session_services.partner_session_state_set(
                session_id=locked.pk, state=plan.running, reason="", only_from=[locked.state]
            )
        row = _record(
            partner=partner,
            session=locked,
            command=command,
            body=body,
            base_url=base_url,
            uid=_new_id(),
            previous_state=locked.state,
        )
    return _sent(row)


def session_stop(*, session: PartnerSession, base_url: str) -> PartnerSession:
    """STOP_SESSION of a running partner session (the CPO's Session.id is needed: it comes with its session PUT)."""
    if not session.ocpi_id:
        raise Conflict(
            "The operator has not reported this session yet (no session id to stop); try again in a moment.",
            code="partner_session_unknown",
        )
    return _follow_up(
        session=session,
        command=CommandType.STOP_SESSION,
        allowed=STOPPABLE,
        body={"session_id": session.ocpi_id},
        base_url=base_url,
    )


def reservation_cancel(*, session: PartnerSession, base_url: str) -> PartnerSession:
    """CANCEL_RESERVATION of a partner reservation (our reservation_id: its authorization_reference)."""
    return _follow_up(
        session=session,
        command=CommandType.CANCEL_RESERVATION,
        allowed=CANCELLABLE,
        body={"reservation_id": session.authorization_reference},
        base_url=base_url,
    )


def connector_unlock(*, session: PartnerSession, base_url: str) -> PartnerSession:
    """UNLOCK_CONNECTOR of the connector of a partner session (the one it started on, else the EVSE's only one)."""
    connector = session.connector_id
    if not connector:
        evse = PartnerEvse.objects.filter(
            location_id=session.location_id, uid=session.evse_uid, location__isnull=False
        ).first()
        connector = _connector(evse, None) if evse is not None else ""
    if not (session.location_ocpi_id and session.evse_uid and connector):
        raise Conflict(
            "No connector is known for this session: the operator cannot be asked to unlock it.",
            code="partner_session_no_connector",
        )
    return _follow_up(
        session=session,
        command=CommandType.UNLOCK_CONNECTOR,
        allowed=(),
        body={"location_id": session.location_ocpi_id, "evse_uid": session.evse_uid, "connector_id": connector},
        base_url=base_url,
    )


# --------------------------------------------------------------------------- our response_url (the Sender interface)


@ocpi_view(methods=["POST"], module="commands", functional=True)
def command_result(ocpi: OcpiRequest, command: str, uid: str) -> HttpResponse:
    result_receive(partner=ocpi.partner, command=command, uid=uid, body=ocpi.json_body())
    return envelope(ocpi.http, None)
