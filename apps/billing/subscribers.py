"""Billing's subscribers of core events (listed in `apps.core.events.SUBSCRIBERS`). Quick: they enqueue jobs."""

from __future__ import annotations

from apps.core.events import SessionEnded


def session_ended(event: SessionEnded) -> None:
    """A session ended: issue (and mail) its receipt when it was ad hoc charging; the job decides."""
    from apps.billing import tasks

    tasks.session_receipt.delay(event.session_id)
