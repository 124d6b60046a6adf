"""Domain services called from the consumers' event loop, on a dedicated thread pool.

`database_sync_to_async` defaults to `thread_sensitive=True`: every call of every socket of the process
would queue on ONE thread. OCPP handlers are independent per charger, so they run on their own pool of
threads (each with its own persistent DB connection when DB_CONN_MAX_AGE > 0).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from channels.db import database_sync_to_async

T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=int(os.environ.get("OCPP_DB_THREADS", "8")), thread_name_prefix="ocpp-db")


async def run_db(func: Callable[..., T], /, **kwargs: Any) -> T:
    call = database_sync_to_async(func, thread_sensitive=False, executor=_executor)  # type: ignore[call-arg]
    return await call(**kwargs)  # type: ignore[no-any-return]
