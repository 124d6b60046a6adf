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


def test_the_pace_line_says_what_the_process_did_since_the_last_one(caplog: pytest.LogCaptureFixture) -> None:
    """`OCPP_PACE_LOG_SECONDS`: one line per period with the handshakes and frames of that period (not the totals)."""
    from apps.ocpp import consumers

    async def run() -> None:
        pace = stalls.PaceLog(asyncio.get_running_loop(), 3600)  # ticked by hand below
        pace.tick()  # the baseline: what earlier tests counted is not this period's
        consumers.tally["frames"] += 7
        pace.tick()
        consumers.tally["frames"] += 2
        consumers.tally["handshakes"] += 1
        pace.tick()

    with caplog.at_level(logging.WARNING, logger="apps.ocpp.stalls"):
        asyncio.run(run())

    lines = [r.getMessage() for r in caplog.records if r.name == "apps.ocpp.stalls"]
    assert len(lines) == 2

    def counts(line: str) -> dict[str, int]:
        words = line.removeprefix("pace: ").split(" | ")[0].split()
        return {key: int(value) for key, value in zip(words[::2], words[1::2], strict=True)}

    assert (counts(lines[0])["frames"], counts(lines[0]).get("handshakes", 0)) == (7, 0)
    assert (counts(lines[1])["frames"], counts(lines[1])["handshakes"]) == (2, 1)
    assert "gate waiting 0, db queue 0" in lines[1]
