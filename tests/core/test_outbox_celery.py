"""The outbox delivered by real Celery workers (separate processes on the test Redis and the test database):
through the kick, in order per subject under two workers, retrying a failing subscriber, and losing nothing
when the publisher or a worker is killed between the commit and the delivery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.db import connection, transaction

from apps.core import events
from apps.core.models import OutboxDelivery
from apps.core.tasks import outbox_deliver
from evplatform.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = "tests.core.outbox_subscribers"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def status(charge_point_id: int, n: int) -> events.ConnectorStatusChanged:
    return events.ConnectorStatusChanged(
        tenant_id=1, charge_point_id=charge_point_id, connector_id=n, status="Charging", error_code="",
        previous_status="Preparing", at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def database_url_of_this_test() -> str:
    """DATABASE_URL of the database this test runs against (the test database), for other processes."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@dataclass
class Rig:
    queue: str
    key: str
    env: dict[str, str]
    client: redis.Redis
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def start_worker(self) -> subprocess.Popen[bytes]:
        name = f"w{len(self.workers) + 1}-{self.queue}@outbox-test"
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evplatform", "worker", "-Q", self.queue, "--pool", "solo",
             "-n", name, "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env,
        )  # fmt: skip
        self.workers.append(worker)
        self.names.append(name)
        return worker

    def wait_ready(self, seconds: float = 90) -> None:
        """Until every worker started answers a ping (it consumes its queue)."""
        deadline = time.monotonic() + seconds
        answered: set[str] = set()
        while answered != set(self.names):
            assert time.monotonic() < deadline, f"workers not ready: {set(self.names) - answered}"
            assert all(w.poll() is None for w in self.workers), "a worker exited"
            replies = celery_app.control.ping(destination=list(self.names), timeout=1.0)
            answered |= {name for reply in replies for name in reply}

    def reports(self, name: str) -> list[dict[str, int]]:
        return [json.loads(item) for item in self.client.lrange(f"{self.key}:{name}", 0, -1)]

    def wait_for(self, condition: Callable[[], bool], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            assert all(w.poll() is None for w in self.workers if w.returncode is None), "a worker exited"
            time.sleep(0.1)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.fixture
def rig(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    queue = f"test-events-{uuid.uuid4().hex[:8]}"
    key = f"evp-test-outbox-{uuid.uuid4().hex[:8]}"
    overrides = {
        "EVENTS_DELIVERY": "celery",
        "EVENTS_OUTBOX_QUEUE": queue,
        "EVENTS_OUTBOX_KICK_KEY": f"{key}:kick",
        "EVENTS_OUTBOX_RETRY_BASE_S": "0.5",
    }
    for name, value in overrides.items():
        setattr(settings, name, float(value) if name.endswith("_S") else value)
    monkeypatch.setenv("OUTBOX_TEST_KEY", key)
    env = {
        **os.environ,
        **overrides,
        "OUTBOX_TEST_KEY": key,
        "DJANGO_SETTINGS_MODULE": "evplatform.settings.test",
        "DATABASE_URL": database_url_of_this_test(),
    }
    client = redis.Redis.from_url(settings.REDIS_URL)
    instance = Rig(queue=queue, key=key, env=env, client=client)
    try:
        yield instance
    finally:
        instance.stop()
        client.delete(queue, *client.keys(f"{key}:*"))
        client.close()


def subscribe(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    monkeypatch.setitem(events.SUBSCRIBERS, events.ConnectorStatusChanged, [f"{SUBSCRIBERS}.{n}" for n in names])


def by_charge_point(reports: list[dict[str, int]]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for report in reports:
        found.setdefault(report["cp"], []).append(report["n"])
    return found


def first_seen(reports: list[dict[str, int]]) -> dict[int, list[int]]:
    """Per charger, its events in the order they were first delivered (a round redone after another
    subscriber's failure delivers again: at least once)."""
    found: dict[int, list[int]] = {}
    for report in reports:
        if report["n"] not in found.setdefault(report["cp"], []):
            found[report["cp"]].append(report["n"])
    return found


def test_two_workers_deliver_every_event_once_in_order_per_subject(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # given two workers
    subscribe(monkeypatch, "record")
    rig.start_worker()
    rig.start_worker()
    rig.wait_ready()

    # when 300 events of 100 chargers are committed (three per charger, interleaved)
    with transaction.atomic():
        for n in range(1, 4):
            for cp in range(1, 101):
                events.publish(status(cp, n))
    rig.wait_for(lambda: len(rig.reports("record")) >= 300)

    # then each event was delivered once, each charger's in publishing order, and both workers delivered (the
    # first one, woken by the kick, found a backlog and called the second one in)
    reports = rig.reports("record")
    assert len(reports) == 300
    assert by_charge_point(reports) == {cp: [1, 2, 3] for cp in range(1, 101)}
    assert len({r["pid"] for r in reports}) == 2
    assert set(OutboxDelivery.objects.values_list("state", flat=True)) == {OutboxDelivery.State.DELIVERED}


def test_a_failing_subscriber_is_retried_by_the_worker_and_holds_only_its_own_events(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a subscriber whose partner is down, next to one that works
    subscribe(monkeypatch, "fail_while_down", "record")
    rig.client.set(f"{rig.key}:down", 1)
    rig.start_worker()

    # when a charger's two events are published
    for n in (1, 2):
        with transaction.atomic():
            events.publish(status(7, n))

    # then the working subscriber gets both at once, the failing one is retried (wake-ups the worker scheduled
    # for itself: no beat runs here) and its second event waits behind its first
    def failing() -> list[OutboxDelivery]:
        return list(OutboxDelivery.objects.filter(subscriber=f"{SUBSCRIBERS}.fail_while_down").order_by("pk"))

    rig.wait_for(lambda: failing()[0].attempts >= 2)
    assert (failing()[1].state, failing()[1].attempts) == (OutboxDelivery.State.PENDING, 0)
    assert "ConnectionError: partner down" in failing()[0].last_error
    assert first_seen(rig.reports("record")) == {7: [1, 2]}

    # and once the partner is back, both go through, in order
    rig.client.delete(f"{rig.key}:down")
    rig.wait_for(lambda: len(rig.reports("fail_while_down")) == 2, seconds=60)
    assert by_charge_point(rig.reports("fail_while_down")) == {7: [1, 2]}
    rig.wait_for(lambda: [r.state for r in failing()] == [OutboxDelivery.State.DELIVERED] * 2)
    assert failing()[0].attempts >= 3


PUBLISH_THEN_DIE = """
import os, django
django.setup()
from django.db import transaction
from apps.core import events
from tests.core.test_outbox_celery import status
events.SUBSCRIBERS[events.ConnectorStatusChanged] = ["tests.core.outbox_subscribers.record"]
with transaction.atomic():
    transaction.on_commit(lambda: os._exit(9))  # runs first: the process dies right after COMMIT, before the kick
    events.publish(status(5, 1))
"""


def test_a_publisher_killed_after_its_commit_loses_nothing(rig: Rig) -> None:
    # given a process that commits an event and dies before it can wake any worker
    died = subprocess.run([sys.executable, "-c", PUBLISH_THEN_DIE], cwd=ROOT, env=rig.env, check=False, timeout=120)
    assert died.returncode == 9
    assert list(OutboxDelivery.objects.values_list("state", flat=True)) == [OutboxDelivery.State.PENDING]
    assert rig.client.llen(rig.queue) == 0  # nobody was told

    # when beat's sweep comes round
    rig.start_worker()
    outbox_deliver.apply_async(queue=rig.queue)  # as beat sends it

    # then it is delivered
    rig.wait_for(lambda: len(rig.reports("record")) == 1)
    assert by_charge_point(rig.reports("record")) == {5: [1]}


def test_a_worker_killed_in_the_middle_of_a_delivery_loses_nothing(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a worker stuck in a subscriber call (the first event of charger 3), with more events behind it
    subscribe(monkeypatch, "hang_once")
    first = rig.start_worker()
    for cp, n in ((3, 1), (3, 2), (4, 1)):
        with transaction.atomic():
            events.publish(status(cp, n))
    rig.wait_for(lambda: rig.client.get(f"{rig.key}:hung") is not None)

    # when it is killed (no chance to clean up)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=20)

    # then its round was rolled back: every row is still pending, nothing is lost
    assert set(OutboxDelivery.objects.values_list("state", "attempts")) == {(OutboxDelivery.State.PENDING, 0)}

    # and the next worker delivers everything, in order
    rig.start_worker()
    outbox_deliver.apply_async(queue=rig.queue)
    rig.wait_for(lambda: len(rig.reports("hang_once")) == 3)
    assert by_charge_point(rig.reports("hang_once")) == {3: [1, 2], 4: [1]}
    assert set(OutboxDelivery.objects.values_list("state", flat=True)) == {OutboxDelivery.State.DELIVERED}
