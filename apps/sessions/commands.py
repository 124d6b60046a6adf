"""Services that command a charger for a session: reservations, remote start/stop, session limits.

Each one decides and records in a short transaction, then sends the OCPP command through
`stations.services.send_command` outside any transaction (the charger's answer is recorded by the process
holding its socket), then records the outcome. A refused request raises `ApplicationError` before anything
is written or sent.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.customers.models import Driver, Token, Vehicle, wire_id_for
from apps.sessions import services
from apps.sessions.models import (
    HOLDING_RESERVATION,
    RUNNING_STATUSES,
    ChargingSession,
    LimitOutcome,
    Reservation,
    ReservationStatus,
    SessionStatus,
    StartPreferences,
)
from apps.stations import services as station_services
from apps.stations.decommission import ensure_in_service
from apps.stations.models import ChargePoint, Command, Connector, Evse
from apps.tenants.models import Tenant

COMMAND_TIMEOUT = 15.0
ZERO_CURRENT_PROFILE_ID = 900_000  # our TxProfile id for a held session (plus the transaction id)


def _ocpp_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- lookups


_EVSE_IN_TEXT = re.compile(r"([A-Z]{2}\*?[A-Z0-9]{3}\*?E[A-Z0-9*]+)", re.IGNORECASE)


def evse_from_qr(*, tenant: Tenant, payload: str) -> Evse:
    """The EVSE a QR code names: the EVSE id itself (DE*VLT*E1234*1) or a URL ending in it."""
    text = payload.strip().rstrip("/")
    candidates = [text, text.rsplit("/", 1)[-1], text.rsplit("=", 1)[-1]]
    for candidate in candidates:
        evse = Evse.objects.select_related("charge_point").filter(tenant=tenant, evse_uid__iexact=candidate).first()
        if evse is not None:
            return evse
    raise NotFound(f"No charging point matches the QR code {payload!r}.", code="evse_not_found")


def driver_token(*, driver: Driver, uid: str | None = None) -> Token:
    tokens = Token.objects.filter(tenant_id=driver.tenant_id, driver=driver)
    token = (tokens.filter(uid__iexact=uid) if uid else tokens.filter(valid=True, blocked=False)).order_by("pk").first()
    if token is None:
        raise ApplicationError(
            "This driver has no such token." if uid else "This driver has no usable token.",
            code="token_unknown",
            status_code=422,
        )
    return token


def _authorized(*, tenant: Tenant, token: Token, charge_point: ChargePoint) -> None:
    info = services.id_tag_authorize(tenant=tenant, id_tag=token.uid, location_id=charge_point.location_id)
    if info.status == "ConcurrentTx":
        raise Conflict(f"Token {token.uid} is already charging.", code="token_concurrent_tx")
    if info.status != "Accepted":
        raise ApplicationError(
            f"Token {token.uid} may not charge here: {info.status}.",
            code=f"token_{info.status.lower()}",
            status_code=403,
        )


def _busy(charge_point: ChargePoint, connector_id: int) -> bool:
    running = ChargingSession.objects.filter(charge_point=charge_point, status__in=RUNNING_STATUSES)
    if connector_id:
        running = running.filter(connector_id=connector_id)
    return running.exists()


# --------------------------------------------------------------------------- reservations


def _vehicle_fits(vehicle: Vehicle, connectors: list[Connector]) -> bool:
    for connector in connectors:
        if vehicle.connector_types and connector.standard not in vehicle.connector_types:
            continue
        if connector.power_type == "DC" and not vehicle.dc_max_power_w:
            continue
        return True
    return False


@transaction.atomic
def reservation_create(
    *,
    tenant: Tenant,
    driver: Driver,
    charge_point: ChargePoint,
    connector_id: int,
    expires_at: dt.datetime,
    vehicle: Vehicle | None = None,
    token_uid: str | None = None,
    now: dt.datetime | None = None,
) -> Reservation:
    """Hold a connector (0: any connector of the charger) for a driver until `expires_at` (not sent yet)."""
    now = now or timezone.now()
    if driver.tenant_id != tenant.pk or charge_point.tenant_id != tenant.pk:
        raise NotFound()
    if vehicle is not None and vehicle.tenant_id != tenant.pk:
        raise NotFound()
    ensure_in_service(charge_point=charge_point, connector_id=connector_id)
    if expires_at <= now:
        raise ApplicationError(
            "expires_at must be in the future.", code="invalid", fields={"expires_at": ["In the past."]}
        )
    ChargePoint.objects.select_for_update().filter(pk=charge_point.pk).first()  # one reservation decision at a time
    connectors = list(
        Connector.objects.filter(evse__charge_point=charge_point).filter(
            Q(evse__connector_id=connector_id) if connector_id else Q()
        )
    )
    if not connectors:
        raise NotFound(
            f"Charge point {charge_point.identity} has no connector {connector_id}.", code="connector_not_found"
        )
    if vehicle is not None and not _vehicle_fits(vehicle, connectors):
        raise ApplicationError(
            f"The vehicle {vehicle} cannot charge on this connector (plug or power).",
            code="vehicle_does_not_fit",
            status_code=422,
        )
    token = driver_token(driver=driver, uid=token_uid)
    _authorized(tenant=tenant, token=token, charge_point=charge_point)
    return _hold(
        charge_point=charge_point,
        connector_id=connector_id,
        token=token,
        expires_at=expires_at,
        now=now,
        driver=driver,
        vehicle=vehicle,
    )


def _hold(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    token: Token,
    expires_at: dt.datetime,
    now: dt.datetime,
    **fields: Any,
) -> Reservation:
    """The reservation row, once nothing holds the connector (caller has the charge point row locked).
    409 connector_busy / connector_reserved."""
    if connector_id and _busy(charge_point, connector_id):
        raise Conflict("The connector is in use.", code="connector_busy")
    overlapping = Reservation.objects.filter(
        charge_point=charge_point, status__in=HOLDING_RESERVATION, starts_at__lt=expires_at, expires_at__gt=now
    )
    if connector_id:
        overlapping = overlapping.filter(connector_id__in=[0, connector_id])
    if overlapping.exists():
        raise Conflict("The connector is already reserved for that time.", code="connector_reserved")
    try:
        with transaction.atomic():
            return Reservation.objects.create(
                tenant_id=charge_point.tenant_id,
                charge_point=charge_point,
                connector_id=connector_id,
                token=token,
                id_tag=token.wire_id,
                parent_id_tag=wire_id_for(token.group_id) if token.group_id else "",
                starts_at=now,
                expires_at=expires_at,
                **fields,
            )
    except IntegrityError as exc:  # the exclusion constraint: someone reserved it in between
        raise Conflict("The connector is already reserved for that time.", code="connector_reserved") from exc


@transaction.atomic
def reservation_create_for_token(
    *,
    token: Token,
    charge_point: ChargePoint,
    connector_id: int,
    expires_at: dt.datetime,
    now: dt.datetime | None = None,
) -> Reservation:
    """Hold a connector (0: any) for a token its eMSP authorized (a roaming partner's RESERVE_NOW: the CPO does not
    check the token again). Not sent yet (`reservation_send`). 409 connector_busy / connector_reserved."""
    now = now or timezone.now()
    if token.tenant_id != charge_point.tenant_id:
        raise NotFound()
    ensure_in_service(charge_point=charge_point, connector_id=connector_id)
    if expires_at <= now:
        raise ApplicationError(
            "expires_at must be in the future.", code="invalid", fields={"expires_at": ["In the past."]}
        )
    ChargePoint.objects.select_for_update().filter(pk=charge_point.pk).first()  # one reservation decision at a time
    return _hold(charge_point=charge_point, connector_id=connector_id, token=token, expires_at=expires_at, now=now)


def _set_reservation(reservation: Reservation, status: str, detail: str = "", command_id: int | None = None) -> None:
    reservation.status, reservation.detail = status, detail[:200]
    if command_id is not None:
        reservation.command_id = command_id
    reservation.save(update_fields=["status", "detail", "command_id", "updated_at"])


def reservation_send(*, reservation: Reservation, timeout: float = COMMAND_TIMEOUT) -> Reservation:
    """ReserveNow. Accepted: the reservation is active; anything else: rejected, and the caller gets 409."""
    payload = {
        "connectorId": reservation.connector_id,
        "expiryDate": _ocpp_time(reservation.expires_at),
        "idTag": reservation.id_tag,
        "reservationId": reservation.pk,
    }
    if reservation.parent_id_tag:
        payload["parentIdTag"] = reservation.parent_id_tag
    try:
        command = station_services.send_command(
            charge_point=reservation.charge_point, action="ReserveNow", payload=payload, timeout=timeout, source="api"
        )
    except station_services.ChargePointOffline:
        _set_reservation(reservation, ReservationStatus.REJECTED, "charge point offline")
        raise
    except station_services.InvalidCommand as invalid:  # nothing was sent
        _set_reservation(reservation, ReservationStatus.REJECTED, invalid.message)
        raise
    answer = (command.response or {}).get("status", command.status)
    if command.status != "accepted":
        _set_reservation(reservation, ReservationStatus.REJECTED, f"ReserveNow: {answer}", command.pk)
        raise Conflict(f"The charger refused the reservation ({answer}).", code="reservation_refused")
    _set_reservation(reservation, ReservationStatus.ACTIVE, "", command.pk)
    return reservation


def reservation_cancel(*, reservation: Reservation, timeout: float = COMMAND_TIMEOUT) -> Reservation:
    """Cancel locally at once, then CancelReservation to the charger (its answer is kept in `detail`)."""
    with transaction.atomic():
        reservation = Reservation.objects.select_for_update().get(pk=reservation.pk)
        if reservation.status not in HOLDING_RESERVATION:
            raise Conflict(f"The reservation is {reservation.status}.", code="reservation_not_active")
        was = reservation.status
        _set_reservation(reservation, ReservationStatus.CANCELLED)
    if was == ReservationStatus.ACTIVE:
        try:
            command = station_services.send_command(
                charge_point=reservation.charge_point,
                action="CancelReservation",
                payload={"reservationId": reservation.pk},
                timeout=timeout,
                source="api",
            )
            _set_reservation(reservation, ReservationStatus.CANCELLED, _cancel_detail(command.status), command.pk)
        except station_services.ChargePointOffline:
            _set_reservation(
                reservation, ReservationStatus.CANCELLED, "charger offline; it expires the reservation itself"
            )
    return reservation


def _cancel_detail(status: str) -> str:
    if status == "accepted":
        return "CancelReservation: accepted"
    if status == "rejected":  # OCPP 1.6: the charger has no reservation with this id (any more)
        return "CancelReservation: rejected (the charger holds no such reservation)"
    return f"CancelReservation: {status}; the charger expires the reservation itself"


@transaction.atomic
def reservations_expire(*, now: dt.datetime | None = None) -> int:
    """Beat: holding reservations past their expiry are expired (the charger expires its own copy)."""
    now = now or timezone.now()
    return Reservation.objects.filter(status__in=HOLDING_RESERVATION, expires_at__lte=now).update(
        status=ReservationStatus.EXPIRED, updated_at=now
    )


# --------------------------------------------------------------------------- remote start / stop


@dataclass(frozen=True)
class RemoteStart:
    command_id: int
    session_id: int  # reserved: the session the charger's StartTransaction opens gets this id
    charge_point_id: int
    connector_id: int
    id_tag: str  # as sent to the charger (the token's wire id)
    token_uid: str
    reservation_id: int | None


def session_remote_start(
    *,
    tenant: Tenant,
    driver: Driver,
    charge_point: ChargePoint | None = None,
    connector_id: int | None = None,
    qr: str = "",
    token_uid: str | None = None,
    reservation_id: int | None = None,
    departure_at: dt.datetime | None = None,
    energy_need_wh: int | None = None,
    now: dt.datetime | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> RemoteStart:
    """RemoteStartTransaction for a driver, by charge point (+ connector) or by the QR code's EVSE id.

    Refused before anything is sent: unknown/blocked/expired token (403), token already charging,
    connector busy, connector reserved by someone else, reservation expired or not the driver's (409),
    a departure time not in the future or an energy need of 0 (400).
    The idTag sent is the token's wire id (OCPP 1.6 allows 20 characters; a longer uid, e.g. an app token's
    UUID, has a short one), mapped back to the token when the charger starts.
    A session id is reserved and returned (`RemoteStart.session_id`): with the charging preferences (departure
    time, energy need) it is stored before the command goes out, so the session the charger's StartTransaction
    opens gets that id and takes them over; a refused start drops them.
    """
    now = now or timezone.now()
    services.charging_preferences_check(departure_at=departure_at, energy_need_wh=energy_need_wh, now=now)
    if driver.tenant_id != tenant.pk:
        raise NotFound()
    if qr:
        evse = evse_from_qr(tenant=tenant, payload=qr)
        charge_point, connector_id = evse.charge_point, evse.connector_id
    if charge_point is None or charge_point.tenant_id != tenant.pk:
        raise NotFound("No such charge point.", code="charge_point_not_found")
    ensure_in_service(charge_point=charge_point, connector_id=connector_id)
    token = driver_token(driver=driver, uid=token_uid)
    _authorized(tenant=tenant, token=token, charge_point=charge_point)
    if reservation_id is not None:
        reservation = Reservation.objects.filter(pk=reservation_id, tenant=tenant, driver=driver).first()
        if reservation is None:
            raise NotFound("No such reservation.", code="reservation_not_found")
        if reservation.status == ReservationStatus.EXPIRED or (
            reservation.status in HOLDING_RESERVATION and reservation.expires_at <= now
        ):
            raise Conflict("The reservation has expired.", code="reservation_expired")
        if reservation.status not in HOLDING_RESERVATION:
            raise Conflict(f"The reservation is {reservation.status}.", code="reservation_not_active")
        if reservation.charge_point_id != charge_point.pk:
            raise Conflict("The reservation is for another charger.", code="reservation_other_charger")
        connector_id = connector_id or reservation.connector_id or None
    if connector_id is not None and _busy(charge_point, connector_id):
        raise Conflict("The connector is in use.", code="connector_busy")
    held = Reservation.objects.filter(
        charge_point=charge_point, status__in=HOLDING_RESERVATION, starts_at__lte=now, expires_at__gt=now
    ).exclude(driver=driver)
    if connector_id:
        held = held.filter(connector_id=connector_id)
    if held.exists():
        raise Conflict("The connector is reserved by someone else.", code="connector_reserved")
    payload: dict[str, object] = {"idTag": token.wire_id}
    if connector_id:
        payload["connectorId"] = connector_id
    # what the charger's StartTransaction will take over: the session id returned now, the preferences
    handover = StartPreferences.objects.create(
        tenant=tenant,
        charge_point=charge_point,
        id_tag=token.wire_id,
        reserved_session_id=services.session_id_reserve(),
        departure_at=departure_at,
        energy_need_wh=energy_need_wh,
    )
    try:
        command = station_services.send_command(
            charge_point=charge_point, action="RemoteStartTransaction", payload=payload, timeout=timeout, source="api"
        )
        if command.status != "accepted":
            raise Conflict(f"The charger did not start ({command.status}).", code="remote_start_refused")
    except Exception:
        # nothing will start: the handover goes (unless a session took it meanwhile)
        StartPreferences.objects.filter(pk=handover.pk, session__isnull=True).delete()
        raise
    StartPreferences.objects.filter(pk=handover.pk).update(command_id=command.pk)
    assert handover.reserved_session_id is not None
    return RemoteStart(
        command_id=command.pk,
        session_id=handover.reserved_session_id,
        charge_point_id=charge_point.pk,
        connector_id=connector_id or 0,
        id_tag=token.wire_id,
        token_uid=token.uid,
        reservation_id=reservation_id,
    )


def session_remote_start_token(
    *,
    token: Token,
    charge_point: ChargePoint,
    connector_id: int | None,
    timeout: float = COMMAND_TIMEOUT,
    source: str = "roaming",
    authorization_reference: str = "",
) -> tuple[Command, int]:
    """RemoteStartTransaction for a token its eMSP authorized (a roaming partner's START_SESSION: the CPO does not
    check the token again, mod_commands.asciidoc). Like `session_remote_start`, a session id is reserved first and
    handed over to the session the charger's StartTransaction opens. Returns the command as answered (accepted,
    rejected, timeout, error) and that session id; raises ChargePointOffline (nothing sent) and ApplicationError
    for a charger or EVSE out of service."""
    ensure_in_service(charge_point=charge_point, connector_id=connector_id)
    payload: dict[str, object] = {"idTag": token.wire_id}
    if connector_id:
        payload["connectorId"] = connector_id
    handover = StartPreferences.objects.create(
        tenant_id=charge_point.tenant_id,
        charge_point=charge_point,
        id_tag=token.wire_id,
        reserved_session_id=services.session_id_reserve(),
        authorization_reference=authorization_reference,
    )
    try:
        command = station_services.send_command(
            charge_point=charge_point, action="RemoteStartTransaction", payload=payload, timeout=timeout, source=source
        )
    except Exception:
        StartPreferences.objects.filter(pk=handover.pk, session__isnull=True).delete()
        raise
    if command.status != "accepted":
        StartPreferences.objects.filter(pk=handover.pk, session__isnull=True).delete()
    else:
        StartPreferences.objects.filter(pk=handover.pk).update(command_id=command.pk)
    assert handover.reserved_session_id is not None
    return command, handover.reserved_session_id


def connector_busy(*, charge_point: ChargePoint, connector_id: int) -> bool:
    """Does a session run on this connector (0: on any connector of the charger)?"""
    return _busy(charge_point, connector_id)


def session_remote_stop_command(
    *, session: ChargingSession, timeout: float = COMMAND_TIMEOUT, source: str = "roaming"
) -> Command:
    """RemoteStopTransaction, returning the command as answered whatever the charger said (a roaming partner's
    STOP_SESSION reports the answer); accepted: the session is finishing until the StopTransaction."""
    if session.status not in (SessionStatus.ACTIVE, SessionStatus.SUSPENDED):
        raise Conflict(f"The session is {session.status}.", code="session_not_running")
    command = station_services.send_command(
        charge_point=session.charge_point,
        action="RemoteStopTransaction",
        payload={"transactionId": session.pk},
        timeout=timeout,
        source=source,
    )
    if command.status == "accepted":
        with transaction.atomic():
            locked = ChargingSession.objects.select_for_update().get(pk=session.pk)
            if locked.status in (SessionStatus.ACTIVE, SessionStatus.SUSPENDED):
                services.session_transition(session=locked, to=SessionStatus.FINISHING, reason="RemoteStopTransaction")
    return command


def session_remote_stop(*, session: ChargingSession, timeout: float = COMMAND_TIMEOUT) -> ChargingSession:
    """RemoteStopTransaction; accepted: the session is finishing until the charger's StopTransaction."""
    if session.status not in (SessionStatus.ACTIVE, SessionStatus.SUSPENDED):
        raise Conflict(f"The session is {session.status}.", code="session_not_running")
    command = station_services.send_command(
        charge_point=session.charge_point,
        action="RemoteStopTransaction",
        payload={"transactionId": session.pk},
        timeout=timeout,
        source="api",
    )
    if command.status != "accepted":
        raise Conflict(f"The charger did not stop ({command.status}).", code="remote_stop_refused")
    with transaction.atomic():
        session = ChargingSession.objects.select_for_update().get(pk=session.pk)
        if session.status in (SessionStatus.ACTIVE, SessionStatus.SUSPENDED):
            services.session_transition(session=session, to=SessionStatus.FINISHING, reason="RemoteStopTransaction")
    return session


# --------------------------------------------------------------------------- session limits


def limit_due(session: ChargingSession, now: dt.datetime) -> str:
    """ "duration" or "energy" when the session has reached its contract limit, else ""."""
    if session.limit_duration is not None and session.started_at + session.limit_duration <= now:
        return "duration"
    energy = (session.last_meter_wh or session.meter_start_wh) - session.meter_start_wh
    if session.limit_energy_wh is not None and energy >= session.limit_energy_wh:
        return "energy"
    return ""


def session_limit_enforce(
    *, session_id: int, now: dt.datetime | None = None, timeout: float = COMMAND_TIMEOUT
) -> ChargingSession | None:
    """At the contract's limit: RemoteStopTransaction (limit_action stop) or a TxProfile of 0 A (zero_current,
    the session stays open, suspended; a charger that refuses the profile gets RemoteStopTransaction instead).
    Idempotent: a session's limit is acted on once."""
    now = now or timezone.now()
    with transaction.atomic():
        session = (
            ChargingSession.objects.select_for_update(of=("self",))
            .select_related("charge_point")
            .filter(pk=session_id)
            .first()
        )
        if session is None or session.status != SessionStatus.ACTIVE or session.limit_reached_at is not None:
            return session
        reached = limit_due(session, now)
        if not reached:
            return session
        session.limit_reached, session.limit_reached_at = reached, now
        session.save(update_fields=["limit_reached", "limit_reached_at", "updated_at"])
        hold = session.limit_action == "zero_current"
        services.session_transition(
            session=session,
            to=SessionStatus.SUSPENDED if hold else SessionStatus.FINISHING,
            reason=f"{reached} limit reached",
        )
    if hold:
        action = "SetChargingProfile"
        payload: dict[str, object] = {
            "connectorId": session.connector_id,
            "csChargingProfiles": {
                "chargingProfileId": ZERO_CURRENT_PROFILE_ID + session.pk % 100_000,
                "transactionId": session.pk,
                "stackLevel": 9,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0}],
                },
            },
        }
    else:
        action, payload = "RemoteStopTransaction", {"transactionId": session.pk}
    outcome, command_id = LimitOutcome.OFFLINE, None
    try:
        command = station_services.send_command(
            charge_point=session.charge_point, action=action, payload=payload, timeout=timeout, source="session_limit"
        )
        command_id = command.pk
        if command.status == "accepted":
            outcome = LimitOutcome.ZERO_CURRENT if hold else LimitOutcome.STOPPED
        else:
            outcome = LimitOutcome.REJECTED if command.status == "rejected" else LimitOutcome.ERROR
    except station_services.ChargePointOffline:
        pass
    except station_services.InvalidCommand:  # e.g. a stack level above the charger's: nothing was sent
        outcome = LimitOutcome.ERROR
    if hold and outcome in (LimitOutcome.REJECTED, LimitOutcome.ERROR):
        outcome, command_id = _stop_instead_of_hold(session, outcome, command_id, timeout)
    ChargingSession.objects.filter(pk=session.pk).update(limit_outcome=outcome, limit_command_id=command_id)
    session.limit_outcome, session.limit_command_id = outcome, command_id
    return session


def _stop_instead_of_hold(
    session: ChargingSession, refused: LimitOutcome, command_id: int | None, timeout: float
) -> tuple[LimitOutcome, int | None]:
    """The charger would not hold the car at 0 A (no smart charging, or it failed): the contract's limit still
    applies, so the session is stopped instead. Refused again: the first outcome stays."""
    try:
        command = station_services.send_command(
            charge_point=session.charge_point,
            action="RemoteStopTransaction",
            payload={"transactionId": session.pk},
            timeout=timeout,
            source="session_limit",
        )
    except station_services.ChargePointOffline:
        return refused, command_id
    if command.status != "accepted":
        return refused, command_id
    with transaction.atomic():
        locked = ChargingSession.objects.select_for_update().get(pk=session.pk)
        if locked.status == SessionStatus.SUSPENDED:
            services.session_transition(
                session=locked,
                to=SessionStatus.FINISHING,
                reason=f"0 A TxProfile {refused.value}: RemoteStopTransaction instead",
            )
        session.status = locked.status
    return LimitOutcome.STOPPED, command.pk


def session_limits_due(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of active sessions at their limit (beat)."""
    now = now or timezone.now()
    candidates = ChargingSession.objects.filter(status=SessionStatus.ACTIVE, limit_reached_at__isnull=True).filter(
        Q(limit_duration__isnull=False) | Q(limit_energy_wh__isnull=False)
    )
    return [
        s.pk
        for s in candidates.only(
            "pk", "started_at", "limit_duration", "limit_energy_wh", "last_meter_wh", "meter_start_wh"
        )
        if limit_due(s, now)
    ]
