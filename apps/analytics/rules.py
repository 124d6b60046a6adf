"""Alert conditions: the ones events decide at once (faulted, power, commands) and the ones about time passing
(offline for N minutes, sessions too long, no energy, energy without a session), evaluated by Celery beat."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import F, Max, Min
from django.utils import timezone

from apps.analytics import services, texts
from apps.analytics.models import AlertKind, AlertRule
from apps.core import events
from apps.sessions import selectors as session_selectors
from apps.sessions.models import RUNNING_STATUSES, ChargingSession, MeterValue
from apps.stations.models import ChargePoint, Connector, InstalledCertificate

POWER_MEASURAND = "Power.Active.Import"
ENERGY_REGISTER = "Energy.Active.Import.Register"
FAILED_COMMAND = frozenset({"rejected", "error", "timeout"})


def connector_subject(charge_point_id: int, connector_id: int) -> str:
    return f"cp:{charge_point_id}/{connector_id}"


# --------------------------------------------------------------------------- decided by events


def on_status(event: events.ConnectorStatusChanged) -> None:
    subject = connector_subject(event.charge_point_id, event.connector_id)
    if event.status == "Faulted":
        code = event.error_code or "unknown"
        services.alert_raise(
            tenant_id=event.tenant_id,
            kind=AlertKind.CONNECTOR_FAULTED,
            subject=subject,
            charge_point_id=event.charge_point_id,
            message=texts.CONNECTOR_FAULTED.fill(connector=event.connector_id, code=code),
            details={"error_code": event.error_code, "connector_id": event.connector_id},
            at=event.at,
        )
    else:
        services.alert_resolve(
            tenant_id=event.tenant_id, kind=AlertKind.CONNECTOR_FAULTED, subject=subject, at=event.at
        )


def on_connection(event: events.ChargePointConnectionChanged) -> None:
    if event.online:
        services.alert_resolve(
            tenant_id=event.tenant_id,
            kind=AlertKind.CHARGER_OFFLINE,
            subject=f"cp:{event.charge_point_id}",
            at=event.at,
        )


def on_command(event: events.CommandFinished) -> None:
    subject = f"cp:{event.charge_point_id}/{event.action}"
    kind = AlertKind.PROFILE_REJECTED if event.action == "SetChargingProfile" else AlertKind.COMMAND_FAILED
    if event.status in FAILED_COMMAND:
        services.alert_raise(
            tenant_id=event.tenant_id,
            kind=kind,
            subject=subject,
            charge_point_id=event.charge_point_id,
            message=texts.COMMAND_FAILED[event.status].fill(action=event.action),
            details={"command_id": event.command_id, "status": event.status},
        )
    elif event.status == "accepted":
        services.alert_resolve(tenant_id=event.tenant_id, kind=kind, subject=subject)


def on_security_event(event: events.SecurityEventReceived) -> None:
    """A critical security event (the whitepaper's list): one open alert per charger and event type."""
    services.alert_raise(
        tenant_id=event.tenant_id,
        kind=AlertKind.SECURITY_EVENT,
        subject=f"cp:{event.charge_point_id}/security/{event.type}"[:120],
        charge_point_id=event.charge_point_id,
        message=(
            texts.SECURITY_EVENT_WITH_INFO.fill(type=event.type, info=event.tech_info)
            if event.tech_info
            else texts.SECURITY_EVENT.fill(type=event.type)
        ),
        details={"security_event_id": event.security_event_id, "type": event.type},
        at=event.at,
    )


def rated_power_w(charge_point_id: int, connector_id: int) -> int | None:
    """The connector's rating: max_electric_power, else voltage x amperage (x3 for three-phase AC)."""
    connector = (
        Connector.objects.filter(evse__charge_point_id=charge_point_id, evse__connector_id=connector_id)
        .order_by("-max_electric_power")
        .first()
    )
    if connector is None:
        return None
    if connector.max_electric_power:
        return connector.max_electric_power
    phases = 3 if connector.power_type == Connector.PowerType.AC_3_PHASE else 1
    voltage = connector.max_voltage if phases == 1 else 230  # 400 V line-to-line = 3 x 230 V phases
    return voltage * connector.max_amperage * phases


def latest_power_w(
    session_id: int, *, samples_from: dt.datetime | None = None, samples_until: dt.datetime | None = None
) -> int | None:
    """The session's last power reading (pass the session's sample span: the read touches only its days)."""
    sample = (
        session_selectors.meter_values_in_span(
            session_id=session_id, samples_from=samples_from, samples_until=samples_until
        )
        .filter(measurand=POWER_MEASURAND, phase="")
        .order_by("-timestamp")
        .values_list("value", "unit")
        .first()
    )
    if sample is None:
        return None
    value, unit = sample
    return int(value * 1000) if unit == "kW" else int(value)


def on_meter(event: events.SessionMeterUpdated) -> None:
    session = (
        ChargingSession.objects.filter(pk=event.session_id)
        .values("connector_id", "samples_from", "samples_until")
        .first()
    )
    if session is None:
        return
    connector_id = session["connector_id"]
    power = event.power_w
    if power is None:
        power = latest_power_w(
            event.session_id, samples_from=session["samples_from"], samples_until=session["samples_until"]
        )
    rule = services.rule_for(tenant_id=event.tenant_id, kind=AlertKind.POWER_ABOVE_RATING)
    subject = connector_subject(event.charge_point_id, connector_id)
    if rule is not None and power is not None:
        rating = rated_power_w(event.charge_point_id, connector_id)
        if rating is not None and power * 100 > rating * (100 + rule.power_margin_percent):
            services.alert_raise(
                tenant_id=event.tenant_id,
                kind=AlertKind.POWER_ABOVE_RATING,
                subject=subject,
                charge_point_id=event.charge_point_id,
                message=texts.POWER_ABOVE_RATING.fill(power=power, rating=rating),
                details={"power_w": power, "rated_w": rating, "session_id": event.session_id},
            )
        else:
            services.alert_resolve(tenant_id=event.tenant_id, kind=AlertKind.POWER_ABOVE_RATING, subject=subject)
    if event.energy_wh > 0:
        services.alert_resolve(
            tenant_id=event.tenant_id, kind=AlertKind.NO_ENERGY, subject=f"session:{event.session_id}"
        )


def on_session_ended(event: events.SessionEnded) -> None:
    subject = f"session:{event.session_id}"
    for kind in (AlertKind.SESSION_TOO_LONG, AlertKind.NO_ENERGY):
        services.alert_resolve(tenant_id=event.tenant_id, kind=kind, subject=subject)


# --------------------------------------------------------------------------- time passing (beat)

Violations = dict[str, tuple[str, int | None, dict[str, Any]]]


def _offline(rule: AlertRule, now: dt.datetime) -> Violations:
    since = now - dt.timedelta(minutes=rule.threshold_minutes)
    rows = ChargePoint.objects.filter(
        tenant_id=rule.tenant_id, online=False, last_seen_at__isnull=False, last_seen_at__lte=since
    ).values_list("pk", "identity", "last_seen_at")
    found: Violations = {}
    for pk, identity, seen in rows:
        assert seen is not None  # filtered above
        found[f"cp:{pk}"] = (
            texts.CHARGER_OFFLINE.fill(charger=identity, at=f"{seen:%Y-%m-%d %H:%M}"),
            pk,
            {"last_seen_at": seen.isoformat()},
        )
    return found


def _too_long(rule: AlertRule, now: dt.datetime) -> Violations:
    since = now - dt.timedelta(minutes=rule.threshold_minutes)
    rows = ChargingSession.objects.filter(
        tenant_id=rule.tenant_id, status__in=RUNNING_STATUSES, stopped_at__isnull=True, started_at__lte=since
    ).values_list("pk", "charge_point_id", "started_at")
    return {
        f"session:{pk}": (
            texts.SESSION_TOO_LONG.fill(session=pk, at=f"{started:%Y-%m-%d %H:%M}"),
            cp,
            {"session_id": pk},
        )
        for pk, cp, started in rows
    }


def _no_energy(rule: AlertRule, now: dt.datetime) -> Violations:
    since = now - dt.timedelta(minutes=rule.threshold_minutes)
    rows = ChargingSession.objects.filter(
        tenant_id=rule.tenant_id,
        status__in=RUNNING_STATUSES,
        stopped_at__isnull=True,
        started_at__lte=since,
        last_meter_wh__lte=F("meter_start_wh"),
    ).values_list("pk", "charge_point_id")
    return {
        f"session:{pk}": (
            texts.NO_ENERGY.fill(session=pk, minutes=rule.threshold_minutes),
            cp,
            {"session_id": pk},
        )
        for pk, cp in rows
    }


def _energy_without_session(rule: AlertRule, now: dt.datetime) -> Violations:
    """Energy register readings outside any transaction that went up within the window, on a connector
    with no active session."""
    since = now - dt.timedelta(minutes=max(rule.threshold_minutes, 1))
    rows = (
        MeterValue.objects.filter(
            charge_point__tenant_id=rule.tenant_id,
            session__isnull=True,
            measurand=ENERGY_REGISTER,
            phase="",
            timestamp__gte=since,
            timestamp__lte=now,
        )
        .values("charge_point_id", "connector_id")
        .annotate(low=Min("value"), high=Max("value"))
    )
    active = set(
        ChargingSession.objects.filter(
            tenant_id=rule.tenant_id, status__in=RUNNING_STATUSES, stopped_at__isnull=True
        ).values_list("charge_point_id", "connector_id")
    )
    found: Violations = {}
    for row in rows:
        key = (row["charge_point_id"], row["connector_id"])
        grew: Decimal = row["high"] - row["low"]
        if grew > 0 and key not in active:
            found[connector_subject(*key)] = (
                texts.ENERGY_WITHOUT_SESSION.fill(connector=key[1], energy=grew),
                key[0],
                {"energy": str(grew)},
            )
    return found


CERTIFICATE_WARNING_DEFAULT_MINUTES = 30 * 24 * 60


def _certificate_expiring(rule: AlertRule, now: dt.datetime) -> Violations:
    """Certificates installed on chargers (as far as the platform knows) that expire within the threshold
    (0: 30 days), or have expired."""
    minutes = rule.threshold_minutes or CERTIFICATE_WARNING_DEFAULT_MINUTES
    rows = InstalledCertificate.objects.filter(
        tenant_id=rule.tenant_id, not_after__isnull=False, not_after__lte=now + dt.timedelta(minutes=minutes)
    ).values_list("pk", "charge_point_id", "certificate_type", "serial_number", "not_after")
    found: Violations = {}
    for pk, cp, kind, serial, not_after in rows:
        assert not_after is not None  # filtered above
        shape = texts.CERTIFICATE_EXPIRED if not_after <= now else texts.CERTIFICATE_EXPIRES
        found[f"cp:{cp}/cert/{serial}"[:120]] = (
            shape.fill(type=kind, serial=serial, at=f"{not_after:%Y-%m-%d %H:%M}"),
            cp,
            {"installed_certificate_id": pk, "not_after": not_after.isoformat()},
        )
    return found


EVALUATORS = {
    AlertKind.CERTIFICATE_EXPIRING: _certificate_expiring,
    AlertKind.CHARGER_OFFLINE: _offline,
    AlertKind.SESSION_TOO_LONG: _too_long,
    AlertKind.NO_ENERGY: _no_energy,
    AlertKind.ENERGY_WITHOUT_SESSION: _energy_without_session,
}


def alerts_evaluate(*, now: dt.datetime | None = None) -> int:
    """Evaluate every enabled time-based rule of every tenant; returns the number of rules evaluated."""
    now = now or timezone.now()
    rules = AlertRule.objects.filter(enabled=True, kind__in=list(EVALUATORS)).order_by("pk")
    count = 0
    for rule in rules:
        violating = EVALUATORS[AlertKind(rule.kind)](rule, now)
        services.alerts_reconcile(tenant_id=rule.tenant_id, kind=rule.kind, violating=violating, at=now)
        count += 1
    return count
