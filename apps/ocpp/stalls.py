"""A watchdog for the event loop of a daphne process: with `OCPP_STALL_LOG_MS` > 0, a stall of the loop longer than
that (one callback holding it: every other charger's frame waits) is logged with the stack the loop was running
when the stall was noticed, so the tail of the chargers' round trips can be traced to the code that made it.

The loop ticks a timestamp every `TICK` seconds; a thread checks it every `TICK` seconds and, when it is older than
the threshold, samples the main thread's stack (`sys._current_frames`) once per stall. The thread needs the
interpreter lock to look: a stall in C code holding it is seen when the lock is released, by its length. Off by
default; on, it costs one loop callback and one thread wake-up per `TICK`.

A garbage collection holds the interpreter (every thread waits) while it walks the objects; with the watchdog on,
each collection longer than the threshold is logged too (generation, milliseconds, objects collected). The time is
the wall time from its start to its end, finalizers included, which may let other threads run: with 10,000 chargers
connecting it logged generation-1 collections of 136-224 ms of 75-202 objects each, every 40-50 s."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
import traceback

logger = logging.getLogger(__name__)

TICK = 0.01  # seconds


class StallWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop, threshold_ms: float) -> None:
        self.loop = loop
        self.threshold = threshold_ms / 1000
        self.last = time.monotonic()
        self.main = threading.main_thread().ident
        self.stack: str | None = None
        self.started: float | None = None

    def tick(self) -> None:
        now = time.monotonic()
        if self.started is not None:
            logger.warning(
                "event loop stalled for %.0f ms; the loop was running:\n%s",
                (now - self.started) * 1000,
                self.stack or "(not sampled)",
            )
            self.started, self.stack = None, None
        self.last = now
        self.loop.call_later(TICK, self.tick)

    def watch(self) -> None:
        while not self.loop.is_closed():
            time.sleep(TICK)
            last = self.last
            if self.started is None and time.monotonic() - last > self.threshold:
                frame = sys._current_frames().get(self.main or 0)
                self.stack = "".join(traceback.format_stack(frame)[-25:]) if frame is not None else None
                self.started = last

    def start(self) -> None:
        self.loop.call_soon(self.tick)
        threading.Thread(target=self.watch, name="stall-watch", daemon=True).start()


class GcWatch:
    def __init__(self, threshold_ms: float) -> None:
        self.threshold = threshold_ms / 1000
        self.began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
            return
        took = time.perf_counter() - self.began
        if took > self.threshold:
            logger.warning(
                "garbage collection of generation %d took %.0f ms (%d collected)",
                info["generation"],
                took * 1000,
                info["collected"],
            )


def install(loop: asyncio.AbstractEventLoop, threshold_ms: float) -> None:
    if threshold_ms > 0:
        StallWatch(loop, threshold_ms).start()
        gc.callbacks.append(GcWatch(threshold_ms))
