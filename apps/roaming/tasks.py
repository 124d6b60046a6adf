"""Celery tasks of roaming: the OCPI pushes (apps/roaming/ocpi/push.py). They take ids and are idempotent."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="roaming.push_partner", ignore_result=True)
def push_partner(partner_id: int) -> int:
    """Send a partner's pending pushes; after a failure come back when the backoff is over. Returns how many went."""
    from apps.roaming.ocpi import push

    result = push.push_partner(partner_id=partner_id)
    if result.retry_at is not None:
        push_partner.apply_async((partner_id,), countdown=max((result.retry_at - timezone.now()).total_seconds(), 0))
    return result.sent


@shared_task(name="roaming.push_sweep", ignore_result=True)
def push_sweep() -> int:
    """Beat: a push task for every partner with due pending pushes (a lost task, a retry whose wake-up was lost)."""
    from apps.roaming.ocpi import push

    partner_ids = push.due_partner_ids()
    for partner_id in partner_ids:
        push_partner.delay(partner_id)
    return len(partner_ids)
