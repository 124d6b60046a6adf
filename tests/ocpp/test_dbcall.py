"""The OCPP DB threads: a handshake's check of its charger is served before the frames already queued."""

from __future__ import annotations

import asyncio
import threading

from apps.ocpp import dbcall


async def test_a_handshake_is_served_before_the_frames_queued_ahead_of_it() -> None:
    """In a reconnect storm the frames of the chargers already back queued ~1,000 calls; a handshake behind them
    waited seconds, and the chargers still outside with it."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(10)

    # every thread busy: the pool starts its threads lazily and counts idle ones loosely, so submit until each of
    # them has started one (a hold left queued runs at once after the release)
    busy = []
    running = 0
    while running < dbcall._executor._max_workers:
        busy.append(dbcall._executor.submit(hold))
        if started.acquire(timeout=0.5):
            running += 1
    served: list[str] = []

    def serve(name: str) -> None:
        served.append(name)

    try:
        frames = [asyncio.ensure_future(dbcall.run_db(serve, name=f"frame-{n}")) for n in range(5)]
        handshake = asyncio.ensure_future(dbcall.run_handshake_db(serve, name="handshake"))
        await asyncio.sleep(0.05)  # all six wait: every thread is busy
        assert served == []
        assert dbcall._executor._work_queue.qsize() >= 6
    finally:
        release.set()
        for future in busy:
            future.result(10)
    await asyncio.gather(*frames, handshake)
    assert served[0] == "handshake"
    assert sorted(served[1:]) == [f"frame-{n}" for n in range(5)]
    # what the handshake submitted did not make the next calls jump the queue
    assert dbcall._lane.__dict__.get("first") is False
