"""Celery tasks of analytics: thin interfaces that take ids, call a service, own their retry policy."""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import shared_task
from django.conf import settings

from apps.analytics import notifications, rules, services
from apps.analytics.models import DeliveryStatus, WebhookDelivery
from apps.core import metrics


@shared_task(name="analytics.notify_alert", ignore_result=True)
def notify_alert(alert_id: int, transition: str) -> None:
    notifications.alert_notify(alert_id=alert_id, transition=transition)


@shared_task(name="analytics.deliver_webhook", bind=True, ignore_result=True, max_retries=notifications.MAX_ATTEMPTS)
def deliver_webhook(self: Any, delivery_id: int) -> None:
    """One attempt; a failure is retried by Celery with exponential backoff (countdown). In eager mode
    (tests) there is no retry here: the beat sweep `analytics.retry_webhooks` picks due deliveries up."""
    started = time.perf_counter()
    status = notifications.webhook_attempt(delivery_id=delivery_id)
    metrics.JOB_DURATION.labels(job="webhook_delivery").observe(time.perf_counter() - started)
    if status == DeliveryStatus.PENDING and not self.request.is_eager:
        attempts = WebhookDelivery.objects.filter(pk=delivery_id).values_list("attempts", flat=True).first() or 1
        raise self.retry(countdown=notifications.backoff_seconds(attempts))


@shared_task(name="analytics.retry_webhooks", ignore_result=True)
def retry_webhooks() -> int:
    return notifications.webhooks_retry_due()


@shared_task(name="analytics.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> int:
    return rules.alerts_evaluate()


@shared_task(name="analytics.rollup", ignore_result=True)
def rollup() -> None:
    services.rollup_run()


@shared_task(name="analytics.sample_platform_metrics", ignore_result=True)
def sample_platform_metrics() -> None:
    """Gauges sampled from the stores: Celery queue depth (Redis list length) and connected chargers."""
    from apps.stations.models import ChargePoint

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for queue in getattr(settings, "CELERY_MONITORED_QUEUES", ["celery"]):
            metrics.CELERY_QUEUE_DEPTH.labels(queue=queue).set(client.llen(queue))
    finally:
        client.close()
    metrics.CONNECTED_CHARGERS.set(ChargePoint.objects.filter(online=True).count())
