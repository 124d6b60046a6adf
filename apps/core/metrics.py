"""Platform metrics for Prometheus, defined once so every layer can record into them without importing upward.

They live in prometheus_client's default registry, which django-prometheus already exposes at `/metrics`.
Who records what (see the analytics report / README): label values are small closed sets (OCPP action names,
command statuses, queue names, job kinds), never ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

# --- chargers and OCPP (recorded by the ocpp consumer; connected chargers also by analytics from events)
CONNECTED_CHARGERS = Gauge(
    "evp_connected_chargers", "Charge points with an open OCPP WebSocket, as seen by this process or the database"
)
OCPP_MESSAGES = Counter(
    "evp_ocpp_messages_total", "OCPP frames handled", ["action", "direction", "kind"]
)  # direction in/out, kind call/result/error
OCPP_LATENCY = Histogram(
    "evp_ocpp_message_latency_seconds",
    "Time to answer a charger's CALL (in) or to get the charger's answer to ours (out)",
    ["action", "direction"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OCPP_BOOTS_DEFERRED = Counter(
    "evp_ocpp_boots_deferred_total", "BootNotifications answered Pending by admission control (OCPP_BOOT_CONCURRENCY)"
)
COMMAND_RESULTS = Counter("evp_command_results_total", "Final results of commands to chargers", ["action", "status"])

# --- background work
CELERY_QUEUE_DEPTH = Gauge("evp_celery_queue_depth", "Messages waiting in a Celery queue (Redis length)", ["queue"])
JOB_DURATION = Histogram(
    "evp_job_duration_seconds",
    "Duration of background jobs",
    ["job"],  # export, invoicing, analytics_rollup, webhook_delivery ...
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)

EVENT_DELIVERIES = Counter(
    "evp_event_deliveries_total", "Outbox deliveries of events to subscribers", ["outcome"]
)  # delivered / failed (retried later) / dead

# --- alerts and notifications (recorded by analytics)
ALERTS_OPENED = Counter("evp_alerts_opened_total", "Alerts opened", ["kind"])
WEBHOOK_ATTEMPTS = Counter("evp_webhook_attempts_total", "Webhook delivery attempts", ["outcome"])  # ok/failed

# --- the cache of hot reads (apps/core/cache.py); `cache` is the read's name (station_search, ocpp_charger, ...)
CACHE_HITS = Counter("evp_cache_hits_total", "Hot reads answered from the Redis cache", ["cache"])
CACHE_MISSES = Counter(
    "evp_cache_misses_total", "Hot reads computed (not cached yet, invalidated or expired)", ["cache"]
)


@contextmanager
def timed_job(job: str) -> Iterator[None]:
    """Record the block's wall time in JOB_DURATION under `job`, whether it succeeds or fails."""
    started = time.perf_counter()
    try:
        yield
    finally:
        JOB_DURATION.labels(job=job).observe(time.perf_counter() - started)
