"""Writes of charging sessions: what StartTransaction / MeterValues / StopTransaction mean for the domain.

Rules that protect energy totals:
- StartTransaction resent (after a lost answer) maps to the same session (unique start key): same id back.
- StopTransaction is idempotent: a second stop of the same transaction is recorded and changes nothing;
  a stop of an unknown transaction is accepted and recorded as an anomaly.
- energy_wh = meter_stop - meter_start, set once; meter values are deduplicated by their sample key.
- A register reading lower than an earlier one (by timestamp) and timestamps in the future are flagged;
  old timestamps (messages the charger queued while offline) are simply accepted in order.
- One running session per token: the database refuses a second one (partial unique index), and starts of one
  tag are decided one at a time (a transaction-scoped advisory lock), so the loser of two chargers starting it at
  the same instant is answered ConcurrentTx; its session is still created (invalid), so energy is never lost.
- An ended session never changes: MeterValues that arrive after its end are stored as late samples (flag "late",
  anomaly), a StopTransaction after it was closed from evidence is recorded, never re-priced.
- A session whose StopTransaction never comes is closed from evidence (a new StartTransaction or an Available /
  Preparing status on its connector, a BootNotification of its charger, no news for
  CHARGING_SESSION_CLOSE_AFTER_HOURS), priced from its last meter value and flagged closed_without_stop.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Field, Func, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core import events
from apps.core.errors import ApplicationError, Conflict
from apps.customers import services as customer_services
from apps.customers.authorization import AuthorizationResult
from apps.customers.models import Token
from apps.sessions.models import (
    RUNNING_STATUSES,
    TRANSITIONS,
    ChargingSession,
    MeterValue,
    PartnerCdr,
    PartnerSession,
    PartnerSessionState,
    SessionEvent,
    SessionStatus,
    SignedMeterValue,
    TransactionAnomaly,
)
from apps.stations.models import ChargePoint, Connector, Evse, PartnerLocation
from apps.tenants.models import Tenant

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
LATE = "late"  # flag of a meter value that arrived after its session ended
CLOSED_WITHOUT_STOP = TransactionAnomaly.Kind.CLOSED_WITHOUT_STOP  # session flag and suspicious reason too


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
    concurrent: bool = True,
) -> IdTagInfo:
    """May this id tag charge? The token decision is the customers app's; with `concurrent`, a tag already charging
    is ConcurrentTx (OCPP 1.6 defines that status for StartTransaction only: Authorize and StopTransaction pass
    concurrent=False)."""
    result = customer_services.token_authorize(tenant=tenant, id_tag=id_tag, location_id=location_id, at=at)
    if not result.accepted:
        return IdTagInfo(result.status, result.parent_id_tag, None)
    if concurrent:
        running = running_of_tag(tenant_id=tenant.pk, tag=_tag_key(result.token, id_tag))
        if exclude_session_id is not None:
            running = running.exclude(pk=exclude_session_id)
        if running.exists():
            return IdTagInfo("ConcurrentTx", result.parent_id_tag, result.expiry_date)
    return IdTagInfo(result.status, result.parent_id_tag, result.expiry_date)


def id_tag_authorize_at(*, charge_point_id: int, id_tag: str) -> IdTagInfo:
    """OCPP Authorize from a charger: the token's status. A tag charging elsewhere is Accepted here, as major
    central systems answer (ConcurrentTx is not an Authorize status in 1.6); its StartTransaction decides."""
    charge_point = _charge_point(charge_point_id)
    return id_tag_authorize(
        tenant=charge_point.tenant,
        id_tag=id_tag,
        location_id=charge_point.location_id,
        at=timezone.now(),
        concurrent=False,
    )


def _tag_key(token: Token | None, id_tag: str) -> str:
    """What a session stores as its id_tag, and what ConcurrentTx compares: the token's uid when the token is
    known (whatever the charger sent: its uid or its wire id), else the idTag as sent."""
    return token.uid if token is not None else id_tag


def running_of_tag(*, tenant_id: int, tag: str) -> QuerySet[ChargingSession]:
    """Running sessions of a tag (token uid, or idTag of an unknown token), ignoring case (the partial unique
    index session_one_running_per_tag serves this)."""
    return ChargingSession.objects.alias(tag_ci=Lower("id_tag")).filter(
        tenant_id=tenant_id, tag_ci=Lower(Value(tag)), status__in=RUNNING_STATUSES
    )


def _lock_tag(tenant_id: int, id_tag: str) -> None:
    """Starts of one tag are decided one at a time, until the deciding transaction ends (a token is always sent
    as the same idTag, ignoring case, so the idTag as sent is the key; unknown tags have no row to lock)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('charging.id_tag'), hashtext(%s))", [f"{tenant_id}:{id_tag.lower()}"]
        )


def session_id_reserve() -> int:
    """An id for a session that does not exist yet (a remote start returns it at once; the StartTransaction it
    leads to opens the session with it). Drawn from the sessions' own sequence, so never used by another."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [ChargingSession._meta.db_table])
        row = cursor.fetchone()
    return int(row[0])


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
    refused tag makes it stop, and the stop closes the session), so energy is never lost.

    The token is decided first, outside any transaction: a roaming token may be authorized in real time at its
    eMSP (an HTTP round trip of up to OCPI_AUTHORIZE_TIMEOUT), and no lock or row is held meanwhile. Then, in one
    transaction: a session still open on this connector, started before, never got its StopTransaction: this
    start is the evidence that it ended, and it is closed first. A tag already charging elsewhere is ConcurrentTx:
    decided under a lock on the tag, and guaranteed by the database (one running session per tag)."""
    charge_point = _charge_point(charge_point_id)
    existing = _resent(charge_point, connector_id=connector_id, timestamp=timestamp, meter_start=meter_start)
    if existing is not None:  # resent StartTransaction: same transaction id, same answer
        return existing, IdTagInfo(existing.auth_status)
    result = customer_services.token_authorize(
        tenant=charge_point.tenant, id_tag=id_tag, location_id=charge_point.location_id, at=timestamp
    )
    with transaction.atomic():
        return _session_start_decided(
            charge_point=charge_point,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=timestamp,
            reservation_id=reservation_id,
            result=result,
        )


def _resent(
    charge_point: ChargePoint, *, connector_id: int, timestamp: dt.datetime, meter_start: int
) -> ChargingSession | None:
    """The session of this StartTransaction if the charger sent it before. Asked twice by every start and almost
    never found: the id in SQL, the row only when there is one (see the note above `_RESENT_SQL`)."""
    ids = _ids(_RESENT_SQL, [charge_point.pk, connector_id, timestamp, meter_start])
    return ChargingSession.objects.get(pk=ids[0]) if ids else None


# The reads of a StartTransaction that almost never find anything (a resent start, a stale session on the connector,
# the tag running elsewhere) ask for ids in SQL and load rows only when there are some: compiling them through the
# ORM was a third of a start's Python for nothing in the usual case (session_start called directly for 200 chargers
# at a time, DEBUG off, three rounds: 25.3-28.5 ms of CPU per start through the ORM, 17.6-20.1 ms with these).
_SESSIONS = ChargingSession._meta.db_table
_RESENT_SQL = (
    f"SELECT id FROM {_SESSIONS} WHERE charge_point_id = %s AND connector_id = %s"  # noqa: S608 - placeholders
    " AND started_at = %s AND meter_start_wh = %s ORDER BY id LIMIT 1"
)
_OPEN_SQL = (
    f"SELECT id FROM {_SESSIONS} WHERE charge_point_id = %s AND stopped_at IS NULL"  # noqa: S608 - placeholders
    " AND (status = ANY(%s) OR status = %s)"
    " AND (%s::smallint IS NULL OR connector_id = %s::smallint)"
    " AND (%s::timestamptz IS NULL OR started_at < %s::timestamptz) ORDER BY id FOR UPDATE"
)
_TAG_RUNNING_SQL = (  # the partial unique index session_one_running_per_tag serves it
    f"SELECT id, end_evidence FROM {_SESSIONS} WHERE tenant_id = %s AND LOWER(id_tag) = LOWER(%s)"  # noqa: S608
    " AND status = ANY(%s) ORDER BY id"
)


def _rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def _ids(sql: str, params: list[Any]) -> list[int]:
    return [row[0] for row in _rows(sql, params)]


def _session_start_decided(
    *,
    charge_point: ChargePoint,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    timestamp: dt.datetime,
    reservation_id: int | None,
    result: AuthorizationResult,
) -> tuple[ChargingSession, IdTagInfo]:
    """The transaction of session_start, with the token decided (`result`)."""
    _lock_tag(charge_point.tenant_id, id_tag)
    existing = _resent(charge_point, connector_id=connector_id, timestamp=timestamp, meter_start=meter_start)
    if existing is not None:  # the same StartTransaction, resent while the first was being decided
        return existing, IdTagInfo(existing.auth_status)
    for stale in _open_sessions(charge_point_id=charge_point.pk, connector_id=connector_id, before=timestamp):
        _close_without_stop(stale, evidence=EVIDENCE_NEW_START, at=timestamp)
    location_id = charge_point.location_id
    info = IdTagInfo(result.status, result.parent_id_tag, result.expiry_date if result.accepted else None)
    tag = _tag_key(result.token, id_tag)
    tag_running = _rows(_TAG_RUNNING_SQL, [charge_point.tenant_id, tag, _RUNNING_STATUS_VALUES])
    for noted, evidence in tag_running:
        if evidence:  # its charger said its transaction is over, and the token starts here: confirmed
            _close_one(noted, evidence=None, at=timestamp, confirmed_by_session_on=charge_point.identity)
    if any(evidence for _, evidence in tag_running):  # what is still running after those closes
        tag_running = _rows(_TAG_RUNNING_SQL, [charge_point.tenant_id, tag, _RUNNING_STATUS_VALUES])
    concurrent = bool(tag_running)
    if concurrent and info.status == "Accepted":
        info = IdTagInfo("ConcurrentTx", info.parent_id_tag, info.expiry_date)

    from apps.sessions import start_rules  # the links, reservation and limits of a start (kept apart)

    handover = start_rules.remote_start_handover(charge_point=charge_point, id_tag=id_tag, at=timestamp)
    evse = Evse.objects.filter(charge_point=charge_point, connector_id=connector_id).first()
    fields: dict[str, Any] = {
        "tenant_id": charge_point.tenant_id,
        "charge_point": charge_point,
        "evse": evse,
        "connector_id": connector_id,
        "id_tag": tag,
        "reservation_id": reservation_id,
        "started_at": timestamp,
        "meter_start_wh": meter_start,
        "last_meter_wh": meter_start,
        "last_meter_at": timestamp,
        "location_id": location_id,
        # why the token was refused (roaming_partner_inactive, blocked, ...); start rules may add theirs
        "auth_reason": "" if result.accepted else result.reason[:40],
        "authorization_reference": result.authorization_reference if result.accepted else "",
        "evse_connector": Connector.objects.filter(evse=evse).order_by("pk").first() if evse is not None else None,
    }
    if handover is not None and handover.reserved_session_id is not None:
        fields["id"] = handover.reserved_session_id
    session: ChargingSession | None = None
    if not concurrent:
        try:
            with transaction.atomic():
                session = ChargingSession.objects.create(**fields, auth_status="Pending", status=SessionStatus.PENDING)
        except IntegrityError as error:  # the database's guarantee, for a writer that did not take the tag lock
            if _constraint(error) != "session_one_running_per_tag":
                raise
            info = IdTagInfo("ConcurrentTx", info.parent_id_tag, info.expiry_date)
    if session is None:  # a refused start of a tag that runs elsewhere: created ended (invalid), never running
        session = ChargingSession.objects.create(**fields, auth_status=info.status, status=SessionStatus.INVALID)
        running = running_of_tag(tenant_id=charge_point.tenant_id, tag=tag).order_by("pk").first()
        SessionEvent.objects.create(
            session=session,
            to_status=SessionStatus.INVALID,
            reason=f"StartTransaction: idTag {info.status}",
            detail={"running_session_id": running.pk if running is not None else None},
        )
    else:
        SessionEvent.objects.create(session=session, to_status=SessionStatus.PENDING, reason="StartTransaction")
    if evse is None:
        _anomaly(charge_point, TransactionAnomaly.Kind.UNKNOWN_CONNECTOR, session=session, connector_id=connector_id)
    if timestamp > timezone.now() + FUTURE_TOLERANCE:
        session.flags.append(TransactionAnomaly.Kind.FUTURE_TIMESTAMP)
        _anomaly(charge_point, TransactionAnomaly.Kind.FUTURE_TIMESTAMP, session=session, timestamp=str(timestamp))
    session.auth_status = info.status
    info = start_rules.session_apply_start(
        session=session, info=info, charge_point=charge_point, sent_id_tag=id_tag, handover=handover
    )
    session.auth_status = info.status
    session.save()
    if session.status == SessionStatus.PENDING:
        session_transition(
            session=session,
            to=SessionStatus.ACTIVE if info.status == "Accepted" else SessionStatus.INVALID,
            reason=f"idTag {info.status}" + (f" ({session.auth_reason})" if session.auth_reason else ""),
        )
    events.publish(
        events.SessionStarted(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=charge_point.pk)
    )
    return session, info


def _constraint(error: IntegrityError) -> str:
    diag = getattr(error.__cause__, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


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


def _widen_span(session: ChargingSession, samples: list[Sample]) -> list[str]:
    """The session's sample span (`samples_from`..`samples_until`) grows to cover `samples`; returns the fields
    changed. Its meter-value reads are bounded by it (the table is partitioned by the samples' day)."""
    if not samples:
        return []
    changed = []
    low = min(sample.timestamp for sample in samples)
    high = max(sample.timestamp for sample in samples)
    if session.samples_from is None or low < session.samples_from:
        session.samples_from = low
        changed.append("samples_from")
    if session.samples_until is None or high > session.samples_until:
        session.samples_until = high
        changed.append("samples_until")
    return changed


def _apply_samples(
    charge_point: ChargePoint, session: ChargingSession | None, connector_id: int, samples: list[Sample]
) -> None:
    now = timezone.now()
    rows: list[tuple[Sample, list[str]]] = []
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
        rows.append((sample, flags))
    _insert_samples(session, charge_point.pk, connector_id, rows)
    if session is not None:
        span = _widen_span(session, samples)
        _save_fields(
            session, ["last_meter_wh", "last_meter_at", "flags", "max_power_w", "last_power_w", "updated_at", *span]
        )


_METER_COLUMNS = (
    "session_id, charge_point_id, connector_id, timestamp, measurand, phase, location, context, unit, value, flags"
)
_METER_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::varchar(40)[])"


def _insert_samples(
    session: ChargingSession | None, charge_point_id: int, connector_id: int, rows: list[tuple[Sample, list[str]]]
) -> None:
    """The samples with their flags in one INSERT; a resent frame's samples are stored once (the unique key).

    Every charging charger sends MeterValues each interval: a `MeterValue` instance per sample and the ORM's
    `bulk_create` cost 0.65-0.80 ms of CPU for a frame of two samples, this 0.26-0.32 ms (each in its transaction,
    500 frames x 4 rounds each way). The flags go as an array literal: they are `TransactionAnomaly.Kind` values
    (no quote, comma or brace), and psycopg's list dumper was 2.5 % of the interpreter time of a daphne process of
    3,000 chargers."""
    if not rows:
        return
    session_id = session.pk if session is not None else None
    params: list[Any] = []
    for sample, flags in rows:
        params += [
            session_id,
            charge_point_id,
            connector_id,
            sample.timestamp,
            sample.measurand,
            sample.phase,
            sample.location,
            sample.context,
            sample.unit,
            sample.value,
            "{" + ",".join(flags) + "}",
        ]
    values = ", ".join([_METER_ROW] * len(rows))
    table = MeterValue._meta.db_table
    statement = f"INSERT INTO {table} ({_METER_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _save_fields(session: ChargingSession, names: list[str]) -> None:
    """`session.save(update_fields=names)` in one SQL UPDATE built from the model's fields (their `pre_save`, so
    `updated_at` is now, and their database form): MeterValues of every charging charger each minute, where the
    ORM's save was 21 % of the path's interpreter time (py-spy `--gil`, 54 of 256 samples)."""
    fields = [cast(Field, ChargingSession._meta.get_field(name)) for name in names]  # concrete fields by name
    values = [field.get_db_prep_save(field.pre_save(session, False), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_SESSIONS} SET {', '.join(f'{field.column} = %s' for field in fields)} WHERE id = %s",  # noqa: S608
            [*values, session.pk],
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


def _ended(session: ChargingSession) -> bool:
    """Ended for good: stopped (by its StopTransaction or closed from evidence), or completed/failed."""
    return session.stopped_at is not None or session.status in (SessionStatus.COMPLETED, SessionStatus.FAILED)


def _store_late(
    charge_point: ChargePoint, session: ChargingSession, connector_id: int, meter_value: list[dict[str, Any]]
) -> list[Sample]:
    """Samples of an ended session: stored with it, flagged "late", and nothing about the session changes."""
    samples = parse_meter_values(meter_value)
    _insert_samples(session, charge_point.pk, connector_id, [(sample, [LATE]) for sample in samples])
    span = _widen_span(session, samples)
    if span:  # only where its samples are (not a change of the session: updated_at stays)
        ChargingSession.objects.filter(pk=session.pk).update(**{field: getattr(session, field) for field in span})
    _store_signed(charge_point, session, connector_id, meter_value)
    return samples


# What MeterValues reads of its charger and session (anything else would be read on first use). A charger with its
# tenant and a session are 52, 30 and 60 columns: through whole rows, the two reads were 70 % of the interpreter time
# MeterValues took (py-spy --gil of daphne with 3,000 chargers, 900 of them charging: 140 of 217 samples).
_METER_SESSION_FIELDS = (
    "id",
    "tenant_id",
    "charge_point_id",
    "status",
    "stopped_at",
    "end_evidence",
    "end_evidence_at",
    "meter_start_wh",
    "last_meter_wh",
    "last_meter_at",
    "last_power_w",
    "max_power_w",
    "flags",
    "samples_from",
    "samples_until",
    "updated_at",
)


_METER_SESSION_COLUMNS = [f for f in ChargingSession._meta.concrete_fields if f.attname in _METER_SESSION_FIELDS]
_METER_SESSION_SQL = (
    f"SELECT {', '.join(str(f.column) for f in _METER_SESSION_COLUMNS)} FROM {_SESSIONS}"  # noqa: S608 - model's names
    " WHERE id = %s AND charge_point_id = %s FOR UPDATE"
)
_METER_CHARGE_POINT_FIELDS = [f for f in ChargePoint._meta.concrete_fields if f.attname in ("id", "tenant_id")]
_METER_CHARGE_POINT_SQL = (
    f"SELECT {', '.join(str(f.column) for f in _METER_CHARGE_POINT_FIELDS)} FROM {ChargePoint._meta.db_table}"  # noqa: S608
    " WHERE id = %s"
)


def _meter_reads(charge_point_id: int, transaction_id: int | None) -> tuple[ChargePoint, ChargingSession | None]:
    """The charger (its id and tenant) and the session (its `_METER_SESSION_FIELDS`, locked) of a MeterValues, as
    `.only()` would load them (the other fields deferred), read in SQL: the ORM compiling those two queries was 48 %
    of the MeterValues path's interpreter time (py-spy `--gil` of 10,000 chargers, 30 % of them charging: 123 of
    256 samples in `session_add_meter_values`)."""
    with connection.cursor() as cursor:
        cursor.execute(_METER_CHARGE_POINT_SQL, [charge_point_id])
        found = cursor.fetchone()
        if found is None:
            raise ChargePoint.DoesNotExist(f"charge point {charge_point_id}")
        charge_point = ChargePoint.from_db(connection.alias, [f.attname for f in _METER_CHARGE_POINT_FIELDS], found)
        if transaction_id is None:
            return charge_point, None
        cursor.execute(_METER_SESSION_SQL, [transaction_id, charge_point_id])
        row = cursor.fetchone()
    if row is None:
        return charge_point, None
    return charge_point, ChargingSession.from_db(connection.alias, [f.attname for f in _METER_SESSION_COLUMNS], row)


@transaction.atomic
def session_add_meter_values(
    *, charge_point_id: int, connector_id: int, transaction_id: int | None, meter_value: list[dict[str, Any]]
) -> ChargingSession | None:
    """MeterValues: stored (deduplicated); the transaction's register reading advances, backwards is flagged.
    Values of a session that has ended are kept as late samples and change nothing of it."""
    charge_point, session = _meter_reads(charge_point_id, transaction_id)
    if transaction_id is not None and session is None:
        _anomaly(charge_point, TransactionAnomaly.Kind.UNKNOWN_TRANSACTION, tx=transaction_id, detail="MeterValues")
    if session is not None and _ended(session):
        samples = _store_late(charge_point, session, connector_id, meter_value)
        stamps = sorted(sample.timestamp for sample in samples)
        _anomaly(
            charge_point,
            TransactionAnomaly.Kind.LATE_METER_VALUES,
            session=session,
            detail=f"MeterValues after the session ended ({session.status})",
            samples=len(samples),
            first=stamps[0].isoformat() if stamps else None,
            last=stamps[-1].isoformat() if stamps else None,
        )
        return session
    samples = parse_meter_values(meter_value)
    if (
        session is not None
        and session.end_evidence
        and _is_news(session, max((x.timestamp for x in samples), default=None))
    ):
        _withdraw_end(session, "MeterValues")
    _apply_samples(charge_point, session, connector_id, samples)
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


DEFAULT_STOP_REASON = "Local"  # OCPP 1.6 StopTransaction.req: reason may be omitted only when it is Local


@transaction.atomic
def session_stop(
    *,
    charge_point_id: int,
    transaction_id: int,
    meter_stop: int,
    timestamp: dt.datetime,
    reason: str = DEFAULT_STOP_REASON,
    id_tag: str = "",
    transaction_data: list[dict[str, Any]] | None = None,
) -> tuple[ChargingSession | None, IdTagInfo | None]:
    """StopTransaction, idempotent: the first stop sets the totals; later ones are recorded and change nothing.
    A stop of a session already closed from evidence (its StopTransaction was missing) is recorded (anomaly,
    session event, its transaction data as late samples) and never re-prices it."""
    reason = reason or DEFAULT_STOP_REASON
    charge_point = _charge_point(charge_point_id)
    session = ChargingSession.objects.select_for_update().filter(pk=transaction_id, charge_point=charge_point).first()
    info = None
    if id_tag:
        info = id_tag_authorize(
            tenant=charge_point.tenant, id_tag=id_tag, location_id=charge_point.location_id, concurrent=False
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
    if TransactionAnomaly.Kind.CLOSED_WITHOUT_STOP in session.flags:
        said: dict[str, Any] = {
            "meter_stop": meter_stop,
            "timestamp": timestamp.isoformat(),
            "reason": reason,
            "id_tag": id_tag,
        }
        _anomaly(
            charge_point,
            TransactionAnomaly.Kind.STOP_AFTER_CLOSE,
            session=session,
            detail="StopTransaction after the session was closed without it; not re-priced",
            **said,
        )
        if transaction_data:
            _store_late(charge_point, session, session.connector_id, transaction_data)
        SessionEvent.objects.create(
            session=session,
            from_status=session.status,
            to_status=session.status,
            reason="StopTransaction after the session was closed without it (recorded, not re-priced)",
            detail=said,
        )
        return session, info
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
    session.stop_reason = reason
    session.stop_id_tag = id_tag or ""
    session.save()
    if session.status in RUNNING_STATUSES and session.status != SessionStatus.PENDING:
        session_transition(session=session, to=SessionStatus.COMPLETED, reason=f"StopTransaction {reason}".strip())
        # priced and given its CDR in this event's delivery (session_completion), not before the charger's answer
        events.publish(
            events.SessionStopped(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=charge_point.pk)
        )
        return session, info
    if session.status == SessionStatus.PENDING:
        session_transition(session=session, to=SessionStatus.FAILED, reason=f"stopped before it started: {reason}")
    events.publish(
        events.SessionEnded(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=charge_point.pk)
    )
    return session, info


def session_completion(*, session_id: int) -> bool:
    """Price a session its StopTransaction completed and write its CDR (`completion.session_complete`), then
    publish SessionEnded; idempotent (False: nothing to do, it has its CDR or is not completed).

    Run by the SessionStopped delivery after the stop committed, so that the charger's StopTransaction.conf
    waits only for the stop itself: with pricing and the CDR in its answer, a StopTransaction cost 17 statements
    and about 14 ms more CPU in the OCPP process, and 3,000 chargers stopping within 20 s (a site's power cut, the
    end of an event) outran two cores and timed out (benchmarks/ocpp_bench.py, 10,000 chargers). Anything that
    needs the price before the delivery ran (the invoice run) calls this first."""
    from apps.sessions import completion  # pricing, CDR and data quality of a completed session

    with transaction.atomic():
        session = (
            ChargingSession.objects.select_for_update(of=("self",))
            .filter(pk=session_id, status=SessionStatus.COMPLETED, cdr__isnull=True)
            .only("pk", "tenant_id", "charge_point_id")
            .first()
        )
        if session is None:
            return False
        completion.session_complete(session=session)  # reads the whole session again, with what it prices from
        events.publish(
            events.SessionEnded(
                tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=session.charge_point_id
            )
        )
    return True


def sessions_awaiting_completion(
    *, tenant_id: int | None = None, stopped_since: dt.datetime | None = None, stopped_before: dt.datetime | None = None
) -> list[int]:
    """Completed sessions whose pricing and CDR have not run yet (their SessionStopped is on its way): no CDR, no
    cost and no reason why not. Bound it by time: it reads every completed session the bounds leave in."""
    pending = ChargingSession.objects.filter(
        status=SessionStatus.COMPLETED,
        stopped_at__isnull=False,
        cdr__isnull=True,
        cost_excl_vat__isnull=True,
        pricing_error="",
    )
    if tenant_id is not None:
        pending = pending.filter(tenant_id=tenant_id)
    if stopped_since is not None:
        pending = pending.filter(stopped_at__gte=stopped_since)
    if stopped_before is not None:
        pending = pending.filter(stopped_at__lt=stopped_before)
    return list(pending.values_list("pk", flat=True).order_by("pk"))


# --------------------------------------------------------------------------- sessions closed from evidence
#
# A session whose StopTransaction never comes (the charger rebooted, lost its queue, the socket died for good) is
# closed from evidence, priced from its last meter value and flagged closed_without_stop:
# - a new StartTransaction on its connector closes it at once: transaction messages come in order, so its stop
#   would have come first;
# - an Available or Preparing status of its connector, or a BootNotification of its charger, is noted on it
#   (end_evidence) and it is closed CHARGING_SESSION_CLOSE_GRACE_SECONDS later unless its StopTransaction comes
#   meanwhile: a charger that reconnects reports its status, or boots, before it delivers the stop it queued, and
#   that stop carries the exact energy. News of the transaction (MeterValues, a charging status) withdraws the note
#   (some chargers send BootNotification on every reconnect and charge on). A start of the same token elsewhere
#   confirms the note at once;
# - no news at all for CHARGING_SESSION_CLOSE_AFTER_HOURS (beat).

EVIDENCE_NEW_START = "new_start"
EVIDENCE_STATUS = "status"
EVIDENCE_BOOT = "boot"
EVIDENCE_TIMEOUT = "timeout"
# OCPP 1.6 ChargePointStatus of a connector with no transaction, and with one
NO_TRANSACTION_STATUSES = ("Available", "Preparing")
TRANSACTION_STATUSES = ("Charging", "SuspendedEV", "SuspendedEVSE")
CONNECTOR_STATUSES_OF_INTEREST = frozenset(NO_TRANSACTION_STATUSES + TRANSACTION_STATUSES)
NEWS_TOLERANCE = dt.timedelta(seconds=60)  # charger clocks synchronised at boot (BootNotification.conf) drift little


def close_after() -> dt.timedelta:
    """A running session with no news for this long is closed (setting CHARGING_SESSION_CLOSE_AFTER_HOURS)."""
    return dt.timedelta(hours=settings.CHARGING_SESSION_CLOSE_AFTER_HOURS)


def close_grace() -> dt.timedelta:
    """How long a noted end waits for the StopTransaction (setting CHARGING_SESSION_CLOSE_GRACE_SECONDS)."""
    return dt.timedelta(seconds=settings.CHARGING_SESSION_CLOSE_GRACE_SECONDS)


def _open_sessions(
    *, charge_point_id: int, connector_id: int | None = None, before: dt.datetime | None = None
) -> list[ChargingSession]:
    """Sessions of a charger (connector) that have not ended yet, started before `before`, locked in id order:
    running ones, and refused (invalid) ones the charger has not stopped yet."""
    params = [charge_point_id, _RUNNING_STATUS_VALUES, SessionStatus.INVALID.value]
    ids = _ids(_OPEN_SQL, [*params, connector_id, connector_id, before, before])  # locked; see above `_RESENT_SQL`
    if not ids:
        return []
    return list(ChargingSession.objects.filter(pk__in=ids).select_related("charge_point").order_by("pk"))


def _why(evidence: str, **detail: Any) -> str:
    if evidence == EVIDENCE_NEW_START:
        return "a new StartTransaction on its connector"
    if evidence == EVIDENCE_STATUS:
        return f"connector {detail.get('status', '')}"
    if evidence == EVIDENCE_BOOT:
        return "the charger rebooted (BootNotification)"
    return f"no news for {detail.get('hours', '?')} h"


def _close_without_stop(session: ChargingSession, *, evidence: str, at: dt.datetime, **detail: Any) -> None:
    """Close a session (locked, not ended) whose StopTransaction never came: stopped at its last meter value,
    priced from it (completion), flagged closed_without_stop (session flag, suspicious reason, anomaly), and the
    evidence recorded on the session event."""
    charge_point = session.charge_point
    meter_stop = session.last_meter_wh if session.last_meter_wh is not None else session.meter_start_wh
    stopped_at = max(session.last_meter_at or session.started_at, session.started_at)
    session.stopped_at = stopped_at
    session.meter_stop_wh = meter_stop
    session.energy_wh = max(meter_stop - session.meter_start_wh, 0)
    session.stop_reason = "Other"
    if CLOSED_WITHOUT_STOP not in session.flags:
        session.flags.append(CLOSED_WITHOUT_STOP)
    session.save()
    why = f"closed without StopTransaction: {_why(evidence, **detail)}"
    record = {
        "evidence": evidence,
        "at": at.isoformat(),
        "stopped_at": stopped_at.isoformat(),
        "meter_stop_wh": meter_stop,
        **detail,
    }
    _anomaly(charge_point, TransactionAnomaly.Kind.CLOSED_WITHOUT_STOP, session=session, detail=why, **record)
    if session.status == SessionStatus.PENDING:
        session_transition(session=session, to=SessionStatus.FAILED, reason=why, detail=record)
    elif session.status in RUNNING_STATUSES:
        session_transition(session=session, to=SessionStatus.COMPLETED, reason=why, detail=record)
        from apps.sessions import completion  # pricing, CDR and data quality of a completed session

        completion.session_complete(session=session)
        reasons = ChargingSession.objects.values_list("suspicious_reasons", flat=True).get(pk=session.pk)
        if CLOSED_WITHOUT_STOP not in reasons:
            reasons.append(CLOSED_WITHOUT_STOP)
        ChargingSession.objects.filter(pk=session.pk).update(suspicious=True, suspicious_reasons=reasons)
    else:  # refused (invalid): it never ran; the audit row says it ended
        SessionEvent.objects.create(
            session=session, from_status=session.status, to_status=session.status, reason=why, detail=record
        )
    events.publish(
        events.SessionEnded(tenant_id=session.tenant_id, session_id=session.pk, charge_point_id=session.charge_point_id)
    )


def _evidence_detail(session: ChargingSession) -> dict[str, Any]:
    """The end noted on a session, as `_close_without_stop` records it."""
    noted = session.end_evidence.split(":", 1)
    detail: dict[str, Any] = {"noted_at": session.end_evidence_at.isoformat() if session.end_evidence_at else None}
    if len(noted) == 2:
        detail["status"] = noted[1]
    return detail


def _note_end(ids: list[int], *, evidence: str, at: dt.datetime, now: dt.datetime, **detail: Any) -> list[int]:
    """Note on running sessions that their transaction is over on the charger (the first note counts); the beat
    job closes them after the grace period unless their StopTransaction comes. Ids noted."""
    noted = []
    label = f"{evidence}:{detail['status']}" if "status" in detail else evidence
    with transaction.atomic():
        for session in (
            ChargingSession.objects.select_for_update()
            .filter(pk__in=ids, status__in=RUNNING_STATUSES, stopped_at__isnull=True, end_evidence="")
            .order_by("pk")
        ):
            session.end_evidence, session.end_evidence_at = label, now
            session.save(update_fields=["end_evidence", "end_evidence_at", "updated_at"])
            SessionEvent.objects.create(
                session=session,
                from_status=session.status,
                to_status=session.status,
                reason=f"transaction over on the charger: {_why(evidence, **detail)}; closed in "
                f"{int(close_grace().total_seconds())} s unless its StopTransaction comes",
                detail={"evidence": evidence, "at": at.isoformat(), **detail},
            )
            noted.append(session.pk)
    return noted


def _is_news(session: ChargingSession, at: dt.datetime | None) -> bool:
    """Is a message stamped `at` (charger's clock) news of the transaction after its end was noted (our clock)?
    Messages the charger queued before (delivered after a reboot, before its stop) are not."""
    noted = session.end_evidence_at
    return noted is None or at is None or at >= noted - NEWS_TOLERANCE


def _withdraw_end(session: ChargingSession, why: str) -> None:
    """News of the transaction after an end was noted: it runs on; the note goes (the session is locked)."""
    SessionEvent.objects.create(
        session=session,
        from_status=session.status,
        to_status=session.status,
        reason=f"transaction still running ({why}): end note withdrawn",
        detail={"withdrawn": session.end_evidence, "noted_at": _evidence_detail(session)["noted_at"]},
    )
    session.end_evidence, session.end_evidence_at = "", None
    ChargingSession.objects.filter(pk=session.pk).update(end_evidence="", end_evidence_at=None)


def _running_ids(charge_point_id: int, connector_id: int | None = None, before: dt.datetime | None = None) -> list[int]:
    """Running sessions of a charger (of one connector, started before `before`). Every BootNotification and every
    StatusNotification of a connector asks, so in SQL: 1.0 ms of Python through the ORM, 0.2 ms here (py-spy of
    10,000 chargers: the ORM read was 7 % of the time daphne held the interpreter)."""
    return _ids(_RUNNING_SQL, [charge_point_id, _RUNNING_STATUS_VALUES, connector_id, connector_id, before, before])


_RUNNING_STATUS_VALUES = [status.value for status in RUNNING_STATUSES]
_RUNNING_SQL = (
    f"SELECT id FROM {ChargingSession._meta.db_table} "  # noqa: S608 - the model's table, placeholders only
    "WHERE charge_point_id = %s AND status = ANY(%s) AND stopped_at IS NULL"
    " AND (%s::smallint IS NULL OR connector_id = %s::smallint)"
    " AND (%s::timestamptz IS NULL OR started_at < %s::timestamptz) ORDER BY id"
)


# A charging charger says Charging every other message: the ORM built this read in 0.83-1.20 ms of CPU, SQL takes
# 0.18-0.23 ms (500 statuses x 4 rounds each way). The ORM read was 5.7 % of the time a daphne process of 3,000
# chargers (900 charging) held the interpreter (py-spy --gil, 2026-12-07).
_NOTED_SQL = (
    f"SELECT id FROM {ChargingSession._meta.db_table} "  # noqa: S608 - the model's table, placeholders only
    "WHERE charge_point_id = %s AND status = ANY(%s) AND stopped_at IS NULL AND connector_id = %s::smallint"
    " AND end_evidence_at IS NOT NULL ORDER BY id"
)


def sessions_on_connector_status(
    *, charge_point_id: int, connector_id: int, status: str, at: dt.datetime | None = None
) -> list[int]:
    """StatusNotification of a connector. Available or Preparing: no transaction runs there, so running sessions
    on it that started before that status (charger's clock) have ended: noted (closed after the grace period
    unless their StopTransaction comes). Charging or suspended: a noted end is withdrawn. Ids noted."""
    if connector_id == 0:
        return []
    now = timezone.now()
    at = at or now
    if status in NO_TRANSACTION_STATUSES:
        ids = _running_ids(charge_point_id, connector_id, before=at)
        return _note_end(ids, evidence=EVIDENCE_STATUS, at=at, now=now, status=status) if ids else []
    if status in TRANSACTION_STATUSES:
        noted = _ids(_NOTED_SQL, [charge_point_id, _RUNNING_STATUS_VALUES, connector_id])
        for session_id in noted:
            with transaction.atomic():
                session = ChargingSession.objects.select_for_update().filter(pk=session_id).first()
                if (
                    session is not None
                    and session.end_evidence
                    and session.stopped_at is None
                    and _is_news(session, at)
                ):
                    _withdraw_end(session, f"connector {status}")
    return []


def sessions_on_boot(*, charge_point_id: int) -> list[int]:
    """BootNotification: the charger restarted, so its running sessions have ended: noted (closed after the grace
    period unless their StopTransaction, which the charger may have queued, comes). Ids noted."""
    now = timezone.now()
    ids = _running_ids(charge_point_id)
    return _note_end(ids, evidence=EVIDENCE_BOOT, at=now, now=now) if ids else []


def _close_one(session_id: int, *, evidence: str | None, at: dt.datetime, **detail: Any) -> bool:
    """Close one running session in its own transaction (evidence None: the one noted on it); one that ended or
    was heard from meanwhile is left alone."""
    with transaction.atomic():
        session = (
            ChargingSession.objects.select_for_update(of=("self",))
            .select_related("charge_point")
            .filter(pk=session_id, status__in=RUNNING_STATUSES, stopped_at__isnull=True)
            .first()
        )
        if session is None or (evidence is None and not session.end_evidence):
            return False
        if evidence is None:
            evidence = session.end_evidence.split(":", 1)[0]
            detail = {**_evidence_detail(session), **detail}
        _close_without_stop(session, evidence=evidence, at=at, **detail)
        return True


def sessions_close_stale(*, now: dt.datetime | None = None, after: dt.timedelta | None = None) -> list[int]:
    """Beat: running sessions whose end was noted more than the grace period ago, and running sessions with no news
    for CHARGING_SESSION_CLOSE_AFTER_HOURS, neither by the charger's clock (last meter value, or the start) nor by
    ours (last change), are closed. Ids closed."""
    now = now or timezone.now()
    after = after if after is not None else close_after()
    running = ChargingSession.objects.filter(status__in=RUNNING_STATUSES, stopped_at__isnull=True)
    noted = list(
        running.filter(end_evidence_at__lt=now - close_grace()).exclude(end_evidence="").values_list("pk", flat=True)
    )
    closed = [pk for pk in sorted(noted) if _close_one(pk, evidence=None, at=now)]
    cutoff = now - after
    silent = (
        running.filter(Q(last_meter_at__lt=cutoff) | Q(last_meter_at__isnull=True, started_at__lt=cutoff))
        .filter(updated_at__lt=cutoff)
        .exclude(pk__in=closed)
    )
    hours = after.total_seconds() / 3600
    for pk in silent.order_by("pk").values_list("pk", flat=True):
        if _close_one(pk, evidence=EVIDENCE_TIMEOUT, at=now, hours=int(hours) if hours.is_integer() else hours):
            closed.append(pk)
    return closed


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


# --------------------------------------------------------------------------- partner sessions: our drivers' commands


def partner_session_request(
    *,
    partner_id: int,
    token: Token,
    state: str,
    country_code: str,
    party_id: str,
    location_id: int | None,
    location_ocpi_id: str,
    evse_uid: str,
    connector_id: str,
    authorization_reference: str,
    reservation_expires_at: dt.datetime | None = None,
) -> PartnerSession:
    """A session (or reservation) of our driver on a partner's EVSE, as we ask for it (START_SESSION, RESERVE_NOW):
    the driver, business customer and contract are the token's; `authorization_reference` is ours (the CPO echoes it
    in its Session and CDR)."""
    return PartnerSession.objects.create(
        tenant_id=token.tenant_id,
        partner_id=partner_id,
        country_code=country_code,
        party_id=party_id,
        authorization_reference=authorization_reference,
        state=state,
        token=token,
        driver_id=token.driver_id,
        business_customer_id=token.business_customer_id,
        contract_id=token.business_contract_id,
        location_id=location_id,
        location_ocpi_id=location_ocpi_id,
        evse_uid=evse_uid,
        connector_id=connector_id,
        reservation_expires_at=reservation_expires_at,
    )


def partner_session_state_set(*, session_id: int, state: str, reason: str, only_from: list[str]) -> bool:
    """Move a partner session to `state` with the CPO's message, if it is still in one of `only_from` (a command's
    result never undoes what the CPO reported meanwhile, e.g. its session PUT). True when it moved."""
    moved = PartnerSession.objects.filter(pk=session_id, state__in=only_from).update(
        state=state, state_reason=reason[:255], updated_at=timezone.now()
    )
    return bool(moved)


def partner_session_oicp_update(
    *,
    session_id: int,
    state: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    kwh: Decimal | None = None,
    reason: str | None = None,
    only_from: tuple[str, ...] = (),
) -> bool:
    """A Hubject (OICP) session of our driver as the CPO's notifications and CDR report it (OICP has no session
    object): the state (only from one of `only_from`, when given: a Progress does not undo a stop we asked for),
    start, end and kWh given. A completed session stays completed, and kWh never go down (a late Progress after the
    End changes nothing). True when something changed."""
    values: dict[str, Any] = {}
    with transaction.atomic():
        row = PartnerSession.objects.select_for_update().filter(pk=session_id).first()
        if row is None:
            return False
        movable = row.state != PartnerSessionState.COMPLETED and (not only_from or row.state in only_from)
        if state is not None and movable:
            values["state"] = state
        if start is not None and row.start_date_time is None:
            values["start_date_time"] = start
        if end is not None:
            values["end_date_time"] = end
        final = state == PartnerSessionState.COMPLETED  # the End or the CDR: its kWh are the session's
        if kwh is not None and row.state != PartnerSessionState.COMPLETED and (final or kwh >= row.kwh):
            values["kwh"] = kwh
        if reason is not None:
            values["state_reason"] = reason[:255]
        if not values:
            return False
        values["last_updated"] = timezone.now()
        PartnerSession.objects.filter(pk=row.pk).update(**values, updated_at=timezone.now())
    return True


# --------------------------------------------------------------------------- partner sessions and CDRs (eMSP role)
# Our drivers' sessions on another CPO's EVSEs as the CPO reports them (OCPI sessions Receiver, or pulled), and the
# CDRs it sends. The adapter (apps/roaming/ocpi/emsp_receivers.py) validates the wire objects; these services match
# them to our rows and our drivers, and keep the newest data (an object older than the stored one changes nothing).


@dataclass(frozen=True)
class PartnerSessionData:
    country_code: str
    party_id: str
    ocpi_id: str
    authorization_reference: str
    token_uid: str  # cdr_token.uid: our driver's token
    fields: dict[str, Any]  # state, location_ocpi_id, evse_uid, connector_id, start/end, kwh, currency, totals
    data: dict[str, Any]
    last_updated: dt.datetime


@dataclass(frozen=True)
class PartnerCdrData:
    country_code: str
    party_id: str
    ocpi_id: str
    session_ocpi_id: str
    authorization_reference: str
    token_uid: str
    fields: dict[str, Any]  # start/end, currency, totals, credit, credit_reference_id
    data: dict[str, Any]
    last_updated: dt.datetime


def _our_token(tenant_id: int, uid: str) -> Token | None:
    """The tenant's own token (not one a partner pushed) with this uid, ignoring case; None when it is not ours."""
    if not uid:
        return None
    return (
        Token.objects.alias(uid_ci=Lower("uid"))
        .filter(tenant_id=tenant_id, uid_ci=Lower(Value(uid)))
        .exclude(source="roaming")
        .select_related("driver", "business_customer")
        .first()
    )


def _holder(tenant_id: int, uid: str, current: Any = None) -> dict[str, Any]:
    """token, driver and business customer of a partner session or CDR from the cdr_token's uid (a session we
    started with START_SESSION keeps the token it was started with)."""
    if current is not None and current.token_id is not None:
        return {}
    token = _our_token(tenant_id, uid)
    if token is None:
        return {}
    return {"token": token, "driver": token.driver, "business_customer": token.business_customer}


@transaction.atomic
def partner_session_put(*, tenant_id: int, partner_id: int, session: PartnerSessionData) -> tuple[PartnerSession, bool]:
    """Create or replace a partner's session: matched by the CPO's session id, else (a session we asked for with
    START_SESSION, not yet known by its id) by our authorization_reference. False: the stored one is newer."""
    with connection.cursor() as cursor:  # one writer per session (concurrent PUT/PATCH of a new one cannot collide)
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('partner.session'), hashtext(%s))",
            [f"{partner_id}:{session.country_code}:{session.party_id}:{session.ocpi_id}"],
        )
    row = (
        PartnerSession.objects.select_for_update()
        .filter(
            partner_id=partner_id, country_code=session.country_code, party_id=session.party_id, ocpi_id=session.ocpi_id
        )
        .first()
    )
    if row is None and session.authorization_reference:
        row = (
            PartnerSession.objects.select_for_update()
            .filter(tenant_id=tenant_id, partner_id=partner_id, authorization_reference=session.authorization_reference)
            .filter(Q(ocpi_id="") | Q(ocpi_id=session.ocpi_id))
            .first()
        )
    if row is not None and row.last_updated is not None and row.last_updated > session.last_updated:
        return row, False
    location = PartnerLocation.objects.filter(
        partner_id=partner_id,
        country_code=session.country_code,
        party_id=session.party_id,
        ocpi_id=session.fields.get("location_ocpi_id", ""),
    ).first()
    values = {
        **session.fields,
        **_holder(tenant_id, session.token_uid, row),
        "country_code": session.country_code,
        "party_id": session.party_id,
        "ocpi_id": session.ocpi_id,
        "location": location,
        "data": session.data,
        "last_updated": session.last_updated,
    }
    if session.authorization_reference and (row is None or not row.authorization_reference):
        taken = PartnerSession.objects.filter(
            tenant_id=tenant_id, authorization_reference=session.authorization_reference
        )
        if row is not None:
            taken = taken.exclude(pk=row.pk)
        if not taken.exists():
            values["authorization_reference"] = session.authorization_reference
    if row is None:
        row = PartnerSession.objects.create(tenant_id=tenant_id, partner_id=partner_id, **values)
    else:
        for name, value in values.items():
            setattr(row, name, value)
        row.save()
    return row, True


@transaction.atomic
def partner_cdr_create(*, tenant_id: int, partner_id: int, cdr: PartnerCdrData) -> PartnerCdr | None:
    """Store a CDR once: None when this partner already sent a CDR with that id (CDRs never change; a correction
    comes as a credit CDR and a new one). Linked to the partner session by the CPO's session id or our
    authorization_reference, and to our driver by the cdr_token's uid."""
    key = {"partner_id": partner_id, "country_code": cdr.country_code, "party_id": cdr.party_id, "ocpi_id": cdr.ocpi_id}
    if PartnerCdr.objects.filter(**key).exists():
        return None
    sessions = PartnerSession.objects.filter(tenant_id=tenant_id, partner_id=partner_id)
    session = None
    if cdr.session_ocpi_id:
        session = sessions.filter(
            country_code=cdr.country_code, party_id=cdr.party_id, ocpi_id=cdr.session_ocpi_id
        ).first()
    if session is None and cdr.authorization_reference:
        session = sessions.filter(authorization_reference=cdr.authorization_reference).first()
    holder: dict[str, Any]
    if session is not None and session.token_id is not None:
        holder = {"token_id": session.token_id, "driver_id": session.driver_id}
        holder["business_customer_id"] = session.business_customer_id
    else:
        holder = _holder(tenant_id, cdr.token_uid)
    try:
        with transaction.atomic():
            row = PartnerCdr.objects.create(
                tenant_id=tenant_id,
                **key,
                session=session,
                session_ocpi_id=cdr.session_ocpi_id,
                authorization_reference=cdr.authorization_reference,
                **holder,
                **cdr.fields,
                data=cdr.data,
                last_updated=cdr.last_updated,
            )
            events.publish(events.PartnerCdrReceived(tenant_id=tenant_id, cdr_id=row.pk, partner_id=partner_id))
            return row
    except IntegrityError:  # the same CDR POSTed twice at once: the other request stored it
        if PartnerCdr.objects.filter(**key).exists():
            return None
        raise
