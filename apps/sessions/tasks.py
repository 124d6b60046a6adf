"""Celery tasks of charging sessions: beat jobs for reservations and session limits; they take ids, are idempotent."""

from __future__ import annotations

from celery import shared_task

from apps.sessions import commands, services


@shared_task(name="charging.expire_reservations")
def expire_reservations() -> int:
    return commands.reservations_expire()


@shared_task(name="charging.enforce_limits")
def enforce_limits() -> int:
    """Beat: every active session at its contract limit is stopped or held at 0 A."""
    due = commands.session_limits_due()
    for session_id in due:
        commands.session_limit_enforce(session_id=session_id)
    return len(due)


@shared_task(name="charging.enforce_limit")
def enforce_limit(session_id: int) -> None:
    commands.session_limit_enforce(session_id=session_id)


@shared_task(name="charging.flag_too_long")
def flag_too_long() -> int:
    """Beat: running sessions past CHARGING_SESSION_TOO_LONG_HOURS are flagged suspicious ("too_long"), once."""
    return services.sessions_flag_too_long()


@shared_task(name="charging.close_stale")
def close_stale() -> int:
    """Beat: sessions with no news for CHARGING_SESSION_CLOSE_AFTER_HOURS are closed (closed_without_stop)."""
    return len(services.sessions_close_stale())
