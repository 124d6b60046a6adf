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


def fail_while_down(event: events.ConnectorStatusChanged) -> None:
    """Fails while the test keeps its partner down (a key in Redis)."""
    if _client().exists(key("down")):
        raise ConnectionError("partner down")
    _report("fail_while_down", event)


def hang_once(event: events.ConnectorStatusChanged) -> None:
    """The first call hangs (the test kills its worker meanwhile); later calls go through."""
    if _client().set(key("hung"), os.getpid(), nx=True):
        time.sleep(120)
    _report("hang_once", event)
