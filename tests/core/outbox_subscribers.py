"""Subscribers run by the real Celery workers of tests/core/test_outbox_celery.py. They report to Redis under
the test's key (`OUTBOX_TEST_KEY`), which both the test and its workers see."""

from __future__ import annotations

import json
import os
import time

import redis
from django.conf import settings

from apps.core import events


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def key(name: str) -> str:
    return f"{os.environ['OUTBOX_TEST_KEY']}:{name}"


def _report(name: str, event: events.ConnectorStatusChanged) -> None:
    _client().rpush(key(name), json.dumps({"cp": event.charge_point_id, "n": event.connector_id, "pid": os.getpid()}))


def record(event: events.ConnectorStatusChanged) -> None:
    time.sleep(0.005)  # a subscriber's work: long enough for two workers to deliver at the same time
    _report("record", event)


def fail_twice(event: events.ConnectorStatusChanged) -> None:
    attempt = _client().incr(key(f"attempts:{event.event_id}"))
    if attempt <= 2:
        raise ConnectionError(f"attempt {attempt}: partner down")
    _report("fail_twice", event)


def hang_once(event: events.ConnectorStatusChanged) -> None:
    """The first call hangs (the test kills its worker meanwhile); later calls go through."""
    if _client().set(key("hung"), os.getpid(), nx=True):
        time.sleep(120)
    _report("hang_once", event)
