"""Reads of analytics: live figures, figures over time (from the rollups), availability and utilisation (from
the status history of the window), vehicle models, and the alert / webhook querysets."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from apps.analytics.models import Alert, Granularity, KpiBucket, SessionFact, WebhookDelivery
from apps.analytics.rules import latest_power_w
from apps.core.replica import on_replica, read_alias
from apps.sessions.models import RUNNING_STATUSES, ChargingSession
from apps.stations.models import ChargePoint, Evse, StatusEvent

UP = frozenset({"Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"})
OCCUPIED = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})
EXCLUDED = frozenset({"Unavailable"})  # taken out of service by the operator: neither up nor down


@dataclass(frozen=True)
class Scope:
    """Which chargers a figure covers: tenants (None = all), optionally one location or one charge point."""

    tenant_ids: frozenset[int] | None
    location_id: int | None = None
    charge_point_id: int | None = None

    def charge_points(self) -> QuerySet[ChargePoint]:
        qs = ChargePoint.objects.all()
        if self.tenant_ids is not None:
            qs = qs.filter(tenant_id__in=self.tenant_ids)
        if self.location_id is not None:
            qs = qs.filter(location_id=self.location_id)
        if self.charge_point_id is not None:
            qs = qs.filter(pk=self.charge_point_id)
        return qs

    def filter(
        self, qs: QuerySet[Any], cp_field: str = "charge_point_id", loc_field: str | None = "location_id"
    ) -> Any:
        """`loc_field=None`: the rows have no location, only a charge point id (alerts): a location is matched
        through the charge points it has."""
        if self.tenant_ids is not None:
            qs = qs.filter(tenant_id__in=self.tenant_ids)
        if self.location_id is not None and loc_field is None:
            located = ChargePoint.objects.filter(location_id=self.location_id).values("pk")
            qs = qs.filter(**{f"{cp_field}__in": located})
        elif self.location_id is not None and loc_field is not None:
            qs = qs.filter(**{loc_field: self.location_id})
        if self.charge_point_id is not None:
            qs = qs.filter(**{cp_field: self.charge_point_id})
        return qs


# --------------------------------------------------------------------------- live


def _day_start(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def live_kpis(scope: Scope, *, now: dt.datetime | None = None, tz: dt.tzinfo | None = None) -> dict[str, Any]:
    """Figures of this moment. Energy today / this month (UTC) = energy of sessions that ended in the period
    (day buckets) + what the active sessions metered so far (`active_energy_wh`). With `tz`, "today" starts at
    midnight in that zone and "this month" at midnight of its first day there (hour buckets since then: a UTC day
    bucket straddles the local month's edge)."""
    now = now or timezone.now()
    today = _day_start(now)
    month = today.replace(day=1)
    local_today = local_month = None
    if tz is not None:
        local_midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        local_today = local_midnight.astimezone(dt.UTC)
        local_month = local_midnight.replace(day=1).astimezone(dt.UTC)
    chargers = scope.charge_points()
    total_chargers = chargers.count()
    offline = list(chargers.filter(online=False).values("id", "identity", "last_seen_at").order_by("identity"))
    active = list(
        scope.filter(
            ChargingSession.objects.filter(status__in=RUNNING_STATUSES, stopped_at__isnull=True),
            loc_field="charge_point__location_id",
        )
        .values("id", "last_meter_wh", "meter_start_wh", "samples_from", "samples_until")
        .order_by("id")
    )
    active_energy = sum(max((s["last_meter_wh"] or 0) - s["meter_start_wh"], 0) for s in active)
    power = sum(
        latest_power_w(s["id"], samples_from=s["samples_from"], samples_until=s["samples_until"]) or 0 for s in active
    )
    days = scope.filter(KpiBucket.objects.filter(granularity=Granularity.DAY, bucket__gte=month, bucket__lte=today))
    energy = days.aggregate(month=Sum("energy_wh"), today=Sum("energy_wh", filter=Q(bucket=today)))
    if local_today is not None and local_month is not None:
        hours = scope.filter(KpiBucket.objects.filter(granularity=Granularity.HOUR, bucket__gte=local_month))
        energy = hours.aggregate(month=Sum("energy_wh"), today=Sum("energy_wh", filter=Q(bucket__gte=local_today)))
    faulted = list(
        scope.filter(
            Evse.objects.filter(status="Faulted"), cp_field="charge_point_id", loc_field="charge_point__location_id"
        )
        .values("charge_point_id", "charge_point__identity", "connector_id", "error_code", "status_at")
        .order_by("charge_point__identity", "connector_id")
    )
    states = dict(
        scope.filter(Evse.objects.all(), loc_field="charge_point__location_id")
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "at": now,
        "chargers": total_chargers,
        "chargers_online": total_chargers - len(offline),
        "power_w": power,
        "active_sessions": len(active),
        "energy_today_wh": (energy["today"] or 0) + active_energy,
        "energy_month_wh": (energy["month"] or 0) + active_energy,
        "active_energy_wh": active_energy,
        "offline_chargers": offline,
        "faulted_connectors": [
            {
                "charge_point_id": f["charge_point_id"],
                "identity": f["charge_point__identity"],
                "connector_id": f["connector_id"],
                "error_code": f["error_code"],
                "since": f["status_at"],
            }
            for f in faulted
        ],
        "connectors_by_status": states,
        "open_alerts": scope.filter(Alert.objects.filter(status="open"), loc_field=None).count(),
    }


def chargers_by_state(scope: Scope) -> list[dict[str, Any]]:
    """The list of chargers with their connectors' states, for the dashboard map/list."""
    evses: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in (
        scope.filter(Evse.objects.all(), loc_field="charge_point__location_id")
        .values("charge_point_id", "connector_id", "status", "error_code")
        .order_by("charge_point_id", "connector_id")
    ):
        evses[row["charge_point_id"]].append(row)
    return [
        {
            "id": cp["id"],
            "identity": cp["identity"],
            "location": cp["location__name"] or "",
            "latitude": cp["location__latitude"],
            "longitude": cp["location__longitude"],
            "online": cp["online"],
            "connectors": [
                {"connector_id": e["connector_id"], "status": e["status"], "error_code": e["error_code"]}
                for e in evses.get(cp["id"], [])
            ],
        }
        for cp in scope.charge_points()
        .values("id", "identity", "online", "location__name", "location__latitude", "location__longitude")
        .order_by("identity")
    ]


# --------------------------------------------------------------------------- over time (rollups)


@on_replica
def series(scope: Scope, *, granularity: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Session figures per bucket in [start, end), summed over the scope's chargers."""
    rows = (
        scope.filter(KpiBucket.objects.filter(granularity=granularity, bucket__gte=start, bucket__lt=end))
        .values("bucket")
        .annotate(
            sessions_started=Sum("sessions_started"),
            sessions_ended=Sum("sessions_ended"),
            sessions_successful=Sum("sessions_successful"),
            energy_wh=Sum("energy_wh"),
            duration_s=Sum("duration_s"),
        )
        .order_by("bucket")
    )
    return list(rows)


@on_replica
def period_kpis(scope: Scope, *, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Totals over [start, end) from the hourly rollup (start/end on whole hours), plus availability and
    utilisation from the status history."""
    totals = scope.filter(
        KpiBucket.objects.filter(granularity=Granularity.HOUR, bucket__gte=start, bucket__lt=end)
    ).aggregate(
        started=Sum("sessions_started"),
        ended=Sum("sessions_ended"),
        successful=Sum("sessions_successful"),
        energy=Sum("energy_wh"),
        duration=Sum("duration_s"),
    )
    started, ended, ok = totals["started"] or 0, totals["ended"] or 0, totals["successful"] or 0
    energy, duration = totals["energy"] or 0, totals["duration"] or 0
    times = state_times(scope, start=start, end=end)
    return {
        "start": start,
        "end": end,
        "sessions_started": started,
        "sessions_ended": ended,
        "sessions_successful": ok,
        "success_rate": round(ok / started, 4) if started else None,
        "energy_wh": energy,
        "avg_session_duration_s": round(duration / ended, 1) if ended else None,
        "avg_session_energy_wh": round(energy / ended, 1) if ended else None,
        "availability": _ratio(times.up_s, times.up_s + times.down_s),
        "utilisation": _ratio(times.occupied_s, times.known_s),
        "chargers": [
            {
                "charge_point_id": cp,
                "availability": _ratio(t.up_s, t.up_s + t.down_s),
                "utilisation": _ratio(t.occupied_s, t.known_s),
                "up_s": t.up_s,
                "down_s": t.down_s,
                "occupied_s": t.occupied_s,
            }
            for cp, t in sorted(times.by_charger.items())
        ],
    }


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class StateTimes:
    up_s: float = 0.0
    down_s: float = 0.0
    occupied_s: float = 0.0
    known_s: float = 0.0  # connector-time with a known state (not Unknown, not before the first report)
    by_charger: dict[int, StateTimes] = field(default_factory=dict)

    def add(self, state: str, online: bool, seconds: float) -> None:
        if state in ("", "Unknown"):
            return
        self.known_s += seconds
        if online and state in OCCUPIED:
            self.occupied_s += seconds
        if state in EXCLUDED:
            return
        if online and state in UP:
            self.up_s += seconds
        else:
            self.down_s += seconds  # Faulted, or offline whatever the last reported state


@on_replica
def state_times(scope: Scope, *, start: dt.datetime, end: dt.datetime) -> StateTimes:
    """Connector-seconds per state class in [start, end), from the status history: each connector's state is
    its last StatusNotification, and the charger's last Online/Offline decides whether it counts as up.
    Reads only the events of the window plus the last one before it per charger and connector."""
    total = StateTimes()
    cp_ids = list(scope.charge_points().values_list("pk", flat=True))
    connectors: dict[int, list[int]] = defaultdict(list)
    for cp, n in Evse.objects.filter(charge_point_id__in=cp_ids).values_list("charge_point_id", "connector_id"):
        connectors[cp].append(n)
    before = {
        (row["charge_point_id"], row["connector_id"], row["kind"]): row["status"] for row in _last_before(cp_ids, start)
    }
    inside: dict[int, list[tuple[dt.datetime, int, str]]] = defaultdict(list)
    for cp, n, status, at in (
        StatusEvent.objects.filter(charge_point_id__in=cp_ids, timestamp__gte=start, timestamp__lt=end)
        .order_by("timestamp", "id")
        .values_list("charge_point_id", "connector_id", "status", "timestamp")
    ):
        inside[cp].append((at, n, status))
    for cp in cp_ids:
        times = total.by_charger.setdefault(cp, StateTimes())
        for n in connectors[cp]:
            state = before.get((cp, n, "status"), "")
            online = before.get((cp, 0, "conn"), "") == "Online"
            cursor = start
            for at, event_n, status in inside[cp]:
                if event_n == 0 and status in ("Online", "Offline"):
                    changes_online = True
                elif event_n == n:
                    changes_online = False
                else:
                    continue
                seconds = (at - cursor).total_seconds()
                times.add(state, online, seconds)
                total.add(state, online, seconds)
                cursor = at
                if changes_online:
                    online = status == "Online"
                else:
                    state = status
            seconds = (end - cursor).total_seconds()
            times.add(state, online, seconds)
            total.add(state, online, seconds)
    return total


def _last_before(cp_ids: Iterable[int], start: dt.datetime) -> list[dict[str, Any]]:
    """Per charger and connector: the last status before `start`; per charger: the last Online/Offline."""
    ids = list(cp_ids)
    if not ids:
        return []
    sql = """
    SELECT DISTINCT ON (charge_point_id, connector_id, kind) charge_point_id, connector_id, kind, status
    FROM (
        SELECT charge_point_id, connector_id, status, timestamp, id,
               CASE WHEN connector_id = 0 AND status IN ('Online', 'Offline') THEN 'conn' ELSE 'status' END AS kind
        FROM stations_statusevent
        WHERE charge_point_id = ANY(%s) AND timestamp < %s
    ) e
    ORDER BY charge_point_id, connector_id, kind, timestamp DESC, id DESC
    """
    with connections[read_alias()].cursor() as cursor:
        cursor.execute(sql, [ids, start])
        return [
            {"charge_point_id": r[0], "connector_id": r[1], "kind": r[2], "status": r[3]} for r in cursor.fetchall()
        ]


@on_replica
def vehicle_models(scope: Scope, *, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Ended sessions by vehicle model and charger, with their failure rate (which models fail where)."""
    rows = (
        scope.filter(SessionFact.objects.filter(kind=SessionFact.Kind.ENDED, at__gte=start, at__lt=end))
        .values("vehicle_model", "charge_point_id")
        .annotate(sessions=Count("id"), failed=Count("id", filter=Q(successful=False)))
        .order_by("vehicle_model", "charge_point_id")
    )
    found = [
        {
            "vehicle_model": r["vehicle_model"] or "unknown",
            "charge_point_id": r["charge_point_id"],
            "sessions": r["sessions"],
            "failed": r["failed"],
            "failure_rate": round(r["failed"] / r["sessions"], 4),
        }
        for r in rows
    ]
    return sorted(found, key=lambda r: (r["vehicle_model"], r["charge_point_id"]))


# --------------------------------------------------------------------------- querysets for API/admin


def alerts() -> QuerySet[Alert]:
    return Alert.objects.select_related("rule", "acknowledged_by")


def deliveries() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.select_related("subscription", "event")
