"""Domain services called from the consumers' event loop, on a dedicated thread pool.

`database_sync_to_async` defaults to `thread_sensitive=True`: every call of every socket of the process
would queue on ONE thread. OCPP handlers are independent per charger, so they run on their own pool of
threads, each keeping its DB connection for DB_CONN_MAX_AGE. Unlike `database_sync_to_async` we do not run
`close_old_connections` before every call: with CONN_HEALTH_CHECKS that costs a `SELECT 1` round trip per
OCPP message. A connection is closed after a call when it errored and is unusable, or is older than
CONN_MAX_AGE (so DB_CONN_MAX_AGE=0 still means a fresh connection per call, as tests need).

Domain events published here are written to the transactional outbox in the handler's transaction and
delivered by Celery (`apps/core/outbox.py`): the subscribers never run before the charger gets its answer.

A transient database error (a deadlock, a serialization failure, a lost or terminated connection) is retried
before a charger ever sees it: the whole call again (every service is one transaction; nothing of a failed attempt
was committed, its outbox rows included), at most OCPP_DB_RETRIES more times with a short growing pause, each
retry logged. Only what still fails becomes the charger's InternalError.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=int(os.environ.get("OCPP_DB_THREADS", "8")), thread_name_prefix="ocpp-db")
_lane = threading.local()  # `first`: what the calling thread submits now goes to the front lane


class _Lanes:
    """The pool's work queue (what ThreadPoolExecutor uses of its SimpleQueue: put, get, get_nowait, qsize) with a
    front lane its threads serve first: a charger's handshake (`run_handshake_db`). In one FIFO a handshake queued
    behind the frames of the chargers already back: in a reconnect storm of 10,000 chargers (3,000 charging) that
    queue held ~1,000 calls for seconds at a time and the handshakes let through fell from ~450-550 a second to
    24-130 while 2,800-3,900 chargers waited at the gate. Two threads of their own for the handshakes were tried
    first: their pace log showed the gate's 128 slots waiting on those two threads while it had a queue. The
    storm's last charger did not tell them apart (77.5 s in one run with them; 66.3 and 77.9 s with this lane;
    66.2 and 66.9 s before either), so what this rests on is the pace log (benchmarks/ocpp_bench.py --storm,
    2026-12-07)."""

    def __init__(self) -> None:
        self._front: collections.deque[Any] = collections.deque()
        self._back: collections.deque[Any] = collections.deque()
        self._ready = threading.Condition(threading.Lock())

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        with self._ready:
            (self._front if getattr(_lane, "first", False) else self._back).append(item)
            self._ready.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        with self._ready:
            while not (self._front or self._back):
                if not block:
                    raise queue.Empty
                self._ready.wait()
            return self._front.popleft() if self._front else self._back.popleft()

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def qsize(self) -> int:
        return len(self._front) + len(self._back)


_executor._work_queue = _Lanes()  # type: ignore[assignment]  # before the first submit starts a thread


RETRIES = int(os.environ.get("OCPP_DB_RETRIES", "3"))
RETRY_PAUSE = 0.05  # seconds before the first retry, doubled for each next one (plus up to as much at random)
# deadlock_detected, serialization_failure; admin_shutdown, crash_shutdown, cannot_connect_now (a restart)
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "57P01", "57P02", "57P03"})


def transient(error: BaseException) -> bool:
    """Whether a failed call may succeed if run again as a whole: a deadlock or serialization failure (the
    database rolled the transaction back), or a lost connection (class 08, a terminated backend, a connection
    closed under us)."""
    if not isinstance(error, DatabaseError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None) or ""
    if sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08"):
        return True
    if isinstance(error, InterfaceError):  # "the connection is closed"
        return True
    if isinstance(error, OperationalError) and not sqlstate:  # "server closed the connection unexpectedly"
        return connection.connection is None or bool(getattr(connection.connection, "closed", False))
    return False


def _call(func: Callable[..., T], kwargs: dict[str, Any]) -> T:
    attempt = 0
    try:
        while True:
            try:
                return func(**kwargs)
            except Exception as error:
                connection.close_if_unusable_or_obsolete()
                if attempt >= RETRIES or connection.in_atomic_block or not transient(error):
                    raise
                attempt += 1
                pause = RETRY_PAUSE * 2 ** (attempt - 1)
                logger.warning(
                    "%s: transient database error, retry %d of %d in %.0f ms: %s",
                    getattr(func, "__qualname__", func),
                    attempt,
                    RETRIES,
                    pause * 1000,
                    str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                )
                time.sleep(pause + random.uniform(0, pause))  # noqa: S311 - jitter, not a secret
    finally:
        close_at = connection.close_at
        if connection.connection is not None and close_at is not None and time.monotonic() >= close_at:
            connection.close()


async def run_db(func: Callable[..., T], /, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, _call, func, kwargs)


async def run_handshake_db(func: Callable[..., T], /, **kwargs: Any) -> T:
    """`run_db` for a handshake's check of its charger: served before the frames of other chargers (`_Lanes`)."""
    _lane.first = True
    try:  # run_in_executor submits at once, from this thread
        future = asyncio.get_running_loop().run_in_executor(_executor, _call, func, kwargs)
    finally:
        _lane.first = False
    return await future


def drain(timeout: float = 10.0) -> None:
    """Block until every DB thread has finished what it was given (graceful shutdown, test teardown).

    Each worker thread is handed one barrier task; the barrier opens only when all of them (and we) wait on
    it, that is when no thread is still busy with earlier work."""
    workers = _executor._max_workers
    barrier = threading.Barrier(workers + 1)
    for _ in range(workers):
        _executor.submit(barrier.wait, timeout)
    barrier.wait(timeout)
