"""Event subscribers of analytics (listed in apps/core/events.py SUBSCRIBERS): alerts, facts, live push and
webhook events. They run after the publishing transaction committed, from the outbox, at least once: facts
are inserted once per session and kind, alerts are upserted on their subject, webhook events are keyed on the
core event's id (a second delivery emits nothing), and a repeated live push only repaints the dashboard."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from apps.analytics import live, notifications, rules, services
from apps.analytics.models import SessionFact
from apps.core import events, metrics
from apps.sessions import selectors as session_selectors
from apps.stations.models import ChargePoint


def _emit(event: events.Event, type: str, payload: dict[str, Any]) -> None:
    """The webhook event of a core event, once: its id is derived from the core event's id and the type."""
    notifications.notification_emit(
        tenant_id=event.tenant_id, type=type, payload=payload, key=uuid.uuid5(event.event_id, type)
    )


def _identity(charge_point_id: int) -> str:
    return ChargePoint.objects.filter(pk=charge_point_id).values_list("identity", flat=True).first() or ""


def connector_status_changed(event: events.ConnectorStatusChanged) -> None:
    rules.on_status(event)
    document = {
        "charge_point_id": event.charge_point_id,
        "identity": _identity(event.charge_point_id),
        "connector_id": event.connector_id,
        "status": event.status,
        "error_code": event.error_code,
        "previous_status": event.previous_status,
        "at": event.at.isoformat(),
    }
    live.push(event.tenant_id, {"event": "status", **document})
    _emit(event, "connector.status_changed", document)


def connection_changed(event: events.ChargePointConnectionChanged) -> None:
    rules.on_connection(event)
    document = {
        "charge_point_id": event.charge_point_id,
        "identity": _identity(event.charge_point_id),
        "online": event.online,
        "at": event.at.isoformat(),
    }
    live.push(event.tenant_id, {"event": "connection", **document})
    _emit(event, "charge_point.connection_changed", document)


def command_finished(event: events.CommandFinished) -> None:
    counter = metrics.COMMAND_RESULTS.labels(action=event.action, status=event.status)
    transaction.on_commit(counter.inc)  # once per delivery that went through, not per attempt
    rules.on_command(event)
    _emit(
        event,
        "command.finished",
        {
            "command_id": event.command_id,
            "charge_point_id": event.charge_point_id,
            "action": event.action,
            "status": event.status,
        },
    )


def session_started(event: events.SessionStarted) -> None:
    services.session_fact_record(session_id=event.session_id, kind=SessionFact.Kind.STARTED)
    live.push(
        event.tenant_id,
        {"event": "session_started", "session_id": event.session_id, "charge_point_id": event.charge_point_id},
    )
    _emit(event, "session.started", {"session_id": event.session_id, "charge_point_id": event.charge_point_id})


def session_meter_updated(event: events.SessionMeterUpdated) -> None:
    rules.on_meter(event)
    live.push(
        event.tenant_id,
        {
            "event": "meter",
            "session_id": event.session_id,
            "charge_point_id": event.charge_point_id,
            "energy_wh": event.energy_wh,
        },
    )


def session_ended(event: events.SessionEnded) -> None:
    fact = services.session_fact_record(session_id=event.session_id, kind=SessionFact.Kind.ENDED)
    rules.on_session_ended(event)
    live.push(
        event.tenant_id,
        {"event": "session_ended", "session_id": event.session_id, "charge_point_id": event.charge_point_id},
    )
    payload = {"session_id": event.session_id, "charge_point_id": event.charge_point_id}
    if fact is not None:
        payload |= {"energy_wh": fact.energy_wh, "duration_s": fact.duration_s, "successful": fact.successful}
    payload |= session_selectors.session_stored_price(session_id=event.session_id)
    _emit(event, "session.ended", payload)


def security_event_received(event: events.SecurityEventReceived) -> None:
    rules.on_security_event(event)
