"""Notifications: e-mail to people, signed webhooks to enterprise customers.

Webhook signature (like Stripe's): every request carries

    EVP-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    EVP-Event-Id: <uuid>           (the idempotency key: the same for every attempt and replay of an event)
    EVP-Event-Type: alert.opened | alert.resolved | alert.acknowledged | session.ended | ...
    EVP-Delivery-Attempt: <n>

A receiver recomputes the HMAC over "<t>.<body>" with its secret, compares in constant time, refuses a `t`
older than a few minutes (replay protection), and dedupes on the event id. Delivery is at least once:
non-2xx answers and network errors are retried with exponential backoff (30 s, 1 min, 2 min ... capped at
1 h, 12 attempts); every attempt is logged with status code, latency or error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
import zoneinfo
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.analytics import texts
from apps.analytics.models import (
    Alert,
    DeliveryAttempt,
    DeliveryStatus,
    NotificationEvent,
    WebhookDelivery,
    WebhookSubscription,
)
from apps.core import i18n, metrics

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
BASE_BACKOFF_S = 30
MAX_BACKOFF_S = 3600
TIMEOUT_S = 10.0

EVENT_TYPES = (
    "alert.opened",
    "alert.resolved",
    "alert.acknowledged",
    "session.started",
    "session.ended",
    "connector.status_changed",
    "charge_point.connection_changed",
    "command.finished",
)


def backoff_seconds(attempts: int) -> int:
    """Wait before attempt `attempts + 1`: 30 s, 60 s, 120 s, ... at most an hour."""
    return int(min(BASE_BACKOFF_S * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: int = 300, now: float | None = None) -> bool:
    """What a receiver does (used by our tests): check the signature and the timestamp's age."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - stamp) > tolerance_s:
        return False
    expected = sign(secret, stamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# --------------------------------------------------------------------------- events -> deliveries


def notification_emit(
    *, tenant_id: int, type: str, payload: dict[str, Any], key: uuid.UUID | None = None
) -> NotificationEvent | None:
    """Record an event and one delivery per interested active subscription; deliveries go out after commit.
    Without any interested subscription nothing is stored. `key` (the event's id, e.g. derived from a core
    event's id) makes it idempotent: an event already recorded under that key is not emitted again."""
    subscriptions = [
        s for s in WebhookSubscription.objects.filter(tenant_id=tenant_id, is_active=True) if s.wants(type)
    ]
    if not subscriptions:
        return None
    if key is not None and NotificationEvent.objects.filter(pk=key).exists():
        return None  # a second delivery of the same core event (the outbox delivers at least once)
    with transaction.atomic():
        event = NotificationEvent.objects.create(id=key or uuid.uuid4(), tenant_id=tenant_id, type=type,
                                                 payload=payload)  # fmt: skip
        deliveries = WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(tenant_id=tenant_id, subscription=s, event=event, next_attempt_at=timezone.now())
                for s in subscriptions
            ]
        )
        ids = [d.pk for d in deliveries]

        def enqueue() -> None:
            from apps.analytics import tasks

            for pk in ids:
                tasks.deliver_webhook.delay(pk)

        transaction.on_commit(enqueue)
        return event


def _body(event: NotificationEvent) -> bytes:
    document = {
        "id": str(event.id),
        "type": event.type,
        "created": event.created_at.isoformat(),
        "tenant": event.tenant_id,
        "data": event.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def webhook_attempt(*, delivery_id: int, replay: bool = False, now: dt.datetime | None = None) -> str | None:
    """One HTTP attempt of a delivery; returns its status afterwards (None when another worker holds it).

    The delivery row stays locked during the request, so two workers never send the same delivery at once;
    a delivery that already succeeded is not sent again unless replayed on purpose.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription", "event")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return None
        if not replay and delivery.status != DeliveryStatus.PENDING:
            return delivery.status
        subscription = delivery.subscription
        body = _body(delivery.event)
        number = delivery.attempt_log.count() + 1
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "evplatform-webhooks/1",
            "EVP-Signature": sign(subscription.secret, stamp, body),
            "EVP-Event-Id": str(delivery.event_id),
            "EVP-Event-Type": delivery.event.type,
            "EVP-Delivery-Attempt": str(number),
        }
        started = time.perf_counter()
        code: int | None = None
        error = ""
        try:
            response = requests.post(subscription.url, data=body, headers=headers, timeout=TIMEOUT_S)
            code = response.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        latency = int((time.perf_counter() - started) * 1000)
        ok = not error
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=number,
            status_code=code,
            latency_ms=latency,
            error=error,
            succeeded=ok,
            replay=replay,
        )
        metrics.WEBHOOK_ATTEMPTS.labels(outcome="ok" if ok else "failed").inc()
        moment = now or timezone.now()
        delivery.last_status_code = code
        delivery.last_error = error
        if not replay:
            delivery.attempts += 1
        if ok:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.delivered_at = moment
            delivery.next_attempt_at = None
        elif not replay:
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = moment + dt.timedelta(seconds=backoff_seconds(delivery.attempts))
        delivery.save(
            update_fields=["status", "attempts", "next_attempt_at", "last_status_code", "last_error", "delivered_at"]
        )
        return delivery.status


def webhook_delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again on purpose (same event id and body, fresh signature), whatever its status."""
    webhook_attempt(delivery_id=delivery.pk, replay=True)
    return WebhookDelivery.objects.get(pk=delivery.pk)


def webhooks_due(*, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Pending deliveries whose next attempt is due, oldest first (the safety net behind the Celery retries)."""
    moment = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=moment)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def webhooks_retry_due(*, now: dt.datetime | None = None) -> int:
    """Attempt every due delivery once (in order); returns how many were attempted."""
    due = webhooks_due(now=now)
    for pk in due:
        webhook_attempt(delivery_id=pk, now=now)
    return len(due)


# --------------------------------------------------------------------------- alerts -> people and webhooks


def alert_document(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.pk,
        "kind": alert.kind,
        "subject": alert.subject,
        "status": alert.status,
        "message": alert.message,
        "charge_point_id": alert.charge_point_id,
        "details": alert.details,
        "occurrences": alert.occurrences,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "ack_comment": alert.ack_comment,
    }


def _alert_email(alert: Alert, transition: str) -> tuple[str, str]:
    """Subject and body in the tenant's default language, times in its zone, named; the alert's message in that
    language too (`texts.alert_message`; the webhook document keeps the stored English)."""
    tenant = alert.tenant
    zone = zoneinfo.ZoneInfo(tenant.timezone)

    def local(at: dt.datetime) -> str:
        there = at.astimezone(zone)
        return f"{there:%Y-%m-%d %H:%M:%S} {there.tzname()}"

    with translation.override(i18n.pick(tenant.language)):
        state = gettext("OPENED") if transition == "opened" else gettext("RESOLVED")
        message = texts.alert_message(alert)
        subject = f"[{tenant.name}] {state}: {message}"
        if transition == "opened":
            head = gettext("Alert %(id)s (%(kind)s) on %(subject)s was opened.")
        else:
            head = gettext("Alert %(id)s (%(kind)s) on %(subject)s was resolved.")
        lines = [
            head % {"id": alert.pk, "kind": alert.get_kind_display(), "subject": alert.subject},
            "",
            message,
            gettext("Opened: %(at)s") % {"at": local(alert.opened_at)},
        ]
        if alert.resolved_at:
            lines.append(gettext("Resolved: %(at)s") % {"at": local(alert.resolved_at)})
        return subject, "\n".join(lines) + "\n"


def alert_notify(*, alert_id: int, transition: str) -> None:
    """E-mail the rule's recipients (opened / resolved) and emit `alert.<transition>` to webhooks."""
    alert = Alert.objects.select_related("rule", "tenant").filter(pk=alert_id).first()
    if alert is None:
        return
    recipients = list(alert.rule.notify_emails) if alert.rule else []
    if recipients and transition in ("opened", "resolved"):
        subject, body = _alert_email(alert, transition)
        sender = alert.tenant.sender_email or settings.DEFAULT_FROM_EMAIL
        send_mail(subject, body, sender, recipients)
    notification_emit(tenant_id=alert.tenant_id, type=f"alert.{transition}", payload=alert_document(alert))
