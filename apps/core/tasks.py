"""Kernel tasks."""

from __future__ import annotations

import redis
from celery import shared_task
from django.conf import settings


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
    """Beat, hourly: every time-partitioned table (`PARTITIONED_TABLES`) has its partitions a week ahead."""
    from apps.core import partitions

    created = []
    for table, column in settings.PARTITIONED_TABLES.items():
        created += partitions.ensure_partitions(table, column)
    return created


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
