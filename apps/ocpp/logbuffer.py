"""The frame log, written off the hot path: frames are appended to an in-memory buffer and inserted in
batches (every OCPP_MESSAGE_LOG_FLUSH_MS, or at 1,000 rows) by one task per event loop.

A frame is kept as a `Row` (a named tuple) and a batch goes in with one `COPY ... FROM STDIN`: a `MessageLog` model
instance per frame and the ORM's `bulk_create` cost 19-51 + 77-100 us of CPU per row (add + insert), a tuple and
COPY 3-5 + 10-14 us (2,000 exchanges of a MeterValues CALL and its answer, 5 rounds each way). That is two rows for
every frame a charger sends, on the interpreter the event loop shares with the DB threads.

`flush()` returns once every frame added before it was written (or failed and was kept for the next flush):
flushes run one at a time (those asked for while one writes share the next), so a flush never returns while an
earlier one still holds its rows. A closing socket flushes, so what a charger said is in the log when its close is
done."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connections, router

from apps.ocpp.dbcall import run_db
from apps.ocpp.models import MessageLog

logger = logging.getLogger(__name__)

MAX_BUFFER = 1000
MAX_BACKLOG = 100_000  # beyond this (database down) frames are dropped from the log, never from the socket


class Row(NamedTuple):
    """One frame of the log, in the order of `COLUMNS`."""

    tenant_id: int
    charge_point_id: int
    created_at: dt.datetime
    direction: str
    kind: int
    action: str
    unique_id: str
    payload: Any
    result: str
    latency_ms: float | None
    warning: str


COLUMNS = Row._fields


def _json(payload: Any) -> str | None:
    """The payload as the JSON text of its jsonb column (None: SQL NULL, as the model's JSONField writes it)."""
    if payload is None:
        return None
    try:
        return json.dumps(payload)
    except (TypeError, ValueError):  # never expected from a parsed frame; one row must not fail its batch
        return json.dumps({"unserializable": repr(payload)[:4000]})


def _insert(rows: list[Row]) -> None:
    """The rows in one COPY (its own transaction unless the caller has one)."""
    database = router.db_for_write(MessageLog)
    table = connections[database].ops.quote_name(MessageLog._meta.db_table)
    statement = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    with connections[database].cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row._replace(payload=_json(row.payload)))


class MessageLogBuffer:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._next: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(
        self,
        *,
        tenant_id: int,
        charge_point_id: int,
        direction: str,
        kind: int,
        action: str = "",
        unique_id: str = "",
        payload: Any = None,
        result: str = "",
        latency_ms: float | None = None,
        warning: str = "",
    ) -> None:
        if not settings.OCPP_MESSAGE_LOG:
            return
        if len(self.rows) >= MAX_BACKLOG:
            self.dropped += 1
            return
        self.rows.append(
            Row(
                tenant_id,
                charge_point_id,
                dt.datetime.now(dt.UTC),
                direction,
                kind,
                action[:40],
                str(unique_id)[:64],
                payload,
                result[:200],
                latency_ms,
                warning[:500],
            )
        )
        self._ensure_task()
        if len(self.rows) >= MAX_BUFFER:
            self._wake.set()

    def _ensure_task(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wake = asyncio.Event()
            self._lock = asyncio.Lock()
            self._next = None
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        interval = settings.OCPP_MESSAGE_LOG_FLUSH_MS / 1000
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a loop of its own (a test's): no other flush to wait for
            await self._write()
            return
        if self._next is None and self._lock.locked():
            self._next = loop.create_task(self._flush_next())
        if self._next is not None:
            await asyncio.shield(self._next)
            return
        async with self._lock:
            await self._write()

    async def _flush_next(self) -> None:
        """The flush shared by every caller that came while another one was writing: one write for all of them.
        Each taking the lock in turn cost one pass of the event loop per caller: at the graceful stop of a process
        holding 3,000 chargers, 3,000 closing sockets flushed one after another."""
        async with self._lock:
            self._next = None  # rows added from now on go in a later flush
            await self._write()

    async def _write(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        # The INSERT is shielded from the caller's cancellation: a consumer that daphne kills at its application
        # close timeout while it flushes (a busy machine, a restart) cancelled the executor job while it was still
        # queued, and the rows it had taken, other chargers' frames included, were never written (1,726 answered
        # frames missing from the log in a 200-charger soak, benchmarks/soak_bench.py).
        write = asyncio.ensure_future(run_db(_insert, rows=rows))
        write.add_done_callback(lambda done: self._written(done, rows))
        with contextlib.suppress(Exception):  # a failure is handled by `_written`
            await asyncio.shield(write)

    def _written(self, write: asyncio.Future[None], rows: list[Row]) -> None:
        if write.cancelled() or write.exception() is None:
            return
        logger.error(
            "could not write %d OCPP log rows; keeping them for the next flush",
            len(rows),
            exc_info=write.exception(),
        )
        self.rows[:0] = rows


buffer = MessageLogBuffer()
