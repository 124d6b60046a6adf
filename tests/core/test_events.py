from __future__ import annotations

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
