"""Celery tasks of the OCPP adapter."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.core import partitions
from apps.ocpp.models import MessageLog

logger = logging.getLogger(__name__)
BATCH = 10_000
TABLE = MessageLog._meta.db_table


@shared_task(name="ocpp.purge_message_log")
def purge_message_log() -> int:
    """Beat, hourly: the frame log's next days have their partitions (apps/core/partitions.py), and frames older
    than OCPP_MESSAGE_LOG_RETENTION_DAYS go: whole day partitions are dropped; rows of the partition that holds
    what was there before partitioning are deleted in batches (no long lock) until it is dropped whole. Returns
    the rows deleted one by one (a dropped partition's are not counted: that would read them)."""
    now = timezone.now()
    partitions.ensure_partitions(TABLE, "created_at", now=now)
    cutoff = now - dt.timedelta(days=settings.OCPP_MESSAGE_LOG_RETENTION_DAYS)
    dropped = partitions.drop_partitions_before(TABLE, cutoff)
    if dropped:
        logger.info("frame log: dropped %s", ", ".join(dropped))
    days = [p.start for p in partitions.partitions(TABLE) if p.start is not None]
    bound = min([cutoff, *days])  # never delete row by row inside a day partition: it is dropped whole later
    deleted = 0
    while True:
        ids = list(MessageLog.objects.filter(created_at__lt=bound).order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        deleted += MessageLog.objects.filter(pk__in=ids).delete()[0]
