"""Webhooks: signed with a timestamp, retried with backoff, logged per attempt, replayable; a receiver that is
down for a while gets every event once it is back, none twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.analytics import notifications
from apps.analytics.models import DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookSubscription
from apps.tenants.models import Role, Tenant
from tests.analytics.conftest import Receiver
from tests.analytics.factories import WebhookDeliveryFactory

Capture = Callable[..., AbstractContextManager[Any]]
pytestmark = pytest.mark.usefixtures("eager_celery")


def test_signature_scheme() -> None:
    body = b'{"id":"e1"}'

    header = notifications.sign("whsec_x", 1_700_000_000, body)

    assert header.startswith("t=1700000000,v1=")
    assert notifications.verify("whsec_x", header, body, now=1_700_000_100)
    assert not notifications.verify("whsec_y", header, body, now=1_700_000_100)  # wrong secret
    assert not notifications.verify("whsec_x", header, body + b" ", now=1_700_000_100)  # tampered
    assert not notifications.verify("whsec_x", header, body, now=1_700_000_000 + 301)  # too old: replayed


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [notifications.backoff_seconds(n) for n in (1, 2, 3, 4, 8, 20)] == [30, 60, 120, 240, 3600, 3600]


def test_receiver_down_then_up_gets_every_event_once(
    tenant_a: Tenant, django_capture_on_commit_callbacks: Capture
) -> None:
    receiver = Receiver()  # not started: connection refused
    subscription = WebhookSubscription.objects.create(tenant=tenant_a, name="Fleet", url=receiver.url)
    with django_capture_on_commit_callbacks(execute=True):
        events = [
            notifications.notification_emit(tenant_id=tenant_a.pk, type="session.ended", payload={"session_id": n})
            for n in range(3)
        ]
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [(d.status, d.attempts) for d in deliveries] == [(DeliveryStatus.PENDING, 1)] * 3
    first_due = deliveries[0].next_attempt_at
    assert first_due is not None

    # still down at the first retry: attempt 2 fails, the wait doubles
    assert notifications.webhooks_retry_due(now=first_due + dt.timedelta(seconds=1)) == 3
    assert list(WebhookDelivery.objects.order_by("id").values_list("attempts", flat=True)) == [2, 2, 2]
    receiver.start()
    try:
        later = timezone.now() + dt.timedelta(minutes=5)
        assert notifications.webhooks_retry_due(now=later) == 3
        assert notifications.webhooks_retry_due(now=later + dt.timedelta(hours=2)) == 0  # nothing sent twice
        notifications.webhook_attempt(delivery_id=deliveries[0].pk)  # a late duplicate task: skipped

        ids = [r.headers["EVP-Event-Id"] for r in receiver.received]
        assert sorted(ids) == sorted(str(e.id) for e in events if e is not None)
        assert len(ids) == 3
        for hook in receiver.received:
            assert notifications.verify(subscription.secret, hook.headers["EVP-Signature"], hook.body)
            assert hook.headers["EVP-Delivery-Attempt"] == "3"
            assert hook.document["type"] == "session.ended"
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
        log = list(
            DeliveryAttempt.objects.filter(delivery=deliveries[0]).values_list("number", "status_code", "succeeded")
        )
        assert log == [(1, None, False), (2, None, False), (3, 204, True)]
        assert "ConnectionError" in DeliveryAttempt.objects.filter(delivery=deliveries[0], number=1).get().error
    finally:
        receiver.stop()


def test_no_subscription_no_event(tenant_a: Tenant) -> None:
    assert notifications.notification_emit(tenant_id=tenant_a.pk, type="alert.opened", payload={}) is None
    assert not WebhookDelivery.objects.exists()


def test_subscription_filters_event_types(tenant_a: Tenant, receiver: Receiver) -> None:
    WebhookSubscription.objects.create(tenant=tenant_a, name="Alerts", url=receiver.url, event_types=["alert.opened"])

    assert notifications.notification_emit(tenant_id=tenant_a.pk, type="session.ended", payload={}) is None
    assert notifications.notification_emit(tenant_id=tenant_a.pk, type="alert.opened", payload={}) is not None


def test_gives_up_after_max_attempts(tenant_a: Tenant) -> None:
    delivery = WebhookDeliveryFactory(tenant=tenant_a, subscription__url=Receiver().url)
    for n in range(notifications.MAX_ATTEMPTS):
        assert notifications.webhook_attempt(delivery_id=delivery.pk) == (
            DeliveryStatus.FAILED if n == notifications.MAX_ATTEMPTS - 1 else DeliveryStatus.PENDING
        )
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, 12, None)


def test_replay_through_the_api_resends_the_same_event(
    tenant_a: Tenant, tenant_b: Tenant, receiver: Receiver, client_for: Callable[..., APIClient]
) -> None:
    delivery = WebhookDeliveryFactory(tenant=tenant_a, subscription__url=receiver.url)
    notifications.webhook_attempt(delivery_id=delivery.pk)
    client = client_for(tenant_a, Role.OPERATIONS)

    response = client.post(f"/api/v1/analytics/deliveries/{delivery.pk}/replay/", {}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert [(a["number"], a["replay"], a["status_code"]) for a in body["attempt_log"]] == [
        (1, False, 204),
        (2, True, 204),
    ]
    assert [r.headers["EVP-Event-Id"] for r in receiver.received] == [str(delivery.event_id)] * 2
    # another tenant's staff cannot replay it, and nothing is sent
    refused = client_for(tenant_b, Role.ADMIN).post(f"/api/v1/analytics/deliveries/{delivery.pk}/replay/", {})
    assert refused.status_code == 404
    assert len(receiver.received) == 2
