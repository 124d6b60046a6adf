"""The frame log's buffer: rows taken by a flush are written even when the flushing task is cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest

from apps.ocpp import dbcall, logbuffer
from apps.ocpp.logbuffer import MessageLogBuffer
from apps.ocpp.models import MessageLog
from tests.ocpp.conftest import Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def heartbeat_frame(buffer: MessageLogBuffer, station: Station, unique_id: str) -> None:
    """A charger's Heartbeat CALL added to the buffer."""
    buffer.add(
        tenant_id=station.tenant.pk,
        charge_point_id=station.charge_point.pk,
        direction=MessageLog.Direction.IN,
        kind=MessageLog.Kind.CALL,
        action="Heartbeat",
        unique_id=unique_id,
    )


async def test_a_flush_cancelled_while_its_insert_waits_for_a_db_thread_still_writes_its_rows(station: Station) -> None:
    """daphne kills a consumer that outlives its application close timeout; when that happened during the
    consumer's flush, the INSERT still queued for a DB thread was cancelled with it, and the frames it had taken
    from the buffer (of every charger of the process) were lost."""
    buffer = MessageLogBuffer()
    for n in range(3):
        heartbeat_frame(buffer, station, f"cancelled-flush-{n}")
    release = threading.Event()
    busy = [dbcall._executor.submit(release.wait, 10) for _ in range(dbcall._executor._max_workers)]
    try:
        flush = asyncio.create_task(buffer.flush())
        await asyncio.sleep(0.1)  # the flush took the rows and waits for a DB thread
        flush.cancel()
        await asyncio.gather(flush, return_exceptions=True)
        assert buffer.rows == []
    finally:
        release.set()
        for future in busy:
            future.result(10)

    async def written() -> bool:
        return await db(MessageLog.objects.filter(unique_id__startswith="cancelled-flush-").count)() == 3

    await wait_for(written, timeout=10)
    if buffer._task is not None:
        buffer._task.cancel()
        await asyncio.gather(buffer._task, return_exceptions=True)


async def test_flushes_asked_for_while_one_writes_share_the_next_and_each_returns_with_its_rows_written(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closing socket flushes; at the graceful stop of a process all of them close at once. Each taking the
    flush lock in turn cost one pass of the event loop per socket; now those that come while a flush writes share
    the next one."""
    buffer = MessageLogBuffer()
    writes: list[list[str]] = []
    insert = logbuffer._insert

    def counted_insert(rows: list[MessageLog]) -> None:
        writes.append([row.unique_id for row in rows])
        insert(rows)

    monkeypatch.setattr(logbuffer, "_insert", counted_insert)

    async def close(n: int) -> int:  # a socket's last frame, then its flush; its frame is in the log after it
        heartbeat_frame(buffer, station, f"shared-flush-{n}")
        await buffer.flush()
        return await db(MessageLog.objects.filter(unique_id=f"shared-flush-{n}").count)()

    class CountedLock(asyncio.Lock):
        taken = 0

        async def acquire(self) -> bool:
            CountedLock.taken += 1
            return await super().acquire()

    heartbeat_frame(buffer, station, "shared-flush-first")  # the buffer's task and lock of this event loop
    buffer._lock = CountedLock()

    found = await asyncio.gather(*(close(n) for n in range(200)))

    assert found == [1] * 200
    assert sum(len(rows) for rows in writes) == 201
    assert len(writes) <= 3  # the first caller's write, then one shared by everyone who came meanwhile
    assert CountedLock.taken <= 3  # one pass each, not 200 (the periodic flush may take it once)
    if buffer._task is not None:
        buffer._task.cancel()
        await asyncio.gather(buffer._task, return_exceptions=True)


async def test_rows_go_in_by_copy_with_their_payloads_as_sent(station: Station) -> None:
    """COPY's text format escapes tabs, newlines and backslashes; a payload must come back as the charger sent it,
    a missing one as SQL NULL, and a payload JSON cannot write must not fail the rows of its batch."""
    buffer = MessageLogBuffer()
    tricky = {"data": 'tab\there\nnew line \\ backslash "quoted" \u00e9\u20ac', "n": [1, 2.5, None, True]}
    common = {"tenant_id": station.tenant.pk, "charge_point_id": station.charge_point.pk, "direction": "in"}
    buffer.add(**common, kind=2, action="DataTransfer", unique_id="copy-1", payload=tricky, warning="w\tx")
    buffer.add(**common, kind=3, unique_id="copy-2", payload=None, result="Accepted", latency_ms=1.25)
    buffer.add(**common, kind=2, action="DataTransfer", unique_id="copy-3", payload={"when": object()})
    await buffer.flush()

    rows = await db(
        lambda: {
            row.unique_id: row
            for row in MessageLog.objects.filter(unique_id__startswith="copy-", charge_point=station.charge_point)
        }
    )()
    assert rows["copy-1"].payload == tricky
    assert rows["copy-1"].warning == "w\tx"
    assert rows["copy-1"].action == "DataTransfer"
    assert rows["copy-2"].payload is None
    assert (rows["copy-2"].result, rows["copy-2"].latency_ms, rows["copy-2"].kind) == ("Accepted", 1.25, 3)
    assert list(rows["copy-3"].payload) == ["unserializable"]
    if buffer._task is not None:
        buffer._task.cancel()
        await asyncio.gather(buffer._task, return_exceptions=True)
