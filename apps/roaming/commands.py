"""Commands a partner sends us (OCPI commands module, we are Receiver; mod_commands.asciidoc), and the asynchronous
results of charging profile requests (chargingprofiles module): recorded, run against the charger in Celery, and the
result POSTed to the partner's `response_url`.

- `command_accept` records the request (a `RoamingCommand`) and enqueues `roaming.command_run` on commit; the view
  has already answered the synchronous CommandResponse (ACCEPTED with the timeout).
- `command_execute` (in the task) turns it into OCPP through `sessions`/`stations` (RemoteStartTransaction,
  RemoteStopTransaction, ReserveNow, CancelReservation, UnlockConnector), waits for the charger at most
  `OCPI_COMMAND_TIMEOUT` seconds, and stores the CommandResult: ACCEPTED, REJECTED, EVSE_OCCUPIED, EVSE_INOPERATIVE,
  FAILED, NOT_SUPPORTED, UNKNOWN_RESERVATION, or TIMEOUT when the charger did not answer in time. Run once: a task
  that runs again finds the result stored and only delivers it.
- `command_deliver` POSTs the result; the task retries with backoff when the partner cannot take it, then gives up
  (state `undelivered`, the partner's last error).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.customers import services as customer_services
from apps.customers.authorization import RoamingToken
from apps.customers.models import Token
from apps.roaming import services
from apps.roaming.models import CommandType, PartnerReservation, RoamingCommand, RoamingPartner
from apps.roaming.ocpi import client
from apps.roaming.tokens import TokenData
from apps.sessions import commands as session_commands
from apps.sessions.models import ChargingSession, Reservation
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, ChargePointStatus, Command, CommandStatus, Evse

logger = logging.getLogger(__name__)

INOPERATIVE = {ChargePointStatus.FAULTED, ChargePointStatus.UNAVAILABLE}


def charger_timeout() -> float:
    """How long the charger gets to answer a command (seconds)."""
    return float(getattr(settings, "OCPI_COMMAND_TIMEOUT", 30))


def response_timeout() -> int:
    """The CommandResponse `timeout`: the charger's time, plus the grace of the command transport and the POST."""
    return int(charger_timeout() + station_services.REPLY_GRACE + 10)


def task_queue() -> str:
    return str(getattr(settings, "OCPI_TASK_QUEUE", "celery"))


@dataclass(frozen=True)
class Result:
    result: str
    message: str = ""

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.result}
        if self.message:
            body["message"] = [{"language": "en", "text": self.message[:512]}]
        return body


# --------------------------------------------------------------------------- accept (the view's transaction)


def command_accept(
    *,
    partner: RoamingPartner,
    command: str,
    request: dict[str, Any],
    response_url: str,
    charge_point: ChargePoint | None,
    session_id: int | None = None,
    target: dict[str, Any] | None = None,
    module: str = "commands",
) -> RoamingCommand:
    """Record a partner's command and run it in Celery once committed."""
    with transaction.atomic():
        row = RoamingCommand.objects.create(
            partner=partner,
            module=module,
            command=command,
            request=request,
            response_url=response_url,
            charge_point=charge_point,
            session_id=session_id,
            target=target or {},
            timeout_s=response_timeout(),
        )
        transaction.on_commit(lambda: _enqueue(row.pk))
    return row


def _enqueue(roaming_command_id: int) -> None:
    from apps.roaming import tasks  # the task calls this module; imported late to keep the import graph acyclic

    tasks.command_run.apply_async(args=(roaming_command_id,), queue=task_queue())


# --------------------------------------------------------------------------- execute (the task)


def result_of(command: Command) -> Result:
    """The CommandResult of an answered OCPP command."""
    answer = str((command.response or {}).get("status") or "")
    if command.status == CommandStatus.ACCEPTED:
        return Result("ACCEPTED")
    if command.status == CommandStatus.TIMEOUT:
        return Result("TIMEOUT", f"The charge point did not answer {command.action} in time.")
    if command.status == CommandStatus.OFFLINE:
        return Result("FAILED", "The charge point is not connected.")
    if command.status == CommandStatus.ERROR:
        if "NotSupported" in command.error or "NotImplemented" in command.error:
            return Result("NOT_SUPPORTED", f"The charge point does not support {command.action}.")
        return Result("FAILED", f"The charge point failed: {command.error}"[:512])
    if answer == "Occupied":
        return Result("EVSE_OCCUPIED", "The EVSE is occupied.")
    if answer in ("Faulted", "Unavailable"):
        return Result("EVSE_INOPERATIVE", f"The EVSE is {answer.lower()}.")
    if answer == "UnlockFailed":
        return Result("FAILED", "The connector could not be unlocked.")
    if answer == "NotSupported":
        return Result("NOT_SUPPORTED", f"The charge point does not support {command.action}.")
    if command.action == "CancelReservation":
        return Result("UNKNOWN_RESERVATION", "The charge point holds no such reservation.")
    return Result("REJECTED", f"The charge point answered {answer or command.status}.")


def _evse(row: RoamingCommand) -> Evse | None:
    evse_id = row.target.get("evse")
    return Evse.objects.filter(pk=evse_id).first() if evse_id else None


def roaming_token(data: TokenData) -> RoamingToken:
    return RoamingToken(
        uid=data.uid,
        contract_id=data.contract_id,
        issuer=data.issuer,
        country_code=data.country_code,
        party_id=data.party_id,
        type=data.type,
        visual_number=data.visual_number,
        group_id=data.group_id,
        valid=data.valid,
        whitelist=data.whitelist,
        language=data.language,
        default_profile_type=data.default_profile_type,
    )


def _token(row: RoamingCommand) -> Token:
    """The command's token, cached as the partner's roaming token (the session and its CDR carry it)."""
    from apps.roaming.ocpi.tokens import parse_token

    data = parse_token(row.request["token"])  # validated when the command was accepted
    return customer_services.token_cache_roaming(tenant=row.partner.tenant, data=roaming_token(data))


def _start_session(row: RoamingCommand) -> Result:
    assert row.charge_point is not None
    evse = _evse(row)
    connector_id = evse.connector_id if evse is not None else None
    if evse is not None and evse.status in INOPERATIVE:
        return Result("EVSE_INOPERATIVE", f"The EVSE is {evse.status.lower()}.")
    if connector_id is not None and session_commands.connector_busy(
        charge_point=row.charge_point, connector_id=connector_id
    ):
        return Result("EVSE_OCCUPIED", "A session is running on this EVSE.")
    token = _token(row)
    command, _ = session_commands.session_remote_start_token(
        token=token,
        charge_point=row.charge_point,
        connector_id=connector_id,
        timeout=charger_timeout(),
        authorization_reference=str(row.request.get("authorization_reference") or ""),
    )
    _note_command(row, command)
    return result_of(command)


def _stop_session(row: RoamingCommand) -> Result:
    assert row.session_id is not None
    session = ChargingSession.objects.select_related("charge_point").get(pk=row.session_id)
    command = session_commands.session_remote_stop_command(session=session, timeout=charger_timeout())
    _note_command(row, command)
    return result_of(command)


def _unlock(row: RoamingCommand) -> Result:
    assert row.charge_point is not None
    evse = _evse(row)
    assert evse is not None
    command = station_services.send_command(
        charge_point=row.charge_point,
        action="UnlockConnector",
        payload={"connectorId": evse.connector_id},
        timeout=charger_timeout(),
        source="roaming",
    )
    _note_command(row, command)
    return result_of(command)


def _reserve(row: RoamingCommand) -> Result:
    assert row.charge_point is not None
    evse = _evse(row)
    token = _token(row)
    expires_at = dt.datetime.fromisoformat(row.target["expires_at"])
    their_id = str(row.request["reservation_id"])
    previous = PartnerReservation.objects.filter(
        partner=row.partner, charge_point=row.charge_point, their_reservation_id=their_id
    ).first()
    if previous is not None:  # "a reservation with the same id replaces it": the old one goes first
        with contextlib.suppress(ApplicationError):  # no longer holding: nothing to replace
            session_commands.reservation_cancel(reservation=previous.reservation, timeout=charger_timeout())
        PartnerReservation.objects.filter(pk=previous.pk).delete()
    try:
        reservation = session_commands.reservation_create_for_token(
            token=token,
            charge_point=row.charge_point,
            connector_id=evse.connector_id if evse is not None else 0,
            expires_at=expires_at,
        )
    except ApplicationError as error:
        if error.code in ("connector_busy", "connector_reserved"):
            return Result("EVSE_OCCUPIED", error.message)
        raise
    PartnerReservation.objects.create(
        partner=row.partner, charge_point=row.charge_point, their_reservation_id=their_id, reservation=reservation
    )
    # refused or offline: the reservation row says why, the command row what the charger answered
    with contextlib.suppress(station_services.ChargePointOffline, ApplicationError):
        session_commands.reservation_send(reservation=reservation, timeout=charger_timeout())
    reservation.refresh_from_db()
    command = Command.objects.filter(pk=reservation.command_id).first() if reservation.command_id else None
    if command is None:
        return Result("FAILED", reservation.detail or "The reservation could not be sent.")
    _note_command(row, command)
    return result_of(command)


def _cancel_reservation(row: RoamingCommand) -> Result:
    assert row.charge_point is not None
    link = PartnerReservation.objects.select_related("reservation").get(pk=row.target["partner_reservation"])
    try:
        reservation = session_commands.reservation_cancel(reservation=link.reservation, timeout=charger_timeout())
    except ApplicationError as error:
        return Result("UNKNOWN_RESERVATION", error.message)
    command = (
        Command.objects.filter(pk=reservation.command_id, action="CancelReservation").first()
        if reservation.command_id is not None
        else None
    )
    if command is None:
        return Result("CANCELED_RESERVATION", "The reservation was cancelled; the charger had not confirmed it.")
    _note_command(row, command)
    result = result_of(command)
    return Result("CANCELED_RESERVATION") if result.result == "ACCEPTED" else result


RUNNERS: dict[str, Callable[[RoamingCommand], Result]] = {
    CommandType.START_SESSION: _start_session,
    CommandType.STOP_SESSION: _stop_session,
    CommandType.UNLOCK_CONNECTOR: _unlock,
    CommandType.RESERVE_NOW: _reserve,
    CommandType.CANCEL_RESERVATION: _cancel_reservation,
}


def _note_command(row: RoamingCommand, command: Command) -> None:
    RoamingCommand.objects.filter(pk=row.pk).update(ocpp_command_id=command.pk, updated_at=timezone.now())


def command_execute(
    *, roaming_command_id: int, runners: dict[str, Callable[[RoamingCommand], Any]] | None = None
) -> RoamingCommand:
    """Run a recorded command against the charger once and store its result (outside any transaction: the charger
    is waited for). A row that already has its result is returned as it is."""
    row = RoamingCommand.objects.select_related("partner__tenant", "charge_point").get(pk=roaming_command_id)
    if row.state != RoamingCommand.State.QUEUED:
        return row
    if runners is None and row.module == "chargingprofiles":
        from apps.roaming import chargingprofiles  # it uses this module's timeouts

        runners = chargingprofiles.RUNNERS
    runner = (runners or RUNNERS).get(row.command)
    try:
        if runner is None:
            outcome: Any = Result("NOT_SUPPORTED", f"{row.command} is not supported.")
        else:
            outcome = runner(row)
    except station_services.ChargePointOffline:
        outcome = Result("FAILED", "The charge point is not connected.")
    except ApplicationError as error:
        outcome = Result("REJECTED", error.message)
    except Exception as error:  # the partner still gets an answer; the traceback goes to the log
        logger.exception("OCPI %s %s failed", row.module, row.command)
        outcome = Result("FAILED", f"Internal error: {type(error).__name__}")
    body = outcome.json() if isinstance(outcome, Result) else outcome
    if row.module == "chargingprofiles":
        from apps.roaming import chargingprofiles

        body = chargingprofiles.as_profile_result(body)
    RoamingCommand.objects.filter(pk=row.pk, state=RoamingCommand.State.QUEUED).update(
        state=RoamingCommand.State.ANSWERED, result=body, updated_at=timezone.now()
    )
    row.refresh_from_db()
    return row


# --------------------------------------------------------------------------- deliver (the task, retried)


def command_deliver(*, roaming_command_id: int) -> RoamingCommand:
    """POST the stored result to the partner's response_url; raises client.PartnerCallError when they cannot take
    it (the task retries)."""
    row = RoamingCommand.objects.select_related("partner").get(pk=roaming_command_id)
    if row.state != RoamingCommand.State.ANSWERED:
        return row
    RoamingCommand.objects.filter(pk=row.pk).update(attempts=row.attempts + 1)
    partner = row.partner
    try:
        client.call(
            "POST",
            row.response_url,
            token=partner.their_token,
            token_style=partner.token_style,
            body=row.result,
            routing=partner,
        )
    except client.PartnerCallError as error:
        RoamingCommand.objects.filter(pk=row.pk).update(last_error=error.message[:500], updated_at=timezone.now())
        services.partner_error_record(partner_id=partner.pk, module=row.module, message=error.message)
        raise
    RoamingCommand.objects.filter(pk=row.pk).update(
        state=RoamingCommand.State.DELIVERED, last_error="", updated_at=timezone.now()
    )
    row.refresh_from_db()
    return row


def command_give_up(*, roaming_command_id: int) -> None:
    RoamingCommand.objects.filter(pk=roaming_command_id, state=RoamingCommand.State.ANSWERED).update(
        state=RoamingCommand.State.UNDELIVERED, updated_at=timezone.now()
    )


__all__ = ["Reservation", "Result", "command_accept", "command_deliver", "command_execute", "result_of"]
