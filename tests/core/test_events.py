from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import transaction

from apps.core import events

received: list[events.Event] = []


def record(event: events.Event) -> None:
    received.append(event)


def explode(event: events.Event) -> None:
    raise RuntimeError("subscriber bug")


@pytest.fixture
def subscribers(monkeypatch: pytest.MonkeyPatch) -> None:
    received.clear()
    monkeypatch.setitem(
        events.SUBSCRIBERS, events.ConnectorStatusChanged, [f"{__name__}.explode", f"{__name__}.record"]
    )


def make_event() -> events.ConnectorStatusChanged:
    return events.ConnectorStatusChanged(
        tenant_id=1, charge_point_id=2, connector_id=1, status="Faulted", error_code="GroundFailure",
        previous_status="Available", at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_delivered_after_commit_despite_a_failing_subscriber(subscribers: None) -> None:
    event = make_event()
    with transaction.atomic():
        events.publish(event)
        assert received == []

    assert received == [event]


@pytest.mark.django_db(transaction=True)
def test_not_delivered_when_rolled_back(subscribers: None) -> None:
    def publish_then_fail() -> None:
        with transaction.atomic():
            events.publish(make_event())
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        publish_then_fail()

    assert received == []


def test_every_listed_subscriber_resolves() -> None:
    for paths in events.SUBSCRIBERS.values():
        for path in paths:
            assert callable(events._resolve(path)), path


def record_thread(event: events.Event) -> None:
    received.append(event)
    threads.append(threading.current_thread().name)


threads: list[str] = []


@pytest.fixture
def threaded_subscriber(monkeypatch: pytest.MonkeyPatch) -> None:
    received.clear()
    threads.clear()
    monkeypatch.setitem(
        events.SUBSCRIBERS, events.ConnectorStatusChanged, [f"{__name__}.explode", f"{__name__}.record_thread"]
    )


def make_events(count: int) -> list[events.ConnectorStatusChanged]:
    return [
        events.ConnectorStatusChanged(
            tenant_id=1, charge_point_id=2, connector_id=n, status="Available", error_code="",
            previous_status="Faulted", at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for n in range(count)
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_background_delivery_after_commit_in_publishing_order_off_the_publishing_thread(
    threaded_subscriber: None,
) -> None:
    published = make_events(20)
    with events.deliver_in_background(), transaction.atomic():
        for event in published:
            events.publish(event)
        events.drain()
        assert received == []

    events.drain()

    assert received == published
    assert set(threads) == {"events_0"}
    assert threading.current_thread().name not in threads


@pytest.mark.django_db(transaction=True)
def test_background_delivery_never_for_a_rolled_back_change(threaded_subscriber: None) -> None:
    def publish_then_fail() -> None:
        with events.deliver_in_background(), transaction.atomic():
            events.publish(make_events(1)[0])
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        publish_then_fail()
    events.drain()

    assert received == []


@pytest.mark.django_db(transaction=True)
def test_outside_the_background_block_delivery_stays_synchronous(threaded_subscriber: None) -> None:
    with events.deliver_in_background():
        pass
    event = make_events(1)[0]

    events.publish(event)

    assert received == [event]
    assert threads == [threading.current_thread().name]
