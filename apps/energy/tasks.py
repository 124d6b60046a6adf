"""Celery tasks of the control loop: they take ids, are idempotent, and are the only place profiles are sent from.

A burst of triggers for one site (meter values of many sessions, a signal and a TOU edit) gives one
recompute: the first trigger takes a short Redis lock and enqueues the task with a small countdown; the
ones that follow within the lock find it taken and do nothing (the queued run will see their change). The
run releases the lock before it reads, so a change that commits after that enqueues the next run.
"""

from __future__ import annotations

import datetime as dt
import logging

import redis
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.energy import selectors, services

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 2
BEAT_SECONDS = 60.0
_LOCK_KEY = "energy:recompute:{site_id}"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def recompute_debounced(*, site_id: int, trigger: str) -> bool:
    """Enqueue one recompute of the site unless one was enqueued in the last DEBOUNCE_SECONDS."""
    try:
        first = bool(_redis().set(_LOCK_KEY.format(site_id=site_id), trigger, nx=True, ex=DEBOUNCE_SECONDS))
    except redis.RedisError:
        logger.warning("energy: Redis unavailable, recompute of site %s enqueued without debounce", site_id)
        first = True
    if first:
        site_recompute.apply_async(kwargs={"site_id": site_id, "trigger": trigger}, countdown=DEBOUNCE_SECONDS / 2)
    return first


def _first(site_id: int, boundary: dt.datetime) -> bool:
    """One task per site and boundary, however many recomputes saw it coming."""
    key = f"energy:boundary:{site_id}:{int(boundary.timestamp())}"
    try:
        return bool(_redis().set(key, 1, nx=True, ex=int(BEAT_SECONDS) * 2))
    except redis.RedisError:
        return True


@shared_task(name="energy.site_recompute")
def site_recompute(site_id: int, trigger: str = "task") -> int:
    """Recompute one site and send what changed; schedule one more run at the next limit boundary if it comes
    before the next beat. Returns the number of profiles sent."""
    # Open the debounce window again before reading: a change committed from now on enqueues its own run. (Held
    # until the end, a trigger arriving while this run already read the database would be dropped until beat.)
    try:
        _redis().delete(_LOCK_KEY.format(site_id=site_id))
    except redis.RedisError:
        logger.warning("energy: Redis unavailable, debounce lock of site %s not released", site_id)
    now = timezone.now()
    outcome = services.site_recompute(site_id=site_id, at=now, trigger=trigger)
    boundary = services.next_boundary(site_id=site_id, after=now)
    if boundary is not None and boundary - now < dt.timedelta(seconds=BEAT_SECONDS) and _first(site_id, boundary):
        site_recompute.apply_async(kwargs={"site_id": site_id, "trigger": "boundary"}, eta=boundary)
    return len(outcome.orders)


@shared_task(name="energy.recompute_all")
def recompute_all() -> int:
    """Beat (every 60 s): every site with chargers."""
    ids = selectors.site_root_ids()
    for site_id in ids:
        recompute_debounced(site_id=site_id, trigger="beat")
    return len(ids)
