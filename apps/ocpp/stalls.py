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


class PaceLog:
    """With `OCPP_PACE_LOG_SECONDS` > 0, one line every that many seconds: what the process did in that time
    (handshakes arrived, refused busy, accepted; frames received; boots recorded and answered Pending), what waits
    (handshakes at the gate, calls queued for the DB threads), the process's CPU share and how late the line
    itself came (the event loop's lag). Where a reconnect storm's time goes, at one loop callback per line."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self.loop = loop
        self.every = every
        self.seen: dict[str, int] | None = None  # the counts at the last line (None: not taken yet)
        self.cpu = time.process_time()
        self.at = time.monotonic()

    def tick(self) -> None:
        from apps.ocpp import consumers, dbcall
        from apps.ocpp.central import boots

        now, cpu = time.monotonic(), time.process_time()
        counts = dict(consumers.tally, boots=boots.admitted, pending=boots.deferred)
        if self.seen is None:  # the first tick takes the baseline (the counters are the process's, since its start)
            self.seen, self.cpu, self.at = counts, cpu, now
            self.loop.call_later(self.every, self.tick)
            return
        delta = {key: value - self.seen.get(key, 0) for key, value in counts.items()}
        waiting = sum(gate.waiting for gate in consumers._gates.values())
        logger.warning(
            "pace: %s | gate waiting %d, db queue %d, sockets %d, cpu %.0f %%, lag %.0f ms",
            " ".join(f"{key} {value}" for key, value in sorted(delta.items())),
            waiting,
            dbcall._executor._work_queue.qsize(),
            len(consumers.registry.consumers),
            (cpu - self.cpu) / (now - self.at) * 100,
            (now - self.at - self.every) * 1000,
        )
        self.seen, self.cpu, self.at = counts, cpu, now
        self.loop.call_later(self.every, self.tick)

    def start(self) -> None:
        self.loop.call_soon(self.tick)


def install(loop: asyncio.AbstractEventLoop, threshold_ms: float, pace_seconds: float = 0) -> None:
    if threshold_ms > 0:
        StallWatch(loop, threshold_ms).start()
        gc.callbacks.append(GcWatch(threshold_ms))
    if pace_seconds > 0:
        PaceLog(loop, pace_seconds).start()
