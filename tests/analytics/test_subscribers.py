"""Analytics' event subscribers under at-least-once delivery: a core event delivered twice records one fact
and one webhook event (keyed on the core event's id), so subscribers' receivers never hear of it twice."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone

from apps.analytics.models import NotificationEvent, SessionFact, WebhookDelivery, WebhookSubscription
from apps.core import events, outbox
from apps.core.models import OutboxDelivery
from apps.sessions.models import SessionStatus
from apps.tenants.models import Tenant
from tests.charging.factories import ChargingSessionFactory
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db


def deliver_twice() -> None:
    """The outbox delivers, then delivers again, as after a worker died before recording the delivery."""
    assert outbox.deliver_pending().delivered == OutboxDelivery.objects.count()
    OutboxDelivery.objects.update(state=OutboxDelivery.State.PENDING)
    assert outbox.deliver_pending().delivered == OutboxDelivery.objects.count()


def test_a_session_end_delivered_twice_records_one_fact_and_one_webhook_event(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    # given a customer's webhook for every event, and a completed session whose end is published to analytics
    monkeypatch.setattr(events, "SUBSCRIBERS", {events.SessionEnded: ["apps.analytics.subscribers.session_ended"]})
    WebhookSubscription.objects.create(tenant=tenant_a, name="Fleet", url="http://127.0.0.1:9/hooks")
    cp = ChargePointFactory(tenant=tenant_a)
    now = timezone.now()
    session = ChargingSessionFactory(
        charge_point=cp, status=SessionStatus.COMPLETED, started_at=now - dt.timedelta(hours=1), stopped_at=now,
        meter_stop_wh=12_000, energy_wh=12_000, stop_reason="Local",
    )  # fmt: skip
    event = events.SessionEnded(tenant_id=tenant_a.pk, session_id=session.pk, charge_point_id=cp.pk)
    events.publish(event)

    # when it is delivered twice
    with django_capture_on_commit_callbacks() as callbacks:
        deliver_twice()

    # then one fact, one webhook event (id derived from the core event), one delivery
    assert SessionFact.objects.filter(session_id=session.pk, kind=SessionFact.Kind.ENDED).count() == 1
    notification = NotificationEvent.objects.get()
    assert notification.id == uuid.uuid5(event.event_id, "session.ended")
    assert notification.type == "session.ended"
    assert (notification.payload["session_id"], notification.payload["charge_point_id"]) == (session.pk, cp.pk)
    assert WebhookDelivery.objects.count() == 1
    assert len(callbacks) == 1  # one webhook task


def test_a_status_change_delivered_twice_emits_one_webhook_event(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr(
        events, "SUBSCRIBERS", {events.ConnectorStatusChanged: ["apps.analytics.subscribers.connector_status_changed"]}
    )
    WebhookSubscription.objects.create(tenant=tenant_a, name="Fleet", url="http://127.0.0.1:9/hooks")
    cp = ChargePointFactory(tenant=tenant_a)
    events.publish(
        events.ConnectorStatusChanged(
            tenant_id=tenant_a.pk, charge_point_id=cp.pk, connector_id=1, status="Charging", error_code="",
            previous_status="Preparing", at=timezone.now(),
        )
    )  # fmt: skip

    with django_capture_on_commit_callbacks():
        deliver_twice()

    assert list(NotificationEvent.objects.values_list("type", flat=True)) == ["connector.status_changed"]
    assert WebhookDelivery.objects.count() == 1
