"""Event subscribers of the charging app (listed in apps.core.events.SUBSCRIBERS): live pushes, limit checks.

Delivered at least once by the outbox: a repeated snapshot repaints the driver's view with the current state,
and a repeated limit check finds the limit already enforced."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.sessions import commands, live
from apps.sessions.models import ChargingSession, SessionStatus


def _snapshot(session_id: int, kind: str) -> None:
    session = ChargingSession.objects.filter(pk=session_id).first()
    if session is None:
        return
    live.push(
        session_id,
        {
            "event": kind,
            "session_id": session.pk,
            "status": session.status,
            "energy_wh": (
                session.energy_wh
                if session.energy_wh is not None
                else (session.last_meter_wh or session.meter_start_wh) - session.meter_start_wh
            ),
            "power_w": session.last_power_w,
            "limit_reached": session.limit_reached,
            "at": timezone.now().isoformat(),
        },
    )


def session_started(event: events.SessionStarted) -> None:
    _snapshot(event.session_id, "started")


def session_meter_updated(event: events.SessionMeterUpdated) -> None:
    _snapshot(event.session_id, "meter")
    session = (
        ChargingSession.objects.filter(pk=event.session_id, status=SessionStatus.ACTIVE, limit_reached_at__isnull=True)
        .only("pk", "started_at", "limit_duration", "limit_energy_wh", "last_meter_wh", "meter_start_wh")
        .first()
    )
    if session is not None and commands.limit_due(session, timezone.now()):
        from apps.sessions.tasks import enforce_limit

        # a task, never a command from the charger's own socket; sent once the delivery committed (a lost send
        # is caught by beat's charging.enforce_limits, a repeated one finds the limit already enforced)
        session_id = session.pk
        transaction.on_commit(lambda: enforce_limit.delay(session_id))


def session_stopped(event: events.SessionStopped) -> None:
    """Price the stopped session and write its CDR, then publish SessionEnded (idempotent: a second delivery finds
    the CDR)."""
    from apps.sessions import services

    services.session_completion(session_id=event.session_id)


def session_ended(event: events.SessionEnded) -> None:
    _snapshot(event.session_id, "ended")
