"""Celery tasks of the OCPP adapter."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.ocpp.models import MessageLog

BATCH = 10_000


@shared_task(name="ocpp.purge_message_log")
def purge_message_log() -> int:
    """Beat: delete frames older than OCPP_MESSAGE_LOG_RETENTION_DAYS, in batches (no long lock)."""
    cutoff = timezone.now() - dt.timedelta(days=settings.OCPP_MESSAGE_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(MessageLog.objects.filter(created_at__lt=cutoff).order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        deleted += MessageLog.objects.filter(pk__in=ids).delete()[0]
