from __future__ import annotations

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.analytics.models import (
    Alert,
    AlertKind,
    AlertRule,
    NotificationEvent,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.tenants.factories import TenantFactory


class AlertRuleFactory(DjangoModelFactory[AlertRule]):
    class Meta:
        model = AlertRule

    tenant = factory.SubFactory(TenantFactory)
    kind = factory.Sequence(lambda n: AlertKind.values[n % len(AlertKind.values)])  # one rule per kind and tenant
    threshold_minutes = 5
    notify_emails = factory.LazyFunction(lambda: ["ops@example.com"])


class AlertFactory(DjangoModelFactory[Alert]):
    class Meta:
        model = Alert

    tenant = factory.SubFactory(TenantFactory)
    kind = AlertKind.CONNECTOR_FAULTED
    subject = factory.Sequence(lambda n: f"cp:{n}/1")
    message = "Connector 1 faulted: GroundFailure"
    opened_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)


class WebhookSubscriptionFactory(DjangoModelFactory[WebhookSubscription]):
    class Meta:
        model = WebhookSubscription

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Fleet hook {n}")
    url = "http://127.0.0.1:9/hook"


class NotificationEventFactory(DjangoModelFactory[NotificationEvent]):
    class Meta:
        model = NotificationEvent

    tenant = factory.SubFactory(TenantFactory)
    type = "alert.opened"
    payload = factory.LazyFunction(lambda: {"alert_id": 1})


class WebhookDeliveryFactory(DjangoModelFactory[WebhookDelivery]):
    class Meta:
        model = WebhookDelivery

    tenant = factory.SubFactory(TenantFactory)
    subscription = factory.SubFactory(WebhookSubscriptionFactory, tenant=factory.SelfAttribute("..tenant"))
    event = factory.SubFactory(NotificationEventFactory, tenant=factory.SelfAttribute("..tenant"))
