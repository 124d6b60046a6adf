"""The typed event registry: what happened in a lower layer, and who above cares, listed in one place.

A service that changes something upper features care about publishes an event; the event is delivered
after the surrounding transaction commits (never for a rolled-back change) to every subscriber listed in
`SUBSCRIBERS` below. Subscribers are named by dotted path so that this kernel module never imports the
apps above it; each subscriber is a plain function taking the event. One failing subscriber is logged and
does not stop the others. Subscribers must be quick: heavy work enqueues a Celery task by id.

Events carry ids and small values, never model instances (they outlive the transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    tenant_id: int


@dataclass(frozen=True)
class ConnectorStatusChanged(Event):
    charge_point_id: int
    connector_id: int  # 0 = the charge point itself
    status: str
    error_code: str
    previous_status: str
    at: datetime


@dataclass(frozen=True)
class ChargePointConnectionChanged(Event):
    charge_point_id: int
    online: bool
    at: datetime


@dataclass(frozen=True)
class CommandFinished(Event):
    command_id: int
    charge_point_id: int
    action: str
    status: str  # accepted / rejected / error / timeout / offline ...


@dataclass(frozen=True)
class SessionStarted(Event):
    session_id: int
    charge_point_id: int


@dataclass(frozen=True)
class SessionMeterUpdated(Event):
    session_id: int
    charge_point_id: int
    energy_wh: int
    power_w: int | None


@dataclass(frozen=True)
class SessionEnded(Event):
    session_id: int
    charge_point_id: int


# Every subscriber of every event, in one place (dotted paths to functions taking the event).
SUBSCRIBERS: dict[type[Event], list[str]] = {
    ConnectorStatusChanged: ["apps.analytics.subscribers.connector_status_changed"],
    ChargePointConnectionChanged: ["apps.analytics.subscribers.connection_changed"],
    CommandFinished: ["apps.analytics.subscribers.command_finished"],
    SessionStarted: ["apps.analytics.subscribers.session_started", "apps.sessions.subscribers.session_started"],
    SessionMeterUpdated: [
        "apps.analytics.subscribers.session_meter_updated",
        "apps.sessions.subscribers.session_meter_updated",
    ],
    SessionEnded: [
        "apps.analytics.subscribers.session_ended",
        "apps.billing.subscribers.session_ended",
        "apps.sessions.subscribers.session_ended",
    ],
}


@cache
def _resolve(path: str) -> Callable[[Any], Any]:
    return import_string(path)  # type: ignore[no-any-return]


def deliver(event: Event) -> None:
    """Call each subscriber now; a failure is logged with the event and does not stop the others."""
    for path in SUBSCRIBERS.get(type(event), []):
        try:
            _resolve(path)(event)
        except Exception:
            logger.exception("event subscriber %s failed for %r", path, event)


def publish(event: Event) -> None:
    """Deliver `event` after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: deliver(event), robust=True)
