"""The frame log's buffer: rows taken by a flush are written even when the flushing task is cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest

from apps.ocpp import dbcall
from apps.ocpp.logbuffer import MessageLogBuffer
from apps.ocpp.models import MessageLog
from tests.ocpp.conftest import Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_flush_cancelled_while_its_insert_waits_for_a_db_thread_still_writes_its_rows(station: Station) -> None:
    """daphne kills a consumer that outlives its application close timeout; when that happened during the
    consumer's flush, the INSERT still queued for a DB thread was cancelled with it, and the frames it had taken
    from the buffer (of every charger of the process) were lost."""
    buffer = MessageLogBuffer()
    for n in range(3):
        buffer.add(
            tenant_id=station.tenant.pk,
            charge_point_id=station.charge_point.pk,
            direction=MessageLog.Direction.IN,
            kind=MessageLog.Kind.CALL,
            action="Heartbeat",
            unique_id=f"cancelled-flush-{n}",
        )
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
