"""Kernel tasks."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="core.ping", ignore_result=True)
def ping(key: str, ttl: int = 60) -> None:
    """Worker liveness probe: write `pong` to Redis under `key`, so a caller can see a worker ran it."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.set(key, "pong", ex=ttl)
    finally:
        client.close()


@shared_task(name="core.maintain_partitions", ignore_result=True)
def maintain_partitions() -> list[str]:
    """Beat, hourly: every time-partitioned table (`PARTITIONED_TABLES`) has its partitions a week ahead, and the
    day partitions wholly older than the table's retention (`PARTITION_RETENTION_DAYS`, 0: keep) are dropped.
    Returns the names of the partitions created and dropped."""
    import datetime as dt

    from django.utils import timezone

    from apps.core import partitions

    now = timezone.now()
    changed = []
    for table, column in settings.PARTITIONED_TABLES.items():
        changed += partitions.ensure_partitions(table, column, now=now)
    for table, days in settings.PARTITION_RETENTION_DAYS.items():
        if days > 0:
            dropped = partitions.drop_partitions_before(table, now - dt.timedelta(days=days))
            if dropped:
                logger.info("retention: dropped %s", ", ".join(dropped))
            changed += dropped
    return changed


@shared_task(name="core.outbox_deliver", ignore_result=True)
def outbox_deliver() -> int:
    """Deliver the outbox's due events (a kick after a commit, a retry's wake-up, or beat's sweep); returns how
    many were delivered. Runs on the outbox queue (`EVENTS_OUTBOX_QUEUE`)."""
    from apps.core import outbox

    return outbox.worker_pass().delivered


@shared_task(name="core.outbox_purge", ignore_result=True)
def outbox_purge() -> int:
    """Beat: delete delivered outbox rows past their retention, dead ones past theirs."""
    from apps.core import outbox

    return outbox.purge()
