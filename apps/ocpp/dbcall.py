"""Domain services called from the consumers' event loop, on a dedicated thread pool.

`database_sync_to_async` defaults to `thread_sensitive=True`: every call of every socket of the process
would queue on ONE thread. OCPP handlers are independent per charger, so they run on their own pool of
threads, each keeping its DB connection for DB_CONN_MAX_AGE. Unlike `database_sync_to_async` we do not run
`close_old_connections` before every call: with CONN_HEALTH_CHECKS that costs a `SELECT 1` round trip per
OCPP message. A connection is closed after a call when it errored and is unusable, or is older than
CONN_MAX_AGE (so DB_CONN_MAX_AGE=0 still means a fresh connection per call, as tests need).

Domain events published here are written to the transactional outbox in the handler's transaction and
delivered by Celery (`apps/core/outbox.py`): the subscribers never run before the charger gets its answer.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connection

T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=int(os.environ.get("OCPP_DB_THREADS", "8")), thread_name_prefix="ocpp-db")


def _call(func: Callable[..., T], kwargs: dict[str, Any]) -> T:
    try:
        return func(**kwargs)
    except Exception:
        connection.close_if_unusable_or_obsolete()
        raise
    finally:
        close_at = connection.close_at
        if connection.connection is not None and close_at is not None and time.monotonic() >= close_at:
            connection.close()


async def run_db(func: Callable[..., T], /, **kwargs: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_executor, _call, func, kwargs)


def drain(timeout: float = 10.0) -> None:
    """Block until every DB thread has finished what it was given (graceful shutdown, test teardown).

    Each worker thread is handed one barrier task; the barrier opens only when all of them (and we) wait on
    it, that is when no thread is still busy with earlier work."""
    workers = _executor._max_workers
    barrier = threading.Barrier(workers + 1)
    for _ in range(workers):
        _executor.submit(barrier.wait, timeout)
    barrier.wait(timeout)
