"""Writes of charging sessions: what StartTransaction / MeterValues / StopTransaction mean for the domain.

Rules that protect energy totals:
- StartTransaction resent (after a lost answer) maps to the same session (unique start key): same id back.
- StopTransaction is idempotent: a second stop of the same transaction is recorded and changes nothing;
  a stop of an unknown transaction is accepted and recorded as an anomaly.
- energy_wh = meter_stop - meter_start, set once; meter values are deduplicated by their sample key.
- A register reading lower than an earlier one (by timestamp) and timestamps in the future are flagged;
  old timestamps (messages the charger queued while offline) are simply accepted in order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models, transaction
from django.db.models import Func, Q, Value
from django.utils import timezone

from apps.core import events
from apps.core.errors import ApplicationError, Conflict
from apps.customers import services as customer_services
from apps.sessions.models import (
    RUNNING_STATUSES,
    TRANSITIONS,
    ChargingSession,
    MeterValue,
    SessionEvent,
    SessionStatus,
    SignedMeterValue,
    TransactionAnomaly,
)
from apps.stations.models import ChargePoint, Connector, Evse
from apps.tenants.models import Tenant

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
FUTURE_TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class IdTagInfo:
    """OCPP idTagInfo."""

    status: str  # Accepted | Blocked | Expired | Invalid | ConcurrentTx
    parent_id_tag: str | None = None
    expiry_date: dt.datetime | None = None


def id_tag_authorize(
    *,
    tenant: Tenant,
    id_tag: str,
    location_id: int | None = None,
    at: dt.datetime | None = None,
    exclude_session_id: int | None = None,
) -> IdTagInfo:
    """May this id tag charge? The token decision is the customers app's; a tag already charging is ConcurrentTx."""
    result = customer_services.token_authorize(tenant=tenant, id_tag=id_tag, location_id=location_id, at=at)
    if not result.accepted:
        return IdTagInfo(result.status, result.parent_id_tag, None)
    running = ChargingSession.objects.filter(tenant=tenant, id_tag__iexact=id_tag, status__in=RUNNING_STATUSES)
    if exclude_session_id is not None:
        running = running.exclude(pk=exclude_session_id)
    if running.exists():
        return IdTagInfo("ConcurrentTx", result.parent_id_tag, result.expiry_date)
    return IdTagInfo(result.status, result.parent_id_tag, result.expiry_date)


def id_tag_authorize_at(*, charge_point_id: int, id_tag: str) -> IdTagInfo:
    """OCPP Authorize from a charger."""
    charge_point = _charge_point(charge_point_id)
    return id_tag_authorize(
        tenant=charge_point.tenant, id_tag=id_tag, location_id=charge_point.location_id, at=timezone.now()
    )


class TransitionNotAllowed(Conflict):
    def __init__(self, session: ChargingSession, to: str) -> None:
        super().__init__(
            f"Session {session.pk} cannot go from {session.status} to {to}.", code="session_transition_not_allowed"
        )


def session_transition(
    *, session: ChargingSession, to: str, reason: str = "", detail: dict[str, Any] | None = None
) -> ChargingSession:
    """The one way a session changes state: checks the transition and writes the audit row (same transaction).

    The caller holds the row (select_for_update) and saves the session's other fields itself; the status is
    saved here.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("session_transition must run inside transaction.atomic()")
    if to not in TRANSITIONS[session.status]:
        raise TransitionNotAllowed(session, to)
    SessionEvent.objects.create(
        session=session, from_status=session.status, to_status=to, reason=reason[:200], detail=detail or {}
    )
    session.status = to
    ChargingSession.objects.filter(pk=session.pk).update(status=to, updated_at=timezone.now())
    return session


def _charge_point(charge_point_id: int) -> ChargePoint:
    return ChargePoint.objects.select_related("tenant").get(pk=charge_point_id)


def _anomaly(
    charge_point: ChargePoint, kind: str, *, session: ChargingSession | None = None, tx: int | None = None, **extra: Any
) -> None:
    TransactionAnomaly.objects.create(
        tenant_id=charge_point.tenant_id,
        charge_point=charge_point,
        session=session,
        transaction_id=tx if tx is not None else (session.pk if session else None),
        kind=kind,
        detail=str(extra.pop("detail", "")),
        payload=extra,
    )


@transaction.atomic
def session_start(
    *,
    charge_point_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: dt.datetime,
    reservation_id: int | None = None,
) -> tuple[ChargingSession, IdTagInfo]:
    """StartTransaction. The session is created whatever the tag decision (the charger already started; a
    refused tag makes it stop, and the stop closes the session), so energy is never lost."""
    charge_point = _charge_point(charge_point_id)
    existing = ChargingSession.objects.filter(
        charge_point=charge_point, connector_id=connector_id, started_at=timestamp, meter_start_wh=meter_start
    ).first()
    if existing is not None:  # resent StartTransaction: same transaction id, same answer
        return existing, IdTagInfo(existing.auth_status)
    evse = Evse.objects.filter(charge_point=charge_point, connector_id=connector_id).first()
    location_id = charge_point.location_id
    session = ChargingSession.objects.create(
        tenant_id=charge_point.tenant_id,
        charge_point=charge_point,
        evse=evse,
        connector_id=connector_id,
        id_tag=id_tag,
        auth_status="Pending",
        status=SessionStatus.PENDING,
        reservation_id=reservation_id,
        started_at=timestamp,
        meter_start_wh=meter_start,
        last_meter_wh=meter_start,
        last_meter_at=timestamp,
        location_id=location_id,
        evse_connector=Connector.objects.filter(evse=evse).order_by("pk").first() if evse is not None else None,
    )
    SessionEvent.objects.create(session=session, to_status=SessionStatus.PENDING, reason="StartTransaction")
    if evse is None:
        _anomaly(charge_point, TransactionAnomaly.Kind.UNKNOWN_CONNECTOR, session=session, connector_id=connector_id)
    if timestamp > timezone.now() + FUTURE_TOLERANCE:
        session.flags.append(TransactionAnomaly.Kind.FUTURE_TIMESTAMP)
        _anomaly(charge_point, TransactionAnomaly.Kind.FUTURE_TIMESTAMP, session=session, timestamp=str(timestamp))
    info = id_tag_authorize(
        tenant=charge_point.tenant, id_tag=id_tag, location_id=location_id, at=timestamp, exclude_session_id=session.pk
    )
    session.auth_status = info.status
    from apps.sessions import start_rules  # the links, reservation and limits of a start (kept apart)

    info = start_rules.session_apply_start(session=session, info=info, charge_point=charge_point)
    session.auth_status = info.status
    session.save()
    session_transition(
        session=session,
        to=SessionStatus.ACTIVE if info.status == "Accepted" else SessionStatus.INVALID,
        reason=f"idTag {info.status}" + (f" ({session.auth_reason})" if session.auth_reason else ""),
    )
    events.publish(
        events.SessionStarted(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=charge_point_id)
    )
    return session, info


def _to_wh(value: Decimal, unit: str) -> int:
    return int((value * 1000) if unit == "kWh" else value)


@dataclass(frozen=True)
class Sample:
    timestamp: dt.datetime
    value: Decimal
    measurand: str
    unit: str
    phase: str = ""
    location: str = ""
    context: str = ""


def parse_meter_values(meter_value: list[dict[str, Any]]) -> list[Sample]:
    """OCPP meterValue[] (snake_case keys) -> samples; unparsable values are skipped by the caller's validation."""
    samples = []
    for entry in meter_value:
        stamp = entry["timestamp"]
        at = stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        for sampled in entry.get("sampled_value", []):
            if sampled.get("format") == "SignedData":
                continue
            try:
                value = Decimal(str(sampled["value"]))
            except (InvalidOperation, KeyError):
                continue
            measurand = sampled.get("measurand") or ENERGY_REGISTER
            samples.append(
                Sample(
                    timestamp=at,
                    value=value,
                    measurand=measurand,
                    unit=sampled.get("unit") or ("Wh" if measurand.startswith("Energy") else ""),
                    phase=sampled.get("phase") or "",
                    location=sampled.get("location") or "",
                    context=sampled.get("context") or "",
                )
            )
    return samples


def _apply_samples(
    charge_point: ChargePoint, session: ChargingSession | None, connector_id: int, samples: list[Sample]
) -> None:
    now = timezone.now()
    rows = []
    for sample in samples:
        flags: list[str] = []
        if sample.timestamp > now + FUTURE_TOLERANCE:
            flags.append(TransactionAnomaly.Kind.FUTURE_TIMESTAMP)
        is_register = sample.measurand == ENERGY_REGISTER and not sample.phase
        if session is not None and sample.measurand == POWER_IMPORT and not sample.phase:
            watts = _to_wh(sample.value, "kWh" if sample.unit == "kW" else "W")
            newest = session.last_meter_at is None or sample.timestamp >= session.last_meter_at
            if newest:
                session.last_power_w = watts
            session.max_power_w = max(session.max_power_w or 0, watts)
        if session is not None and is_register:
            wh = _to_wh(sample.value, sample.unit)
            newer = session.last_meter_at is None or sample.timestamp >= session.last_meter_at
            if newer:
                if session.last_meter_wh is not None and wh < session.last_meter_wh:
                    flags.append(TransactionAnomaly.Kind.METER_BACKWARDS)
                else:
                    session.last_meter_wh, session.last_meter_at = wh, sample.timestamp
        for flag in flags:
            if session is not None and flag not in session.flags:
                session.flags.append(flag)
            _anomaly(
                charge_point, flag, session=session, timestamp=sample.timestamp.isoformat(), value=str(sample.value)
            )
        rows.append(
            MeterValue(
                session=session,
                charge_point=charge_point,
                connector_id=connector_id,
                timestamp=sample.timestamp,
                measurand=sample.measurand,
                phase=sample.phase,
                location=sample.location,
                context=sample.context,
                unit=sample.unit,
                value=sample.value,
                flags=flags,
            )
        )
    MeterValue.objects.bulk_create(rows, ignore_conflicts=True)
    if session is not None:
        session.save(
            update_fields=["last_meter_wh", "last_meter_at", "flags", "max_power_w", "last_power_w", "updated_at"]
        )


def parse_signed_values(meter_value: list[dict[str, Any]]) -> list[tuple[dt.datetime, str, str, str]]:
    """The SignedData sampled values (OCMF and the like): (timestamp, measurand, context, value verbatim)."""
    found = []
    for entry in meter_value:
        stamp = entry["timestamp"]
        at = stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        for sampled in entry.get("sampled_value", []):
            if sampled.get("format") == "SignedData" and isinstance(sampled.get("value"), str):
                found.append((at, sampled.get("measurand") or "", sampled.get("context") or "", sampled["value"]))
    return found


def _store_signed(
    charge_point: ChargePoint, session: ChargingSession | None, connector_id: int, meter_value: list[dict[str, Any]]
) -> None:
    rows = [
        SignedMeterValue(
            session=session,
            charge_point=charge_point,
            connector_id=connector_id,
            timestamp=at,
            measurand=measurand,
            context=context,
            data=data,
        )
        for at, measurand, context, data in parse_signed_values(meter_value)
    ]
    if rows:
        SignedMeterValue.objects.bulk_create(rows, ignore_conflicts=True)


@transaction.atomic
def session_add_meter_values(
    *, charge_point_id: int, connector_id: int, transaction_id: int | None, meter_value: list[dict[str, Any]]
) -> ChargingSession | None:
    """MeterValues: stored (deduplicated); the transaction's register reading advances, backwards is flagged."""
    charge_point = _charge_point(charge_point_id)
    session = None
    if transaction_id is not None:
        session = (
            ChargingSession.objects.select_for_update().filter(pk=transaction_id, charge_point=charge_point).first()
        )
        if session is None:
            _anomaly(charge_point, TransactionAnomaly.Kind.UNKNOWN_TRANSACTION, tx=transaction_id, detail="MeterValues")
    _apply_samples(charge_point, session, connector_id, parse_meter_values(meter_value))
    _store_signed(charge_point, session, connector_id, meter_value)
    if session is not None:
        events.publish(
            events.SessionMeterUpdated(
                tenant_id=session.tenant_id,
                session_id=session.pk,
                charge_point_id=charge_point_id,
                energy_wh=(session.last_meter_wh or 0) - session.meter_start_wh,
                power_w=session.last_power_w,
            )
        )
    return session


@transaction.atomic
def session_stop(
    *,
    charge_point_id: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: dt.datetime,
    reason: str = "",
    id_tag: str = "",
    transaction_data: list[dict[str, Any]] | None = None,
) -> tuple[ChargingSession | None, IdTagInfo | None]:
    """StopTransaction, idempotent: the first stop sets the totals; later ones are recorded and change nothing."""
    charge_point = _charge_point(charge_point_id)
    session = ChargingSession.objects.select_for_update().filter(pk=transaction_id, charge_point=charge_point).first()
    info = None
    if id_tag:
        info = id_tag_authorize(
            tenant=charge_point.tenant,
            id_tag=id_tag,
            location_id=charge_point.location_id,
            exclude_session_id=transaction_id,
        )
    if session is None:
        _anomaly(
            charge_point,
            TransactionAnomaly.Kind.UNKNOWN_TRANSACTION,
            tx=transaction_id,
            detail="StopTransaction",
            meter_stop=meter_stop,
            timestamp=timestamp.isoformat(),
        )
        return None, info
    if session.status == SessionStatus.COMPLETED or session.stopped_at is not None:
        _anomaly(
            charge_point,
            TransactionAnomaly.Kind.DUPLICATE_STOP,
            session=session,
            meter_stop=meter_stop,
            timestamp=timestamp.isoformat(),
        )
        return session, info
    if transaction_data:
        _apply_samples(charge_point, session, session.connector_id, parse_meter_values(transaction_data))
        _store_signed(charge_point, session, session.connector_id, transaction_data)
    energy = meter_stop - session.meter_start_wh
    if energy < 0:
        session.flags.append(TransactionAnomaly.Kind.NEGATIVE_ENERGY)
        _anomaly(charge_point, TransactionAnomaly.Kind.NEGATIVE_ENERGY, session=session, meter_stop=meter_stop)
        energy = 0
    if timestamp > timezone.now() + FUTURE_TOLERANCE and TransactionAnomaly.Kind.FUTURE_TIMESTAMP not in session.flags:
        session.flags.append(TransactionAnomaly.Kind.FUTURE_TIMESTAMP)
        _anomaly(
            charge_point, TransactionAnomaly.Kind.FUTURE_TIMESTAMP, session=session, timestamp=timestamp.isoformat()
        )
    session.stopped_at = timestamp
    session.meter_stop_wh = meter_stop
    session.energy_wh = energy
    session.last_meter_wh = max(meter_stop, session.last_meter_wh or 0)
    session.stop_reason = reason or ""
    session.stop_id_tag = id_tag or ""
    session.save()
    if session.status in RUNNING_STATUSES:
        if session.status == SessionStatus.PENDING:
            session_transition(session=session, to=SessionStatus.FAILED, reason=f"stopped before it started: {reason}")
        else:
            session_transition(session=session, to=SessionStatus.COMPLETED, reason=f"StopTransaction {reason}".strip())
            from apps.sessions import completion  # pricing, CDR and data quality of a completed session

            completion.session_complete(session=session)
    events.publish(
        events.SessionEnded(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=charge_point_id)
    )
    return session, info


@transaction.atomic
def sessions_flag_too_long(*, now: dt.datetime | None = None, after: dt.timedelta | None = None) -> int:
    """Beat: running sessions (active or suspended) older than the threshold become suspicious, reason
    "too_long", once: one UPDATE whose WHERE skips sessions already carrying the reason (PostgreSQL re-checks
    it on rows another run changed meanwhile, so two runs never add it twice). Returns how many were flagged."""
    from apps.sessions import completion

    reason = completion.Quality.TOO_LONG
    now = now or timezone.now()
    after = after if after is not None else completion.too_long_after()
    return (
        ChargingSession.objects.filter(
            status__in=(SessionStatus.ACTIVE, SessionStatus.SUSPENDED), started_at__lt=now - after
        )
        .filter(~Q(suspicious_reasons__contains=[reason]))
        .update(
            suspicious=True,
            suspicious_reasons=Func(
                models.F("suspicious_reasons"),
                Value(reason),
                function="array_append",
                output_field=ArrayField(models.CharField(max_length=40)),
            ),
            updated_at=now,
        )
    )


# --------------------------------------------------------------------------- charging preferences


class _Keep:
    """Marker: leave this preference as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()
# a stop was asked for once the session is finishing: nothing left to plan
PREFERENCE_STATUSES = (SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.SUSPENDED)


def charging_preferences_check(
    *, departure_at: dt.datetime | _Keep | None = KEEP, energy_need_wh: int | _Keep | None = KEEP, now: dt.datetime
) -> None:
    """OCPI ChargingPreferences rules: a departure time in the future, an energy need above 0 (None clears)."""
    fields: dict[str, list[str]] = {}
    if isinstance(departure_at, dt.datetime) and departure_at <= now:
        fields["departure_at"] = ["The departure time must be in the future."]
    if isinstance(energy_need_wh, int) and energy_need_wh <= 0:
        fields["energy_need_wh"] = ["The energy need must be above 0 Wh."]
    if fields:
        raise ApplicationError("Invalid charging preferences.", code="invalid_preferences", fields=fields)


def session_preferences_set(
    *,
    session: ChargingSession,
    departure_at: dt.datetime | _Keep | None = KEEP,
    energy_need_wh: int | _Keep | None = KEEP,
    now: dt.datetime | None = None,
) -> ChargingSession:
    """The driver tells (or corrects) when the car leaves and how much energy it wants in this session.

    Only while the session runs (409 otherwise). The change is audited (a session event with the old and new
    values) and, after commit, smart charging recomputes the site (SessionPreferencesChanged).
    """
    now = now or timezone.now()
    charging_preferences_check(departure_at=departure_at, energy_need_wh=energy_need_wh, now=now)
    with transaction.atomic():
        locked = ChargingSession.objects.select_for_update().get(pk=session.pk)
        if locked.status not in PREFERENCE_STATUSES:
            raise Conflict(f"The session is {locked.status}.", code="session_not_running")
        before = {"departure_at": locked.departure_at, "energy_need_wh": locked.energy_need_wh}
        if not isinstance(departure_at, _Keep):
            locked.departure_at = departure_at
        if not isinstance(energy_need_wh, _Keep):
            locked.energy_need_wh = energy_need_wh
        after = {"departure_at": locked.departure_at, "energy_need_wh": locked.energy_need_wh}
        if after == before:
            return locked
        locked.save(update_fields=["departure_at", "energy_need_wh", "updated_at"])
        SessionEvent.objects.create(
            session=locked,
            from_status=locked.status,
            to_status=locked.status,
            reason="charging preferences",
            detail={
                "before": {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in before.items()},
                "after": {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in after.items()},
            },
        )
        events.publish(
            events.SessionPreferencesChanged(
                tenant_id=locked.tenant_id, session_id=locked.pk, charge_point_id=locked.charge_point_id
            )
        )
    return locked
