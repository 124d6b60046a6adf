"""Heartbeats answered without a database round trip each.

A Heartbeat only moves `last_heartbeat_at`/`last_seen_at`. The first one of a connection is written at once
(the charger shows its heartbeat as soon as it sends one); later ones are collected per process and written
together, one statement every OCPP_HEARTBEAT_FLUSH_MS (1 s), by one task per event loop. Offline detection
(heartbeat interval x 2.5) and the presence refresh (every 20 s) are far coarser than that delay. A heartbeat
still pending when the process dies is lost; the next one (or the presence refresh) repairs it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from django.conf import settings

from apps.ocpp.dbcall import run_db
from apps.stations import services as station_services

logger = logging.getLogger(__name__)


class HeartbeatBatch:
    def __init__(self) -> None:
        self.pending: dict[int, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, charge_point_id: int, at: datetime) -> None:
        self.pending[charge_point_id] = at
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        interval = getattr(settings, "OCPP_HEARTBEAT_FLUSH_MS", 1000) / 1000
        while self.pending:
            await asyncio.sleep(interval)
            await self.flush()

    async def flush(self) -> None:
        beats, self.pending = self.pending, {}
        if not beats:
            return
        try:
            await run_db(station_services.charge_points_heartbeat, beats=beats)
        except Exception:
            logger.exception("heartbeat batch of %d chargers not written", len(beats))


batch = HeartbeatBatch()
