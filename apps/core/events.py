"""The typed event registry: what happened in a lower layer, and who above cares, listed in one place.

A service that changes something upper features care about publishes an event. `publish` writes it to the
transactional outbox (`apps.core.outbox`) in the caller's transaction, one row per subscriber listed in
`SUBSCRIBERS` below: the change and its event commit together or not at all. After the commit, a Celery
worker delivers each row to its subscriber, with retries, in order per subject (each event type names its
`subject`: the charge point, the session, ...). A crash, a restart or a slow subscriber loses nothing and never
slows the publisher; the design (table, claiming, ordering, retries, dead letters, clean-up, wake-ups) is
described in `apps/core/outbox.py`.

Subscribers are named by dotted path so that this kernel module never imports the apps above it; each
subscriber is a plain function taking the event. Delivery is at least once: a subscriber may see the same
event twice (after a crash, or when it failed after part of its work), so every subscriber is idempotent.
`event_id` is the same on every delivery of one event: the key for deduplicating what a subscriber sends on.
A subscriber runs inside the database transaction of its delivery: its database writes commit together with the
mark that it was delivered (or vanish with a failure), and `transaction.on_commit` work runs after that commit.

Events carry ids and small values, never model instances (they are stored as JSON and outlive the transaction).
Fields added later get defaults, so that rows written by the previous release still load.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cache
from typing import Any, ClassVar

from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    tenant_id: int
    # the same on every delivery of this event (idempotency key); not part of equality
    event_id: uuid.UUID = field(default_factory=uuid.uuid4, kw_only=True, compare=False)

    types: ClassVar[dict[str, type[Event]]] = {}  # every event type by class name (stored in the outbox)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Event.types[cls.__name__] = cls

    @property
    def subject(self) -> str:
        """What this event's deliveries are ordered by: a subscriber sees the events of one subject in the order
        they were published. Override it with the narrowest thing whose order matters."""
        return f"tenant:{self.tenant_id}"


@dataclass(frozen=True)
class ConnectorStatusChanged(Event):
    charge_point_id: int
    connector_id: int  # 0 = the charge point itself
    status: str
    error_code: str
    previous_status: str
    at: datetime

    @property
    def subject(self) -> str:
        return f"charge_point:{self.charge_point_id}"


@dataclass(frozen=True)
class ChargePointConnectionChanged(Event):
    charge_point_id: int
    online: bool
    at: datetime

    @property
    def subject(self) -> str:
        return f"charge_point:{self.charge_point_id}"


@dataclass(frozen=True)
class CommandFinished(Event):
    command_id: int
    charge_point_id: int
    action: str
    status: str  # accepted / rejected / error / timeout / offline ...

    @property
    def subject(self) -> str:
        return f"charge_point:{self.charge_point_id}"


@dataclass(frozen=True)
class SessionStarted(Event):
    session_id: int
    charge_point_id: int

    @property
    def subject(self) -> str:
        return f"session:{self.session_id}"


@dataclass(frozen=True)
class SessionMeterUpdated(Event):
    session_id: int
    charge_point_id: int
    energy_wh: int
    power_w: int | None

    @property
    def subject(self) -> str:
        return f"session:{self.session_id}"


@dataclass(frozen=True)
class SessionStopped(Event):
    """The charger's StopTransaction ended the session (committed with the stop). Its completion (pricing, CDR)
    follows in this event's delivery, off the charger's answer, and publishes SessionEnded."""

    session_id: int
    charge_point_id: int

    @property
    def subject(self) -> str:
        return f"session:{self.session_id}"


@dataclass(frozen=True)
class SessionEnded(Event):
    """A session ended; a completed one is priced and has its CDR by now."""

    session_id: int
    charge_point_id: int

    @property
    def subject(self) -> str:
        return f"session:{self.session_id}"


@dataclass(frozen=True)
class SessionPreferencesChanged(Event):
    """The driver changed a running session's departure time or energy need."""

    session_id: int
    charge_point_id: int

    @property
    def subject(self) -> str:
        return f"session:{self.session_id}"


@dataclass(frozen=True)
class SecurityEventReceived(Event):
    """A charger reported a critical security event (OCPP 1.6 security whitepaper's list)."""

    charge_point_id: int
    security_event_id: int
    type: str
    tech_info: str
    at: datetime

    @property
    def subject(self) -> str:
        return f"charge_point:{self.charge_point_id}"


@dataclass(frozen=True)
class LocationChanged(Event):
    """A location was created or its description changed (fields, publish, decommissioned with its EVSEs), or a
    charge point moved to or from it: the whole location matters again to whoever shows it (roaming pushes)."""

    location_id: int

    @property
    def subject(self) -> str:
        return f"location:{self.location_id}"


@dataclass(frozen=True)
class EvseChanged(Event):
    """An EVSE was created or its description changed (itself or a connector added, changed or removed);
    `removed`: it was decommissioned (OCPI status REMOVED), nothing else changed."""

    evse_id: int
    charge_point_id: int
    removed: bool = False

    @property
    def subject(self) -> str:
        return f"charge_point:{self.charge_point_id}"


@dataclass(frozen=True)
class TariffChanged(Event):
    """A tariff was created, changed or deleted, or an assignment attaching it to the network changed."""

    tariff_id: int
    # an assignment changed: which tariff applies where (the connectors' tariff_ids of the OCPI locations) may differ
    placement: bool = False

    @property
    def subject(self) -> str:
        return f"tariff:{self.tariff_id}"


@dataclass(frozen=True)
class TokensChanged(Event):
    """Tokens of the tenant were created, changed (their fields, blocked, or their driver's, business customer's or
    contract's rules that decide them) or deleted: what a token's partners were told about it may be stale
    (roaming pushes our tokens to CPO partners). A bulk import publishes one event per chunk."""

    token_ids: list[int] = field(default_factory=list)

    @property
    def subject(self) -> str:
        return f"tokens:{self.tenant_id}"


@dataclass(frozen=True)
class PartnerCdrReceived(Event):
    """Another CPO sent a CDR for a session of one of our drivers (eMSP role): to be checked against the CPO's
    tariff and billed at our retail price. Ordered per partner, so a credit CDR follows the CDR it corrects."""

    cdr_id: int
    partner_id: int

    @property
    def subject(self) -> str:
        return f"partner-cdrs:{self.partner_id}"


# Every subscriber of every event, in one place (dotted paths to functions taking the event).
SUBSCRIBERS: dict[type[Event], list[str]] = {
    ConnectorStatusChanged: [
        "apps.analytics.subscribers.connector_status_changed",
        "apps.roaming.subscribers.connector_status_changed",
    ],
    ChargePointConnectionChanged: [
        "apps.analytics.subscribers.connection_changed",
        "apps.roaming.subscribers.connection_changed",
    ],
    CommandFinished: ["apps.analytics.subscribers.command_finished"],
    SecurityEventReceived: ["apps.analytics.subscribers.security_event_received"],
    SessionStarted: [
        "apps.analytics.subscribers.session_started",
        "apps.sessions.subscribers.session_started",
        "apps.energy.subscribers.session_started",
        "apps.roaming.subscribers.session_started",
    ],
    SessionMeterUpdated: [
        "apps.analytics.subscribers.session_meter_updated",
        "apps.sessions.subscribers.session_meter_updated",
        "apps.energy.subscribers.session_meter_updated",
        "apps.roaming.subscribers.session_meter_updated",
    ],
    SessionStopped: ["apps.sessions.subscribers.session_stopped"],
    SessionEnded: [
        "apps.analytics.subscribers.session_ended",
        "apps.billing.subscribers.session_ended",
        "apps.sessions.subscribers.session_ended",
        "apps.energy.subscribers.session_ended",
        "apps.roaming.subscribers.session_ended",
    ],
    SessionPreferencesChanged: ["apps.energy.subscribers.session_preferences_changed"],
    LocationChanged: ["apps.roaming.subscribers.location_changed"],
    EvseChanged: ["apps.roaming.subscribers.evse_changed"],
    TariffChanged: ["apps.roaming.subscribers.tariff_changed"],
    TokensChanged: ["apps.roaming.subscribers.tokens_changed"],
    PartnerCdrReceived: ["apps.billing.subscribers.partner_cdr_received"],
}


@cache
def _resolve(path: str) -> Callable[[Any], Any]:
    return import_string(path)  # type: ignore[no-any-return]


def publish(event: Event) -> None:
    """Write `event` to the outbox in the current transaction (outside one: in its own), one row per subscriber,
    and wake the outbox worker once it committed. Nothing is delivered for a rolled-back change."""
    from apps.core import outbox

    paths = SUBSCRIBERS.get(type(event), [])
    if paths:
        outbox.write(event, paths)


def publish_many(published: Sequence[Event]) -> None:
    """`publish` for many events in one outbox INSERT and one wake-up."""
    from apps.core import outbox

    outbox.write_many([(event, SUBSCRIBERS[type(event)]) for event in published if SUBSCRIBERS.get(type(event))])


def deliver(event: Event) -> None:
    """Call each subscriber now, in this thread, bypassing the outbox (tools and tests of subscribers); a failure
    is logged and does not stop the others."""
    for path in SUBSCRIBERS.get(type(event), []):
        try:
            _resolve(path)(event)
        except Exception:
            logger.exception("event subscriber %s failed for %r", path, event)


# --------------------------------------------------------------------------- stored form


_datetime_fields_of: dict[type[Event], frozenset[str]] = {}


def _datetime_fields(cls: type[Event]) -> frozenset[str]:
    found = _datetime_fields_of.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = frozenset(f.name for f in fields(cls) if hints[f.name] in (datetime, datetime | None))
        _datetime_fields_of[cls] = found
    return found


def to_payload(event: Event) -> dict[str, Any]:
    """The JSON document stored in the outbox (datetimes ISO 8601, the event id as text)."""
    document: dict[str, Any] = {}
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        document[f.name] = value
    return document


def from_payload(event_type: str, document: dict[str, Any]) -> Event:
    """The event back from its stored form; unknown keys (a field removed since) are ignored."""
    cls = Event.types[event_type]
    known = {f.name for f in fields(cls)}
    values = {key: value for key, value in document.items() if key in known}
    for name in _datetime_fields(cls):
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    if "event_id" in values:
        values["event_id"] = uuid.UUID(values["event_id"])
    return cls(**values)
