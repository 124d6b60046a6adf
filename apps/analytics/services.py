"""Writes of analytics: session facts, incremental rollups, alerts (open / dedupe / resolve / acknowledge).

Every write is a typed, keyword-only function in a transaction; notifications go out after commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.analytics.models import (
    Alert,
    AlertKind,
    AlertRule,
    AlertStatus,
    Granularity,
    Rollup,
    SessionFact,
)
from apps.core import metrics
from apps.customers.models import Token, Vehicle
from apps.sessions.models import ChargingSession, SessionStatus

logger = logging.getLogger(__name__)

# a session "ended normally" when the charger gives one of these reasons (OCPP 1.6; absent means Local)
NORMAL_STOP_REASONS = frozenset({"", "Local", "Remote", "EVDisconnected"})
# rows younger than this are left for the next run: an id taken by a transaction still open is never skipped
ROLLUP_LAG = dt.timedelta(seconds=30)


# --------------------------------------------------------------------------- session facts


def _vehicle_model(session: ChargingSession) -> str:
    """The car behind a session: the session's vehicle (set from a reservation), else the only vehicle of the
    session's driver (or of the token's driver); a driver with several cars stays unknown."""
    if session.vehicle_id is not None:
        vehicle = Vehicle.objects.filter(pk=session.vehicle_id).values_list("make", "model").first()
        if vehicle is not None:
            return f"{vehicle[0]} {vehicle[1]}"
    driver_id = session.driver_id or (
        Token.objects.filter(tenant_id=session.tenant_id, uid__iexact=session.id_tag)
        .values_list("driver_id", flat=True)
        .first()
    )
    if driver_id is None:
        return ""
    vehicles = list(Vehicle.objects.filter(driver_id=driver_id).values_list("make", "model")[:2])
    return f"{vehicles[0][0]} {vehicles[0][1]}" if len(vehicles) == 1 else ""


def session_successful(*, status: str, energy_wh: int | None, stop_reason: str) -> bool:
    """Delivered energy and ended normally (completed, not failed or refused, with a normal stop reason)."""
    return status == SessionStatus.COMPLETED and (energy_wh or 0) > 0 and stop_reason in NORMAL_STOP_REASONS


@transaction.atomic
def session_fact_record(*, session_id: int, kind: str) -> SessionFact | None:
    """Capture what a session contributes (idempotent: a second call for the same session and kind is a no-op)."""
    session = ChargingSession.objects.select_related("charge_point").filter(pk=session_id).first()
    if session is None or (kind == SessionFact.Kind.ENDED and session.stopped_at is None):
        return None
    fact = SessionFact(
        tenant_id=session.tenant_id,
        kind=kind,
        session_id=session.pk,
        charge_point_id=session.charge_point_id,
        location_id=session.charge_point.location_id,
        connector_id=session.connector_id,
        started_at=session.started_at,
        at=session.started_at,
        vehicle_model=_vehicle_model(session),
    )
    if kind == SessionFact.Kind.ENDED:
        assert session.stopped_at is not None
        fact.stopped_at = fact.at = session.stopped_at
        fact.energy_wh = session.energy_wh or 0
        fact.duration_s = max(int((session.stopped_at - session.started_at).total_seconds()), 0)
        fact.stop_reason = session.stop_reason
        fact.successful = session_successful(
            status=session.status, energy_wh=session.energy_wh, stop_reason=session.stop_reason
        )
    # not bulk_create(ignore_conflicts=True): it never sets the pk, so the caller could not tell a new fact (the
    # webhook's totals) from a repeat; a savepoint tells them apart
    try:
        with transaction.atomic():
            fact.save(force_insert=True)
    except IntegrityError:
        return None  # recorded before (unique session, kind, at)
    return fact


_BACKFILL_SQL = """
INSERT INTO analytics_sessionfact (
    tenant_id, kind, session_id, charge_point_id, location_id, connector_id, started_at, stopped_at, "at",
    energy_wh, duration_s, successful, stop_reason, vehicle_model, created_at)
SELECT s.tenant_id, k.kind, s.id, s.charge_point_id, cp.location_id, s.connector_id, s.started_at,
       CASE WHEN k.kind = 'ended' THEN s.stopped_at END,
       CASE WHEN k.kind = 'ended' THEN s.stopped_at ELSE s.started_at END,
       CASE WHEN k.kind = 'ended' THEN coalesce(s.energy_wh, 0) ELSE 0 END,
       CASE WHEN k.kind = 'ended' THEN greatest(extract(epoch FROM s.stopped_at - s.started_at)::bigint, 0) ELSE 0 END,
       k.kind = 'ended' AND s.status = %(completed)s AND coalesce(s.energy_wh, 0) > 0
           AND s.stop_reason = ANY(%(normal)s),
       CASE WHEN k.kind = 'ended' THEN s.stop_reason ELSE '' END,
       coalesce(
           (SELECT v.make || ' ' || v.model FROM customers_vehicle v WHERE v.id = s.vehicle_id),
           (SELECT min(v.make || ' ' || v.model) FROM customers_vehicle v
            WHERE v.driver_id = coalesce(
                s.driver_id,
                (SELECT t.driver_id FROM customers_token t
                 WHERE t.tenant_id = s.tenant_id AND upper(t.uid) = upper(s.id_tag) ORDER BY t.id LIMIT 1))
            HAVING count(*) = 1),
           ''),
       now()
FROM charging_chargingsession s
JOIN stations_chargepoint cp ON cp.id = s.charge_point_id
CROSS JOIN (VALUES ('started'), ('ended')) AS k(kind)
WHERE s.tenant_id = %(tenant_id)s AND s.started_at IS NOT NULL
  AND (k.kind = 'started' OR s.stopped_at IS NOT NULL)
ON CONFLICT (session_id, kind, "at") DO NOTHING
"""


@transaction.atomic
def session_facts_backfill(*, tenant_id: int) -> int:
    """Record the facts of every session of a tenant that has none yet (sessions imported or bulk-created
    without going through the charger path, such as migrated history or demo data); returns how many facts
    were added. Idempotent; the next `rollup_run` folds them into the KPI buckets. The vehicle is the
    session's own, else the only one of the session's (or its token's) driver, as in
    `session_fact_record`."""
    with connection.cursor() as cursor:
        cursor.execute(
            _BACKFILL_SQL,
            {"tenant_id": tenant_id, "completed": SessionStatus.COMPLETED.value, "normal": sorted(NORMAL_STOP_REASONS)},
        )
        return int(cursor.rowcount)


# --------------------------------------------------------------------------- rollups

_TRUNC = {Granularity.MINUTE: "minute", Granularity.HOUR: "hour", Granularity.DAY: "day"}

_ROLLUP_SQL = """
INSERT INTO analytics_kpibucket AS b (
    tenant_id, granularity, bucket, charge_point_id, location_id,
    sessions_started, sessions_ended, sessions_successful, energy_wh, duration_s)
SELECT f.tenant_id, %(granularity)s,
       date_trunc(%(trunc)s, f.at, 'UTC'),
       f.charge_point_id, max(f.location_id),
       count(*) FILTER (WHERE f.kind = 'started'),
       count(*) FILTER (WHERE f.kind = 'ended'),
       count(*) FILTER (WHERE f.kind = 'ended' AND f.successful),
       coalesce(sum(f.energy_wh) FILTER (WHERE f.kind = 'ended'), 0),
       coalesce(sum(f.duration_s) FILTER (WHERE f.kind = 'ended'), 0)
FROM analytics_sessionfact f
WHERE f.id > %(after)s AND f.id <= %(upto)s  -- new facts are in the newest days, but late ones anywhere: by id
GROUP BY 1, 2, 3, 4
ON CONFLICT (granularity, bucket, charge_point_id) DO UPDATE SET
    location_id = coalesce(EXCLUDED.location_id, b.location_id),
    sessions_started = b.sessions_started + EXCLUDED.sessions_started,
    sessions_ended = b.sessions_ended + EXCLUDED.sessions_ended,
    sessions_successful = b.sessions_successful + EXCLUDED.sessions_successful,
    energy_wh = b.energy_wh + EXCLUDED.energy_wh,
    duration_s = b.duration_s + EXCLUDED.duration_s
"""


@dataclass(frozen=True)
class RollupResult:
    granularity: str
    after: int
    upto: int
    buckets: int


def rollup_run(*, lag: dt.timedelta = ROLLUP_LAG, now: dt.datetime | None = None) -> list[RollupResult]:
    """Fold the facts newer than each rollup's watermark into its buckets (minute, hour, day).

    Each rollup runs in its own transaction holding its watermark row locked, so two runs never fold the
    same facts twice, and the watermark moves in the same transaction as the buckets it accounts for.
    """
    started = time.perf_counter()
    cutoff = (now or timezone.now()) - lag
    upto = SessionFact.objects.filter(created_at__lte=cutoff).order_by("-id").values_list("id", flat=True).first() or 0
    results = []
    for granularity in Granularity:
        name = f"sessions:{granularity.value}"
        with transaction.atomic():
            Rollup.objects.get_or_create(name=name)
            rollup = Rollup.objects.select_for_update().get(name=name)
            if upto <= rollup.last_fact_id:
                results.append(RollupResult(granularity.value, rollup.last_fact_id, rollup.last_fact_id, 0))
                continue
            with connection.cursor() as cursor:
                cursor.execute(
                    _ROLLUP_SQL,
                    {
                        "granularity": granularity.value,
                        "trunc": _TRUNC[granularity],
                        "after": rollup.last_fact_id,
                        "upto": upto,
                    },
                )
                count = cursor.rowcount
            results.append(RollupResult(granularity.value, rollup.last_fact_id, upto, count))
            rollup.last_fact_id = upto
            rollup.save(update_fields=["last_fact_id", "updated_at"])
    metrics.JOB_DURATION.labels(job="analytics_rollup").observe(time.perf_counter() - started)
    return results


# --------------------------------------------------------------------------- alerts

_UPSERT_ALERT = """
INSERT INTO analytics_alert AS a (
    tenant_id, rule_id, kind, subject, status, charge_point_id, message, details,
    occurrences, opened_at, last_seen_at, ack_comment)
VALUES (%(tenant_id)s, %(rule_id)s, %(kind)s, %(subject)s, 'open', %(charge_point_id)s, %(message)s,
        %(details)s::jsonb, 1, %(at)s, %(at)s, '')
ON CONFLICT (tenant_id, kind, subject) WHERE status = 'open' DO UPDATE SET
    occurrences = a.occurrences + 1, last_seen_at = EXCLUDED.last_seen_at
RETURNING id, (xmax = 0) AS inserted
"""


@transaction.atomic
def alert_rule_ensure(*, tenant_id: int, kind: str, **fields: Any) -> AlertRule:
    """The tenant's rule of this kind, created with `fields` when it has none (an existing rule is left as the
    tenant set it). Used to give a new tenant (or the demo) a sensible set of rules."""
    if kind not in AlertKind.values:
        raise ValueError(f"unknown alert kind {kind!r}")
    rule = AlertRule.objects.filter(tenant_id=tenant_id, kind=kind).first()
    if rule is None:
        rule = AlertRule(tenant_id=tenant_id, kind=kind, **fields)
        rule.full_clean()
        rule.save()
    return rule


def rule_for(*, tenant_id: int, kind: str) -> AlertRule | None:
    return AlertRule.objects.filter(tenant_id=tenant_id, kind=kind, enabled=True).first()


def alert_raise(
    *,
    tenant_id: int,
    kind: str,
    subject: str,
    message: str,
    charge_point_id: int | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> Alert | None:
    """Open an alert, or count one more sighting of the open one on the same subject (deduplicated by a
    partial unique index). Needs an enabled rule of that kind for the tenant; returns None without one.
    Anyone may call this (e.g. energy, when a charger refuses a smart-charging profile)."""
    import json

    if kind not in AlertKind.values:
        raise ValueError(f"unknown alert kind {kind!r}")
    with transaction.atomic():
        rule = rule_for(tenant_id=tenant_id, kind=kind)
        if rule is None:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                _UPSERT_ALERT,
                {
                    "tenant_id": tenant_id,
                    "rule_id": rule.pk,
                    "kind": kind,
                    "subject": subject,
                    "charge_point_id": charge_point_id,
                    "message": message[:300],
                    "details": json.dumps(details or {}, default=str),
                    "at": at or timezone.now(),
                },
            )
            alert_id, inserted = cursor.fetchone()
        if inserted:
            metrics.ALERTS_OPENED.labels(kind=kind).inc()
            _notify_on_commit(alert_id, "opened")
        return Alert.objects.get(pk=alert_id)


raise_alert = alert_raise  # the name other apps know it by


_RESOLVE_ALERT = """
UPDATE analytics_alert SET status = 'resolved', resolved_at = %(at)s
WHERE tenant_id = %(tenant_id)s AND kind = %(kind)s AND subject = %(subject)s AND status = 'open'
RETURNING id
"""


def alert_resolve(*, tenant_id: int, kind: str, subject: str, at: dt.datetime | None = None) -> Alert | None:
    """The condition cleared: close the open alert on this subject, if any (notifies once). One statement, as
    it runs for every status change a charger reports."""
    with connection.cursor() as cursor:  # a single statement: atomic on its own, no BEGIN/COMMIT round trips
        cursor.execute(
            _RESOLVE_ALERT, {"at": at or timezone.now(), "tenant_id": tenant_id, "kind": kind, "subject": subject}
        )
        row = cursor.fetchone()
    if row is None:
        return None
    _notify_on_commit(row[0], "resolved")
    return Alert.objects.get(pk=row[0])


def alert_acknowledge(*, alert: Alert, user: Any, comment: str) -> Alert:
    """Someone looked at it: who, when, and what they said. The alert stays open until its condition clears."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = user if getattr(user, "pk", None) else None
        alert.ack_comment = comment
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "ack_comment"])
        _notify_on_commit(alert.pk, "acknowledged")
        return alert


def alerts_reconcile(
    *, tenant_id: int, kind: str, violating: dict[str, tuple[str, int | None, dict[str, Any]]], at: dt.datetime
) -> None:
    """For a condition evaluated as a whole (time passing): open/bump an alert for each violating subject
    (subject -> (message, charge_point_id, details)) and resolve the open ones no longer violating."""
    for subject, (message, charge_point_id, details) in violating.items():
        alert_raise(
            tenant_id=tenant_id,
            kind=kind,
            subject=subject,
            message=message,
            charge_point_id=charge_point_id,
            details=details,
            at=at,
        )
    stale = Alert.objects.filter(tenant_id=tenant_id, kind=kind, status=AlertStatus.OPEN).exclude(
        subject__in=list(violating)
    )
    for subject in stale.values_list("subject", flat=True):
        alert_resolve(tenant_id=tenant_id, kind=kind, subject=subject, at=at)


def _notify_on_commit(alert_id: int, transition: str) -> None:
    from apps.analytics import tasks

    transaction.on_commit(lambda: tasks.notify_alert.delay(alert_id, transition))
