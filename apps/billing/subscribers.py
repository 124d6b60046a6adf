"""Billing's subscribers of core events (listed in `apps.core.events.SUBSCRIBERS`)."""

from __future__ import annotations

from apps.core.events import PartnerCdrReceived, SessionEnded


def session_ended(event: SessionEnded) -> None:
    """A session ended: issue (and mail) its receipt when it was ad hoc charging; the job decides.

    Done here, in the outbox's Celery delivery, rather than queued as one more task: a crash before the
    delivery committed leaves the event pending, so the receipt is never lost. Delivery is at least once and
    the job is idempotent: a second delivery finds the receipt issued and its mail queued, and does neither
    again (the receipt and its `send_queued` record commit together with the delivery)."""
    from apps.billing import tasks

    tasks.session_receipt(event.session_id)


def partner_cdr_received(event: PartnerCdrReceived) -> None:
    """A partner CPO's CDR for our driver: reconcile it with the CPO's tariff, then bill it (receipt, monthly
    invoice line, or a credit CDR's reversal), in the delivery's transaction as for our own sessions' receipts.
    Idempotent: a second delivery finds the line billed."""
    from apps.billing import tasks

    tasks.partner_cdr_received(event.cdr_id)
