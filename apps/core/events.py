"""The typed event registry: what happened in a lower layer, and who above cares, listed in one place.

A service that changes something upper features care about publishes an event; the event is delivered
after the surrounding transaction commits (never for a rolled-back change) to every subscriber listed in
`SUBSCRIBERS` below. Subscribers are named by dotted path so that this kernel module never imports the
apps above it; each subscriber is a plain function taking the event. One failing subscriber is logged and
does not stop the others. Subscribers must be quick: heavy work enqueues a Celery task by id.

Where the publisher sits on a latency-critical path (the OCPP endpoint's database threads), it wraps its work
in `deliver_in_background()`: its events are then handed, still only after commit, to ONE dedicated delivery
thread, in publishing order, instead of running the subscribers on the publisher's thread before it can answer
the charger. Everywhere else (requests, Celery, tests) delivery stays synchronous after commit. `drain()`
waits until the background thread delivered everything handed to it (shutdown, tests).

Events carry ids and small values, never model instances (they outlive the transaction).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, transaction
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


@dataclass(frozen=True)
class SessionPreferencesChanged(Event):
    """The driver changed a running session's departure time or energy need."""

    session_id: int
    charge_point_id: int


# Every subscriber of every event, in one place (dotted paths to functions taking the event).
SUBSCRIBERS: dict[type[Event], list[str]] = {
    ConnectorStatusChanged: ["apps.analytics.subscribers.connector_status_changed"],
    ChargePointConnectionChanged: ["apps.analytics.subscribers.connection_changed"],
    CommandFinished: ["apps.analytics.subscribers.command_finished"],
    SessionStarted: [
        "apps.analytics.subscribers.session_started",
        "apps.sessions.subscribers.session_started",
        "apps.energy.subscribers.session_started",
    ],
    SessionMeterUpdated: [
        "apps.analytics.subscribers.session_meter_updated",
        "apps.sessions.subscribers.session_meter_updated",
        "apps.energy.subscribers.session_meter_updated",
    ],
    SessionEnded: [
        "apps.analytics.subscribers.session_ended",
        "apps.billing.subscribers.session_ended",
        "apps.sessions.subscribers.session_ended",
        "apps.energy.subscribers.session_ended",
    ],
    SessionPreferencesChanged: ["apps.energy.subscribers.session_preferences_changed"],
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


_local = threading.local()
_background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events")  # one thread: publishing order


@contextmanager
def deliver_in_background() -> Iterator[None]:
    """Events published by this thread inside the block are delivered by the background delivery thread."""
    previous = getattr(_local, "background", False)
    _local.background = True
    try:
        yield
    finally:
        _local.background = previous


def _deliver_and_tidy(event: Event) -> None:
    """`deliver` on the delivery thread, which keeps its own DB connection like a request thread would."""
    try:
        deliver(event)
    finally:  # like apps/ocpp/dbcall.py: no health-check round trip per event, close only a broken/old one
        if connection.errors_occurred:
            connection.close_if_unusable_or_obsolete()
        close_at = connection.close_at
        if connection.connection is not None and close_at is not None and time.monotonic() >= close_at:
            connection.close()


def _hand_off(event: Event, background: bool) -> None:
    if background:
        try:
            _background.submit(_deliver_and_tidy, event)
            return
        except RuntimeError:  # the interpreter is shutting down (late disconnects): deliver here instead
            pass
    deliver(event)


def publish(event: Event) -> None:
    """Deliver `event` after the current transaction commits (at once outside a transaction)."""
    background = getattr(_local, "background", False)  # read now: on_commit may run later, elsewhere
    transaction.on_commit(lambda: _hand_off(event, background), robust=True)


def drain(timeout: float = 10.0) -> None:
    """Block until every event handed to the background delivery thread so far was delivered."""
    _background.submit(lambda: None).result(timeout)
