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
