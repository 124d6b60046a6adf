"""Live push to the ops dashboard: one channel-layer group per tenant (`dashboard.t<tenant id>`).

`push` is called by event subscribers on the OCPP hot path, so it must not wait for Redis: messages go into a
queue drained in order by one background thread with its own event loop (one Redis connection pool for the
process instead of a new loop and connection per message). A dashboard is a live view: a message lost when the
process dies is repaired by the page's next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def group_name(tenant_id: int) -> str:
    return f"dashboard.t{tenant_id}"


class _Pusher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._queue = asyncio.Queue()
            self._loop = loop
            self._task = loop.create_task(self._drain())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="dashboard-push", daemon=True).start()
        ready.wait(5)
        assert self._loop is not None
        return self._loop

    async def _drain(self) -> None:
        assert self._queue is not None
        layer = get_channel_layer()
        while True:
            group, message = await self._queue.get()
            try:
                if layer is not None:
                    await layer.group_send(group, {"type": "dashboard.update", "data": message})
            except Exception:
                logger.exception("dashboard push to %s failed", group)
            finally:
                self._queue.task_done()

    def submit(self, group: str, message: dict[str, Any]) -> None:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # first use, or a forked worker
                self._pid = os.getpid()
                self._loop = None
                self._start()
        loop, queue = self._loop, self._queue
        assert loop is not None
        assert queue is not None
        loop.call_soon_threadsafe(queue.put_nowait, (group, message))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every submitted message was sent (tests, shutdown)."""
        if self._loop is None or self._queue is None:
            return
        asyncio.run_coroutine_threadsafe(self._queue.join(), self._loop).result(timeout)


pusher = _Pusher()


def push(tenant_id: int, message: dict[str, Any]) -> None:
    """Queue a message for every open dashboard of the tenant; returns at once."""
    try:
        pusher.submit(group_name(tenant_id), message)
    except Exception:
        logger.exception("dashboard push failed for tenant %s", tenant_id)
