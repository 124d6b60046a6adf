"""The event-loop stall watchdog (`OCPP_STALL_LOG_MS`): a callback that holds the loop longer than the threshold is
logged with its length and the code it was running."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from apps.ocpp import stalls


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


def test_a_stall_is_logged_with_its_length_and_what_the_loop_ran(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        stalls.install(asyncio.get_running_loop(), 100)
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_soon(hold_the_loop, 0.3)
        await asyncio.sleep(0.1)
        hold_the_loop(0.05)  # under the threshold: not logged
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.WARNING, logger="apps.ocpp.stalls"):
        asyncio.run(run())

    logged = [r.getMessage() for r in caplog.records if r.name == "apps.ocpp.stalls"]
    assert len(logged) == 1
    assert logged[0].startswith("event loop stalled for ")
    assert 280 <= int(logged[0].split()[4]) < 1000
    assert "in hold_the_loop" in logged[0]


def test_off_by_default() -> None:
    async def run() -> int:
        loop = asyncio.get_running_loop()
        before = len(loop._scheduled)  # type: ignore[attr-defined]
        stalls.install(loop, 0)
        await asyncio.sleep(0)
        return len(loop._scheduled) - before  # type: ignore[attr-defined]

    assert asyncio.run(run()) == 0
