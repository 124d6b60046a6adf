"""Connects and closes of this process's sockets written in batches.

A socket's connect (after its handshake) and its close are recorded on the charger (online, connection id, a
status event, a ChargePointConnectionChanged event). One by one, each was a transaction with an ORM insert and an
outbox kick on a DB thread: in a reconnect storm those competed with the handshakes for the interpreter, and the
graceful stop of a process holding 3,194 chargers took 21 s to record their closes (benchmarks/ocpp_bench.py
--storm, README). Here the changes of one event loop queue up while a batch is written and go as the next batch,
in their order, in one transaction (`stations.services.charge_points_connections_record`): a lone change is
written at once, a burst in a few transactions. The caller awaits its own change's outcome; a change is written
even when its caller was cancelled meanwhile (daphne's close timeout), as the frame log's rows are.

A close also releases the charger's presence in Redis (`dispatch.presence_release_many`): one pipeline per batch.
One round trip each, the graceful stop of 10,000 sockets queued them on the 64 connections of the Redis pool.
A handshake takes the presence in a batch too (`takes`, `dispatch.presence_take_many`): its own round trip through
the client (pool, retry, parse) was 7.2 % of the event loop's samples while a network blip's 10,000 chargers
came back (py-spy; benchmarks/ocpp_bench.py --blip).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from apps.ocpp.dbcall import run_db
from apps.stations import dispatch
from apps.stations import services as station_services

logger = logging.getLogger(__name__)

BATCH = 500  # items in one batch at most

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


class Batches(Generic[Item, Outcome]):
    """Items of one event loop written by `write` in batches, in their order: those queued while a batch is written
    go as the next one. `write` returns one outcome per item."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Outcome]]], what: str) -> None:
        self.write = write
        self.what = what
        self.pending: list[tuple[Item, asyncio.Future[Outcome]]] = []
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, item: Item) -> asyncio.Future[Outcome]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a test's): what the old one queued went with it
            self.pending, self._task, self._loop = [], None, loop
        done: asyncio.Future[Outcome] = loop.create_future()
        self.pending.append((item, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return done

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            try:
                outcomes = await self.write([item for item, _ in batch])
            except Exception as error:
                logger.exception("%d %s not written", len(batch), self.what)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                        done.exception()  # retrieved here: a caller that is gone must not make it "never retrieved"
                continue
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)


Change = tuple[bool, int, str]  # (online, charge point id, connection id)


async def _record(changes: list[Change]) -> list[bool]:
    return await run_db(station_services.charge_points_connections_record, changes=changes)


class ConnectionChanges(Batches[Change, bool]):
    def __init__(self) -> None:
        super().__init__(_record, "connects/closes of chargers")

    def record(self, *, online: bool, charge_point_id: int, connection_id: str) -> asyncio.Future[bool]:
        """Queue one change; the future says whether it applied to the charger's current connection."""
        return self.submit((online, charge_point_id, connection_id))


async def _take(entries: list[tuple[str, str]]) -> list[str | None]:
    return await dispatch.presence_take_many(entries)


changes = ConnectionChanges()
# (identity, presence entry) of accepted handshakes; the future has the entry of the connection that held it before
takes: Batches[tuple[str, str], str | None] = Batches(_take, "presence takes")
# (identity, presence entry) of closed sockets; the future says whether the entry was still theirs
releases: Batches[tuple[str, str], bool] = Batches(dispatch.presence_release_many, "presence releases")
