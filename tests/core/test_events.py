"""Events: written to the outbox with the change, delivered after commit to every subscriber, in order per
subject; a failing subscriber is retried with backoff without blocking the others, and dead-lettered at last.

These tests drain the outbox in the test process (`EVENTS_DELIVERY = "inline"` or `outbox.deliver_pending`);
tests/core/test_outbox_celery.py delivers through real Celery workers."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.core import events, outbox
from apps.core.models import OutboxDelivery
from apps.tenants.models import User
from tests.tenants.factories import UserFactory

received: list[events.Event] = []
flaky_received: list[events.Event] = []
down: set[str] = set()  # subjects for which `flaky`'s partner is down
poison: set[int] = set()  # connector ids of events `flaky` always fails on


def record(event: events.Event) -> None:
    received.append(event)


def explode(event: events.Event) -> None:
    raise RuntimeError("subscriber bug")


def flaky(event: events.ConnectorStatusChanged) -> None:
    if event.subject in down or event.connector_id in poison:
        raise ConnectionError("partner down")
    flaky_received.append(event)


def relay(event: events.ConnectorStatusChanged) -> None:
    """A subscriber whose work is a database write: it publishes an event of its own."""
    events.publish(events.ChargePointConnectionChanged(tenant_id=1, charge_point_id=event.charge_point_id,
                                                       online=True, at=event.at))  # fmt: skip


def relay_then_explode(event: events.ConnectorStatusChanged) -> None:
    relay(event)
    raise RuntimeError("subscriber bug after its write")


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    received.clear()
    flaky_received.clear()
    down.clear()
    poison.clear()
    yield
    received.clear()


def use(monkeypatch: pytest.MonkeyPatch, *subscribers: Callable[[events.Event], None]) -> None:
    monkeypatch.setitem(
        events.SUBSCRIBERS, events.ConnectorStatusChanged, [f"{__name__}.{s.__name__}" for s in subscribers]
    )


def status(n: int = 1, charge_point_id: int = 2) -> events.ConnectorStatusChanged:
    return events.ConnectorStatusChanged(
        tenant_id=1, charge_point_id=charge_point_id, connector_id=n, status="Faulted", error_code="GroundFailure",
        previous_status="Available", at=datetime(2026, 1, 1, 12, n, tzinfo=UTC),
    )  # fmt: skip


def rows(**filters: Any) -> list[tuple[str, int, int]]:
    """(subscriber function, connector id of the event, state) of the outbox rows, in id order."""
    return [
        (r.subscriber.rsplit(".", 1)[1], r.payload["connector_id"], r.state)
        for r in OutboxDelivery.objects.filter(**filters).order_by("pk")
    ]


def of_charge_point(delivered: list[events.Event], charge_point_id: int) -> list[events.Event]:
    return [e for e in delivered if getattr(e, "charge_point_id", None) == charge_point_id]


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


# --------------------------------------------------------------------------- writing


def test_publish_is_one_insert_in_the_callers_transaction_one_row_per_subscriber(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any, db: None
) -> None:
    use(monkeypatch, explode, record)
    event = status()

    with django_assert_num_queries(1):
        events.publish(event)

    stored = list(OutboxDelivery.objects.order_by("pk").values("event_type", "subject", "subscriber", "tenant_id",
                                                              "state", "attempts", "payload"))  # fmt: skip
    assert stored == [
        {
            "event_type": "ConnectorStatusChanged",
            "subject": "charge_point:2",
            "subscriber": f"{__name__}.{name}",
            "tenant_id": 1,
            "state": OutboxDelivery.State.PENDING,
            "attempts": 0,
            "payload": events.to_payload(event),
        }
        for name in ("explode", "record")
    ]
    assert received == []  # not before commit


@pytest.mark.parametrize(
    "event",
    [
        status(),
        events.ChargePointConnectionChanged(
            tenant_id=1, charge_point_id=2, online=False, at=datetime(2026, 1, 1, tzinfo=UTC)
        ),
        events.CommandFinished(tenant_id=1, command_id=3, charge_point_id=2, action="Reset", status="accepted"),
        events.SessionStarted(tenant_id=1, session_id=4, charge_point_id=2),
        events.SessionMeterUpdated(tenant_id=1, session_id=4, charge_point_id=2, energy_wh=1500, power_w=None),
        events.SessionEnded(tenant_id=1, session_id=4, charge_point_id=2),
        events.SessionPreferencesChanged(tenant_id=1, session_id=4, charge_point_id=2),
    ],
    ids=lambda e: type(e).__name__,
)  # fmt: skip
def test_every_event_type_comes_back_from_its_stored_form_with_its_id(event: events.Event) -> None:
    stored = json.loads(json.dumps(events.to_payload(event)))

    back = events.from_payload(type(event).__name__, stored)

    assert back == event
    assert back.event_id == event.event_id
    assert back.subject == event.subject


def test_subjects_are_the_charge_point_or_the_session() -> None:
    assert status().subject == "charge_point:2"
    assert events.SessionEnded(tenant_id=1, session_id=4, charge_point_id=2).subject == "session:4"


def test_every_listed_subscriber_resolves() -> None:
    for paths in events.SUBSCRIBERS.values():
        for path in paths:
            assert callable(events._resolve(path)), path


# --------------------------------------------------------------------------- delivering


@pytest.mark.django_db(transaction=True)
def test_delivered_after_commit_despite_a_failing_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, explode, record)
    event = status()
    with transaction.atomic():
        events.publish(event)
        assert received == []

    assert received == [event]
    assert rows() == [("explode", 1, OutboxDelivery.State.PENDING), ("record", 1, OutboxDelivery.State.DELIVERED)]
    failed = OutboxDelivery.objects.get(subscriber__endswith="explode")
    assert failed.attempts == 1
    assert "RuntimeError: subscriber bug" in failed.last_error
    assert failed.available_at > timezone.now()  # retried later, with backoff


@pytest.mark.django_db(transaction=True)
def test_not_written_nor_delivered_when_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, record)

    def publish_then_fail() -> None:
        with transaction.atomic():
            events.publish(status())
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        publish_then_fail()

    assert received == []
    assert not OutboxDelivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_event_is_its_own_transaction_and_delivered_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use(monkeypatch, record)
    event = status()

    events.publish(event)

    assert received == [event]
    assert rows() == [("record", 1, OutboxDelivery.State.DELIVERED)]


def test_a_failing_subscriber_is_retried_with_backoff_holds_only_its_own_stream_and_keeps_the_order(
    monkeypatch: pytest.MonkeyPatch, db: None, settings: Any
) -> None:
    settings.EVENTS_OUTBOX_RETRY_BASE_S = 10
    use(monkeypatch, flaky, record)
    down.add("charge_point:2")  # flaky's partner is down for charge point 2
    first, second, elsewhere = status(1), status(2), status(3, charge_point_id=7)
    for event in (first, second, elsewhere):
        events.publish(event)

    # when the outbox is drained now
    before = timezone.now()
    outcome = outbox.deliver_pending()
    after = timezone.now()

    # then `record` got everything, `flaky` only the other charger's event; its first event waits for a retry
    # in 10 s and holds its second one (same subject, same subscriber) with it
    assert (outcome.delivered, outcome.failed) == (4, 1)
    assert of_charge_point(received, 2) == [first, second]
    assert of_charge_point(received, 7) == [elsewhere]
    assert flaky_received == [elsewhere]
    waiting = OutboxDelivery.objects.get(subscriber__endswith="flaky", payload__connector_id=1)
    held = OutboxDelivery.objects.get(subscriber__endswith="flaky", payload__connector_id=2)
    assert (waiting.attempts, held.attempts) == (1, 0)
    assert held.available_at == waiting.available_at
    assert before + dt.timedelta(seconds=10) <= waiting.available_at <= after + dt.timedelta(seconds=10)

    # nothing is due before the backoff ran out; the second attempt fails too and the backoff doubles
    assert outbox.deliver_pending(now=later(5)).claimed == 0
    assert outbox.deliver_pending(now=later(11)).failed == 1
    assert outbox.deliver_pending(now=later(25)).claimed == 0
    # the partner is back: the third attempt goes through, in order
    down.clear()
    assert outbox.deliver_pending(now=later(31)).delivered == 2
    assert flaky_received == [elsewhere, first, second]
    assert OutboxDelivery.objects.get(pk=waiting.pk).attempts == 3
    assert set(OutboxDelivery.objects.values_list("state", flat=True)) == {OutboxDelivery.State.DELIVERED}


def test_a_subscribers_writes_commit_with_its_delivery_once_even_when_another_fails_in_the_same_round(
    monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    # given two subscribers that write, the second failing after its write
    use(monkeypatch, relay, relay_then_explode)
    monkeypatch.setitem(events.SUBSCRIBERS, events.ChargePointConnectionChanged, [f"{__name__}.record"])
    events.publish(status(1))

    # when the outbox delivers them in one round (the failure makes it roll back and redo it with savepoints)
    outcome = outbox.deliver_pending()

    # then the failing subscriber's write is gone, the other's is there once: its event is delivered once
    assert (outcome.delivered, outcome.failed) == (2, 1)  # relay, then the ConnectionChanged it published
    relayed = OutboxDelivery.objects.filter(event_type="ChargePointConnectionChanged")
    assert relayed.count() == 1
    assert [type(e).__name__ for e in received] == ["ChargePointConnectionChanged"]


def test_rows_published_after_a_failure_are_held_behind_it(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    use(monkeypatch, flaky)
    down.add("charge_point:2")
    events.publish(status(1))
    outbox.deliver_pending()
    failing = OutboxDelivery.objects.get()
    # a later event of the same stream arrives while the first waits for its retry
    events.publish(status(2))
    events.publish(status(3, charge_point_id=7))

    held = outbox.hold_behind_retries()

    assert held == 1
    assert OutboxDelivery.objects.get(payload__connector_id=2).available_at == failing.available_at
    assert OutboxDelivery.objects.get(payload__connector_id=3).available_at < failing.available_at


def test_dead_lettered_after_the_last_attempt_then_the_stream_goes_on_and_an_operator_can_retry(
    monkeypatch: pytest.MonkeyPatch, db: None, settings: Any, client: Client
) -> None:
    settings.EVENTS_OUTBOX_MAX_ATTEMPTS = 2
    use(monkeypatch, flaky)
    poison.add(1)  # the first event always fails
    first, second = status(1), status(2)
    events.publish(first)
    events.publish(second)

    outbox.deliver_pending()
    outcome = outbox.deliver_pending(now=later(3600))

    # the first is dead after two attempts; the second, no longer held, went through
    assert (outcome.dead, outcome.delivered) == (1, 1)
    assert rows() == [("flaky", 1, OutboxDelivery.State.DEAD), ("flaky", 2, OutboxDelivery.State.DELIVERED)]
    assert flaky_received == [second]

    # an operator sees it in the admin and puts it back
    dead = OutboxDelivery.objects.get(state=OutboxDelivery.State.DEAD)
    poison.clear()  # the bug was fixed
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    changelist = reverse("admin:core_outboxdelivery_changelist")
    page = client.get(changelist, {"state__exact": 2, "subscriber": f"{__name__}.flaky"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert b"flaky" in page.content
    assert (
        client.get(changelist, {"subscriber": "apps.billing.subscribers.session_ended"}).context["cl"].result_count == 0
    )
    answer = client.post(
        reverse("admin:core_outboxdelivery_changelist"),
        {"action": "retry", "_selected_action": [str(dead.pk)]},
    )
    assert answer.status_code == 302
    dead.refresh_from_db()
    assert (dead.state, dead.attempts) == (OutboxDelivery.State.PENDING, 0)
    assert outbox.deliver_pending().delivered == 1
    assert flaky_received == [second, first]


def test_the_outbox_admin_is_for_platform_superusers_only(db: None, client: Client) -> None:
    staff: User = UserFactory(username="ops", is_staff=True)
    client.force_login(staff)

    assert client.get(reverse("admin:core_outboxdelivery_changelist")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_a_head_held_by_one_worker_holds_its_stream_while_other_streams_go_to_the_next(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.EVENTS_DELIVERY = "celery"
    settings.EVENTS_OUTBOX_QUEUE = "test-unconsumed"
    monkeypatch.setattr(outbox, "kick", lambda: None)
    use(monkeypatch, record)
    for event in (status(1), status(2), status(3, charge_point_id=7)):
        events.publish(event)
    claimed = threading.Event()
    release = threading.Event()
    first_worker: list[int] = []

    def worker_one() -> None:
        with transaction.atomic():
            first_worker.extend(r.payload["connector_id"] for r in outbox._claim(limit=1, wait=False,
                                                                                 now=timezone.now()))  # fmt: skip
            claimed.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=worker_one)
    thread.start()
    try:
        assert claimed.wait(10)
        # while worker one holds charge point 2's first event, worker two gets only charge point 7's
        with transaction.atomic():
            second_worker = [r.payload["connector_id"] for r in outbox._claim(limit=10, wait=False, now=timezone.now())]
    finally:
        release.set()
        thread.join(10)

    assert first_worker == [1]
    assert second_worker == [3]


# --------------------------------------------------------------------------- waking a worker


def test_commits_kick_one_task_until_a_worker_pass_clears_the_flag(
    monkeypatch: pytest.MonkeyPatch, db: None, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EVENTS_DELIVERY = "celery"
    settings.EVENTS_OUTBOX_QUEUE = f"test-outbox-{id(settings)}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(settings.EVENTS_OUTBOX_QUEUE, settings.EVENTS_OUTBOX_KICK_KEY)
    use(monkeypatch, record)
    try:
        # three commits: one task
        for n in (1, 2, 3):
            with django_capture_on_commit_callbacks(execute=True):
                events.publish(status(n))
        assert client.llen(settings.EVENTS_OUTBOX_QUEUE) == 1
        assert received == []

        # the worker's pass clears the flag first and delivers everything committed before it
        assert outbox.worker_pass().delivered == 3
        assert received == [status(1), status(2), status(3)]

        # the next commit sends the next task
        with django_capture_on_commit_callbacks(execute=True):
            events.publish(status(4))
        assert client.llen(settings.EVENTS_OUTBOX_QUEUE) == 2
    finally:
        client.delete(settings.EVENTS_OUTBOX_QUEUE, settings.EVENTS_OUTBOX_KICK_KEY)
        client.close()


# --------------------------------------------------------------------------- clean-up


def test_purge_deletes_delivered_rows_past_retention_and_dead_ones_past_theirs(
    monkeypatch: pytest.MonkeyPatch, db: None, settings: Any
) -> None:
    settings.EVENTS_OUTBOX_RETENTION_HOURS = 1
    settings.EVENTS_OUTBOX_DEAD_RETENTION_DAYS = 30
    use(monkeypatch, record)
    for n in range(1, 7):
        events.publish(status(n))
    now = timezone.now()
    ages = {  # connector id -> (state, age of created_at and delivered_at)
        1: (OutboxDelivery.State.DELIVERED, dt.timedelta(hours=2)),
        2: (OutboxDelivery.State.DELIVERED, dt.timedelta(minutes=30)),
        3: (OutboxDelivery.State.PENDING, dt.timedelta(days=40)),
        4: (OutboxDelivery.State.DEAD, dt.timedelta(days=31)),
        5: (OutboxDelivery.State.DEAD, dt.timedelta(days=29)),
        6: (OutboxDelivery.State.DELIVERED, dt.timedelta(days=1)),
    }
    for n, (state, age) in ages.items():
        delivered_at = now - age if state == OutboxDelivery.State.DELIVERED else None
        OutboxDelivery.objects.filter(payload__connector_id=n).update(
            state=state, created_at=now - age, delivered_at=delivered_at
        )

    assert outbox.purge(now=now) == 3

    assert sorted(OutboxDelivery.objects.values_list("payload__connector_id", flat=True)) == [2, 3, 5]
