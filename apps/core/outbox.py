"""The transactional outbox: how published events reach their subscribers, durably and in order.

Guarantees
    An event is stored in the publisher's transaction (`events.publish`), so it exists exactly when the change
    it describes committed. Every subscriber gets it at least once, after that commit, from a Celery worker:
    nothing is lost when a worker, daphne or the whole machine stops between the commit and the delivery, and
    a slow or failing subscriber never makes a charger wait (the publisher only INSERTs). One subscriber sees
    the events of one subject (`Event.subject`: a charge point, a session) in publishing order.

Table (`core_outboxdelivery`, one row per event AND subscriber)
    The stream that is ordered is (subject, subscriber), so one subscriber failing retries only its own rows
    and never blocks the other subscribers of the same event. The rows of one event are written by ONE
    statement (`INSERT ... VALUES`, a row per subscriber): one round trip on the publisher's path and no extra
    transaction (inside an atomic block it joins it; outside one it is its own single-statement transaction).
    Payload, type and subject are copied per subscriber: events are ~200 bytes and have 1-4 subscribers, which
    is cheaper than a second table and a join on every claim. Partial indexes cover only pending rows
    (`state = 0`), so they stay as small as the backlog however many delivered rows are kept: `(available_at,
    id)` for the claim scan, `(subject, subscriber, id)` for the head-of-stream check, `(id) WHERE attempts >
    0` for rows waiting for a retry, `(id) WHERE state = 2` for the dead letters; a BRIN index on `created_at`
    serves the clean-up. benchmarks/outbox_bench.py measures the INSERT next to a bare one (README, Events).

Claiming and ordering
    A worker claims, in one statement, up to `CLAIM_SIZE` due pending rows that are the head of their stream
    (no earlier pending row of the same subject and subscriber: `NOT EXISTS` on the stream index), oldest
    first, locked `FOR UPDATE SKIP LOCKED`; delivers them in that transaction; marks the delivered ones with
    one UPDATE, and commits. A stream's next row becomes a head only once that commit made the previous one
    delivered: while a worker holds a head, every other worker skips it and sees its followers as
    not-yet-heads. So a subject's next event waits until the previous one was delivered, while other subjects
    go to other workers in parallel (a backlog of many subjects is shared out in `CLAIM_SIZE` slices). The
    claim looks only at a window of the oldest `CLAIM_WINDOW` due rows (an index scan that stops there) and
    is planned with index scans only (`SET LOCAL`), because after a burst the statistics say the backlog is
    small and the planner's choice (scan and sort every pending row per claim) made a 10,000-row backlog 10x
    slower to drain. Rows not delivered within `BATCH_SECONDS` (slow subscribers) are let go at the commit,
    so row locks are short. A worker that dies mid-round loses its connection: PostgreSQL rolls the round back
    and its rows are pending (and claimable) again at once; no lease, no visibility timeout. Rows committed by
    transactions that overlapped are ordered by their ids (taken at INSERT time); the events of one subject
    normally come from one charger's sequential messages.

Failures, retries, dead letters
    A round first runs its subscribers without savepoints (they cost two round trips per delivery). When one
    raises, the round is rolled back whole and run again with a savepoint per delivery: the failing
    subscriber's writes vanish with its savepoint, the others' commit with their delivery (their effects
    outside the database, such as a live push, happen twice: delivery is at least once). The failed row gets
    `attempts + 1`, the traceback in `last_error` and `available_at` pushed back exponentially
    (`EVENTS_OUTBOX_RETRY_BASE_S` x 2^(attempts-1), at most `RETRY_MAX_S`); the worker schedules a wake-up for
    then. Decision: a failing subscriber HOLDS its own later events of that subject (order is the guarantee
    that matters: a late "Available" must not close an alert that a later "Faulted" opened), and only those:
    other subjects, and other subscribers of the same subject, go on. The held rows get the head's
    `available_at` (at the failure, and by each worker pass for rows that arrive later), so claim windows do
    not fill up with them. After `EVENTS_OUTBOX_MAX_ATTEMPTS` attempts the row is dead-lettered (`state = 2`):
    it stops holding its stream and waits in the admin (Core > Outbox deliveries, filter "dead"), where
    "Retry" puts it back (delivered late and out of order: the operator's call).

Clean-up
    Delivered rows are kept `EVENTS_OUTBOX_RETENTION_HOURS` (1 h: at ~300 rows/s that is ~1M rows) for
    inspection, dead ones `EVENTS_OUTBOX_DEAD_RETENTION_DAYS` (30); beat's `core.outbox_purge` deletes older
    ones in batches of `PURGE_BATCH`. The migration tunes autovacuum for this high-churn table.

Wake-up
    `publish` registers `kick` with `transaction.on_commit`. A kick sets a Redis flag (`SET NX`) and sends one
    `core.outbox_deliver` task only if the flag was not set yet; the task clears the flag before it claims,
    so an event committed before the clearing is seen by that task and one committed after it sends a new
    task: no wake-up is lost, and a busy platform sends a task per worker pass instead of one per event. A
    pass that finds a full claim sends one more task so that a second worker joins in on a backlog; a pass
    ends after `TASK_SECONDS` and sends its successor, so the queue stays fair to other tasks. Beat's sweep
    (`core.outbox_deliver`, every 5 s) catches anything missed: a kick lost with its process or
    Redis, a retry whose wake-up was lost. Tasks go to their own queue (`EVENTS_OUTBOX_QUEUE`, "events"),
    which the Procfile's worker consumes next to the default one.

Tests and local runs
    With `EVENTS_DELIVERY = "inline"` (the test settings) a kick delivers at once in the publishing thread,
    waiting for rows another thread holds instead of skipping them: after a commit returns, its events were
    delivered, as before the outbox. `deliver_pending()` drains by hand; `make run` delivers through the
    Procfile's Celery worker.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core import metrics

if TYPE_CHECKING:
    from apps.core.events import Event

logger = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD = 0, 1, 2
CLAIM_SIZE = 50  # stream heads claimed (and delivered) per transaction ...
BATCH_SECONDS = 0.5  # ... unless delivering them takes longer: the rest is let go
CLAIM_WINDOW = 500  # the oldest due rows a claim looks at for heads
TASK_SECONDS = 20.0  # one task's pass, then it hands over to a fresh task
RETRY_MAX_S = 900.0
KICK_TTL_S = 60  # a kick flag whose task got lost frees itself (the sweep delivers meanwhile)
PURGE_BATCH = 5000

_INSERT = "INSERT INTO core_outboxdelivery (event_type, subject, subscriber, tenant_id, payload) VALUES "
_INSERT_ROW = "(%s, %s, %s, %s, %s::jsonb)"

# The oldest due rows form a window (an ordered index scan of the pending rows that stops after `window`
# rows, never a sort of the whole backlog); its stream heads (no earlier pending row of the same subject and
# subscriber) are fetched by primary key and locked. The outer query repeats no condition on `state` or
# `available_at`, so no plan can walk the pending index for it; a row another worker delivered or failed
# between the window and the lock comes back with its new values and is left alone by `_claim`.
_CLAIM = """
SELECT o.id, o.event_type, o.subject, o.subscriber, o.payload, o.attempts, o.state, o.available_at
FROM (
    SELECT c.id FROM core_outboxdelivery c
    WHERE c.state = 0 AND c.available_at <= %(now)s
    ORDER BY c.available_at, c.id
    LIMIT %(window)s
) AS w
JOIN core_outboxdelivery o ON o.id = w.id
WHERE NOT EXISTS (
    SELECT 1 FROM core_outboxdelivery p
    WHERE p.state = 0 AND p.subject = o.subject AND p.subscriber = o.subscriber AND p.id < o.id)
ORDER BY o.available_at, o.id
LIMIT %(limit)s
FOR UPDATE OF o {skip}
"""

_INDEX_SCANS_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off"

_DELIVERED = """
UPDATE core_outboxdelivery SET state = 1, delivered_at = %(now)s, attempts = attempts + 1 WHERE id = ANY(%(ids)s)
"""

_FAILED = """
UPDATE core_outboxdelivery SET state = %(state)s, attempts = %(attempts)s, available_at = %(next)s,
    last_error = %(error)s
WHERE id = %(id)s
"""

# the later rows of a failing row's stream wait with it (see "Failures" above)
_HOLD_STREAM = """
UPDATE core_outboxdelivery SET available_at = %(next)s
WHERE state = 0 AND subject = %(subject)s AND subscriber = %(subscriber)s AND id > %(id)s AND available_at < %(next)s
"""
_HOLD_ALL = """
UPDATE core_outboxdelivery o SET available_at = h.available_at
FROM core_outboxdelivery h
WHERE h.state = 0 AND h.attempts > 0 AND h.available_at > %(now)s
  AND o.state = 0 AND o.subject = h.subject AND o.subscriber = h.subscriber AND o.id > h.id
  AND o.available_at < h.available_at
"""

_PURGE = """
DELETE FROM core_outboxdelivery WHERE id IN (
    SELECT id FROM core_outboxdelivery
    WHERE (state = 1 AND created_at < %(delivered)s AND delivered_at < %(delivered)s)
       OR (state = 2 AND created_at < %(dead)s)
    LIMIT %(limit)s)
"""

_RETRY_DEAD = """
UPDATE core_outboxdelivery SET state = 0, attempts = 0, available_at = %(now)s
WHERE state = 2 AND id = ANY(%(ids)s)
"""


# --------------------------------------------------------------------------- writing


def write(event: Event, subscribers: Sequence[str]) -> None:
    """One INSERT of one row per subscriber, in the caller's transaction; a kick after it commits."""
    write_many([(event, subscribers)])


def write_many(deliveries: Sequence[tuple[Event, Sequence[str]]]) -> None:
    """Events with their subscribers in one INSERT and one kick (a batch of chargers' connects writes hundreds;
    a kick each would be a Redis round trip each)."""
    from apps.core import events

    rows: list[tuple[Any, ...]] = []
    for event, subscribers in deliveries:
        common = (type(event).__name__, event.subject)
        tail = (event.tenant_id, json.dumps(events.to_payload(event)))
        rows += [(*common, subscriber, *tail) for subscriber in subscribers]
    if not rows:
        return
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):  # far below PostgreSQL's 65,535 parameters a statement
            chunk = rows[start : start + 1000]
            cursor.execute(_INSERT + ", ".join([_INSERT_ROW] * len(chunk)), [v for row in chunk for v in row])
    transaction.on_commit(kick, robust=True)


# --------------------------------------------------------------------------- waking a worker


_redis_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _redis_client
    if _redis_client is None:
        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis_client


def _kick_key() -> str:
    return str(settings.EVENTS_OUTBOX_KICK_KEY)


def enqueue(countdown: float | None = None) -> None:
    """Send one delivery task to the outbox queue."""
    from apps.core.tasks import outbox_deliver

    if countdown is None:
        outbox_deliver.apply_async(queue=settings.EVENTS_OUTBOX_QUEUE)
    else:
        outbox_deliver.apply_async(queue=settings.EVENTS_OUTBOX_QUEUE, countdown=countdown)


def kick() -> None:
    """After a commit that wrote events: make sure a worker looks at the outbox soon (see "Wake-up")."""
    if settings.EVENTS_DELIVERY == "inline":
        deliver_pending(wait=True)
        return
    try:
        if not _redis().set(_kick_key(), "1", nx=True, ex=KICK_TTL_S):
            return  # a task is already on its way and will see this commit
    except redis.RedisError:
        logger.warning("outbox kick: Redis unavailable; the beat sweep delivers the events", exc_info=True)
        return
    try:
        enqueue()
    except Exception:
        logger.warning("outbox kick: could not send the task; the beat sweep delivers the events", exc_info=True)
        with contextlib.suppress(redis.RedisError):
            _redis().delete(_kick_key())


# --------------------------------------------------------------------------- delivering


@dataclass
class Claimed:
    id: int
    event_type: str
    subject: str
    subscriber: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class Outcome:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0  # will be retried
    dead: int = 0
    next_retry_at: dt.datetime | None = None
    full: bool = False  # there was more to claim than one round takes (a backlog)

    def add(self, other: Outcome) -> None:
        self.claimed += other.claimed
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        if other.next_retry_at is not None and (self.next_retry_at is None or other.next_retry_at < self.next_retry_at):
            self.next_retry_at = other.next_retry_at


def retry_delay_s(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt."""
    base = float(settings.EVENTS_OUTBOX_RETRY_BASE_S)
    return float(min(base * 2 ** max(attempts - 1, 0), RETRY_MAX_S))


def _claim(*, limit: int, wait: bool, now: dt.datetime) -> list[Claimed]:
    with connection.cursor() as cursor:
        # the plan must not depend on statistics: a burst makes the pending rows far more than the last ANALYZE
        # saw, and a bitmap scan or sort of the whole backlog per claim (what the planner picks then) costs
        # O(backlog) instead of O(window). Index scans it is, for this transaction only.
        cursor.execute(_INDEX_SCANS_ONLY)
        cursor.execute(
            _CLAIM.format(skip="" if wait else "SKIP LOCKED"), {"now": now, "limit": limit, "window": CLAIM_WINDOW}
        )
        rows = cursor.fetchall()
    return [
        Claimed(
            id=row[0],
            event_type=row[1],
            subject=row[2],
            subscriber=row[3],
            payload=json.loads(row[4]) if isinstance(row[4], str | bytes) else row[4],
            attempts=row[5],
        )
        for row in rows
        if row[6] == PENDING and row[7] <= now  # not delivered or failed by another worker meanwhile
    ]


class _SubscriberFailed(Exception):
    """A subscriber raised in a round without savepoints: the round is rolled back and done again with them."""


def _call_subscriber(row: Claimed, *, savepoint: bool) -> str | None:
    """Deliver one row; None when it went through, else the error (its writes are rolled back). Without
    `savepoint`, a failure raises `_SubscriberFailed` instead (the caller rolls the whole round back)."""
    from apps.core import events

    try:
        event = events.from_payload(row.event_type, row.payload)
        subscriber = events._resolve(row.subscriber)
        if not savepoint:
            subscriber(event)
            return None
        with transaction.atomic():  # a savepoint: a failure takes back only this subscriber's writes
            subscriber(event)
    except Exception as exc:
        if not savepoint:
            raise _SubscriberFailed from exc
        logger.exception("event subscriber %s failed for %s %s (outbox row %s)", row.subscriber, row.event_type,
                         row.subject, row.id)  # fmt: skip
        return traceback.format_exc()[-4000:]
    return None


def _fail(row: Claimed, error: str, now: dt.datetime) -> tuple[bool, dt.datetime]:
    """Record a failed attempt; returns (dead, next attempt time)."""
    attempts = row.attempts + 1
    dead = attempts >= int(settings.EVENTS_OUTBOX_MAX_ATTEMPTS)
    next_at = now + dt.timedelta(seconds=retry_delay_s(attempts))
    with connection.cursor() as cursor:
        cursor.execute(
            _FAILED,
            {"state": DEAD if dead else PENDING, "attempts": attempts, "next": next_at, "error": error, "id": row.id},
        )
        if not dead:
            cursor.execute(
                _HOLD_STREAM, {"next": next_at, "subject": row.subject, "subscriber": row.subscriber, "id": row.id}
            )
    if dead:
        logger.error("outbox row %s (%s -> %s) dead after %s attempts", row.id, row.event_type, row.subscriber,
                     attempts)  # fmt: skip
    return dead, next_at


def _round(*, wait: bool, now: dt.datetime | None) -> Outcome:
    """One transaction: claim up to CLAIM_SIZE stream heads, deliver them, record the outcomes, commit.

    Optimistic: the subscribers run without a savepoint each (two round trips saved per delivery). When one
    raises, the whole round is rolled back and done again with a savepoint per delivery, which isolates the
    failure; the others' deliveries then run a second time (delivery is at least once anyway)."""
    moment = now or timezone.now()
    try:
        outcome = _deliver_round(wait=wait, moment=moment, savepoints=False)
    except _SubscriberFailed:
        outcome = _deliver_round(wait=wait, moment=moment, savepoints=True)
    metrics.EVENT_DELIVERIES.labels(outcome="delivered").inc(outcome.delivered)
    metrics.EVENT_DELIVERIES.labels(outcome="failed").inc(outcome.failed)
    metrics.EVENT_DELIVERIES.labels(outcome="dead").inc(outcome.dead)
    return outcome


def _deliver_round(*, wait: bool, moment: dt.datetime, savepoints: bool) -> Outcome:
    """Rows still undelivered after BATCH_SECONDS are left pending (and unlocked at the commit) for the next
    round."""
    outcome = Outcome()
    started = time.monotonic()
    with transaction.atomic():
        rows = _claim(limit=CLAIM_SIZE, wait=wait, now=moment)
        outcome.claimed = len(rows)
        outcome.full = len(rows) == CLAIM_SIZE
        delivered: list[int] = []
        for row in rows:
            if time.monotonic() - started >= BATCH_SECONDS:
                outcome.full = True  # slow subscribers: let go of the rest, they are claimable again at once
                break
            error = _call_subscriber(row, savepoint=savepoints)
            if error is None:
                delivered.append(row.id)
                continue
            dead, next_at = _fail(row, error, moment)
            if dead:
                outcome.dead += 1
            else:
                outcome.failed += 1
                if outcome.next_retry_at is None or next_at < outcome.next_retry_at:
                    outcome.next_retry_at = next_at
        if delivered:
            with connection.cursor() as cursor:
                cursor.execute(_DELIVERED, {"now": moment, "ids": delivered})
            outcome.delivered = len(delivered)
    return outcome


def deliver_pending(*, wait: bool = False, now: dt.datetime | None = None, seconds: float | None = None) -> Outcome:
    """Deliver what is due until nothing is left (or `seconds` passed). `wait`: wait for rows that another
    transaction holds instead of skipping them (inline delivery). `now`: pretend it is that time (tests)."""
    total = Outcome()
    started = time.monotonic()
    while True:
        outcome = _round(wait=wait, now=now)
        total.add(outcome)
        if outcome.claimed == 0 or (seconds is not None and time.monotonic() - started >= seconds):
            return total


def hold_behind_retries(*, now: dt.datetime | None = None) -> int:
    """Give every pending row behind a row waiting for its retry that row's time (rows published after the
    failure); returns how many were held."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_INDEX_SCANS_ONLY)  # an index probe of the retrying rows, never a scan of the table
        cursor.execute(_HOLD_ALL, {"now": now or timezone.now()})
        return int(cursor.rowcount)


def worker_pass() -> Outcome:
    """What the Celery task does: deliver until the outbox is empty or the pass's time is up."""
    try:
        _redis().delete(_kick_key())  # from now on a commit sends a new task (see "Wake-up")
    except redis.RedisError:
        logger.warning("outbox: Redis unavailable, kick flag not cleared", exc_info=True)
    hold_behind_retries()  # rows published behind a failing one since (an index probe when nothing failed)
    total = Outcome()
    started = time.monotonic()
    helped = False
    while True:
        outcome = _round(wait=False, now=None)
        total.add(outcome)
        if outcome.claimed == 0:
            break
        if outcome.full and not helped:
            enqueue()  # a backlog: one more task, so that another worker joins in
            helped = True
        if time.monotonic() - started >= TASK_SECONDS:
            enqueue()  # hand over to a fresh task, so other tasks of the queue get their turn
            break
    if total.next_retry_at is not None:
        enqueue(countdown=max((total.next_retry_at - timezone.now()).total_seconds(), 0.0))
    return total


# --------------------------------------------------------------------------- operations


def purge(*, now: dt.datetime | None = None) -> int:
    """Delete delivered rows past their retention and dead ones past theirs; returns how many."""
    now = now or timezone.now()
    params: dict[str, Any] = {
        "delivered": now - dt.timedelta(hours=int(settings.EVENTS_OUTBOX_RETENTION_HOURS)),
        "dead": now - dt.timedelta(days=int(settings.EVENTS_OUTBOX_DEAD_RETENTION_DAYS)),
        "limit": PURGE_BATCH,
    }
    total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_PURGE, params)
            deleted = int(cursor.rowcount)
        total += deleted
        if deleted < PURGE_BATCH:
            return total


def retry_dead(*, ids: Sequence[int]) -> int:
    """Put dead-lettered rows back (operator's decision: delivered late, out of order); returns how many."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RETRY_DEAD, {"now": timezone.now(), "ids": list(ids)})
        count = int(cursor.rowcount)
        if count:
            transaction.on_commit(kick, robust=True)
    return count
