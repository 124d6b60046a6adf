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

from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.customers import services as customer_services
from apps.sessions.models import ChargingSession, MeterValue, SessionStatus, TransactionAnomaly
from apps.stations.models import ChargePoint, Evse
from apps.tenants.models import Tenant

ENERGY_REGISTER = "Energy.Active.Import.Register"
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
    running = ChargingSession.objects.filter(tenant=tenant, id_tag__iexact=id_tag, status=SessionStatus.ACTIVE)
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
        reservation_id=reservation_id,
        started_at=timestamp,
        meter_start_wh=meter_start,
        last_meter_wh=meter_start,
        last_meter_at=timestamp,
    )
    if evse is None:
        _anomaly(charge_point, TransactionAnomaly.Kind.UNKNOWN_CONNECTOR, session=session, connector_id=connector_id)
    if timestamp > timezone.now() + FUTURE_TOLERANCE:
        session.flags.append(TransactionAnomaly.Kind.FUTURE_TIMESTAMP)
        _anomaly(charge_point, TransactionAnomaly.Kind.FUTURE_TIMESTAMP, session=session, timestamp=str(timestamp))
    info = id_tag_authorize(
        tenant=charge_point.tenant, id_tag=id_tag, location_id=location_id, at=timestamp, exclude_session_id=session.pk
    )
    session.auth_status = info.status
    session.save(update_fields=["auth_status", "flags"])
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
        session.save(update_fields=["last_meter_wh", "last_meter_at", "flags", "updated_at"])


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
    if session is not None:
        events.publish(
            events.SessionMeterUpdated(
                tenant_id=session.tenant_id,
                session_id=session.pk,
                charge_point_id=charge_point_id,
                energy_wh=(session.last_meter_wh or 0) - session.meter_start_wh,
                power_w=None,
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
    if session.status == SessionStatus.COMPLETED:
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
    session.status = SessionStatus.COMPLETED
    session.stopped_at = timestamp
    session.meter_stop_wh = meter_stop
    session.energy_wh = energy
    session.last_meter_wh = max(meter_stop, session.last_meter_wh or 0)
    session.stop_reason = reason or ""
    session.stop_id_tag = id_tag or ""
    session.save()
    events.publish(
        events.SessionEnded(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=charge_point_id)
    )
    return session, info
