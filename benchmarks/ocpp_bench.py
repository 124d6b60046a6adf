"""OCPP load benchmark: N chargers against the platform (daphne) and against a bare `ocpp` + `websockets`
server (the floor), in the same run, with the same client.

    python benchmarks/ocpp_bench.py --chargers 1000 --duration 30 --interval 5
    python benchmarks/ocpp_bench.py --chargers 20000 --processes 2 --interval 60 --duration 60 --ramp 240 --no-floor

Each simulated charger connects (HTTP Basic, subprotocol ocpp1.6), sends BootNotification, then alternates
Heartbeat and StatusNotification every `--interval` seconds (jittered) and times every round trip. A share of them
(`--charging`) charges a car: StatusNotification Preparing, StartTransaction with its own idTag (a token registered
for the bench's tenant; anything but Accepted is an error), StatusNotification Charging, then MeterValues (energy
register rising at the charger's power, power) every interval and a Heartbeat or StatusNotification Charging in
between; StopTransaction at the end of the run (after the measured window, timed apart; every socket closes once
the stops are answered). A charger answers the server's calls (TriggerMessage, GetConfiguration,
ChangeAvailability...). Prints connected chargers, messages/s (and by action), p50/p99 round-trip latency, errors
and the server's RSS, for both servers.

Without --url, the platform is started here: `daphne` on a free loopback port with the environment's
DATABASE_URL / REDIS_URL (run `eval $(python scripts/stack.py up | grep export)` first), and N charge points
BENCH-00001.. with tokens BENCHTAG-00001.. are registered (idempotent) for the first tenant. The message log stays
on (it is part of the platform's cost). Redis keys (channel layer, cache, Celery queues) get a prefix named after the
database unless the environment sets them, so runs on other databases sharing the Redis stay apart.

With --processes 2, two daphne processes run behind HAProxy (docker/haproxy.cfg; as many HAProxy processes on the
port as the descriptor limit needs) and the chargers connect through it; the 101's X-EVP-Backend header tells which
process took each. After the ramp a command (TriggerMessage Heartbeat) is sent to one charger of each process through
the platform's command service (apps/stations/services.send_command), as ops do; its outcome, its round trip and
whether the simulated charger got it are printed. With --clients K the chargers are simulated by K processes
(one asyncio loop each), whose figures are merged; each one's CPU time is printed.

--storm restarts daphne 15 s into the measured time (SIGTERM: the old process stops listening at once, closes its
sockets and records their closes) and starts the next process on the port as soon as the old one stops listening, as
a deploy does; the measured time must leave at least STORM_WINDOW seconds after the restart (--duration 90), so that
"all back within 60 s" can be seen. A charging charger that loses its connection comes back without a
BootNotification (it did not reboot), resends the message whose answer it did not get, says StatusNotification
Charging and carries on with its transaction; the others boot again, as before. With --handover daphne adopts a
listening socket the benchmark holds (daphne's --fd, as systemd's socket activation hands one to a service), so
the port never closes across the restart: chargers reconnecting while the next process starts wait in the kernel's
queue instead of being refused. With --warm (a handover too) the next process is started on that socket and serves
before the old one gets its SIGTERM, as a supervisor that hands the socket over does (or a network blip, where the
process stays up): the time is measured from the SIGTERM.

--blip is the network blip itself: 15 s into the measured time every charger's TCP connection is reset (RST, as a
NAT gateway or a router that reboots drops them) while the one daphne process stays up; that process then records
10,000 lost connections and takes 10,000 handshakes back at once. The time is measured from the reset.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import compileall
import contextlib
import dataclasses
import datetime as dt
import json
import math
import multiprocessing
import os
import queue
import random
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import websockets
from servers import (  # benchmarks/servers.py (the script's folder is on sys.path)
    HAPROXY_BACKENDS,
    free_port,
    haproxy_maxconn_limit,
    listening_socket,
    start_daphne,
    start_haproxy,
    stop,
    wait_closed,
    wait_port,
)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-charger-password-0001"
COMMAND = ("TriggerMessage", {"requestedMessage": "Heartbeat"})  # what ops send to one charger of each process
CHARGING_DEFAULT = 0.3  # share of chargers in a transaction: a public AC fleet's busy hours run at 20-40 % occupancy
STORM_AT = 15.0  # --storm: seconds into the measured time when daphne is restarted
STORM_WINDOW = 75.0  # --storm: seconds the measured time goes on after the restart (the goal: all back within 60 s)
SINGLE = "daphne"  # the backend name of a charger connected to a daphne without the balancer


@dataclass
class Stats:
    connected: int = 0
    connect_errors: int = 0
    refused: int = 0  # handshakes answered 503 + Retry-After (admission control), retried as a charger would
    pending: int = 0  # BootNotifications answered Pending, booted again after the interval
    restart_at: float | None = None  # --storm: when the server was restarted
    unlistened_at: float | None = None  # --storm: when the old process no longer accepted connections
    stopped_at: float | None = None  # --storm: when the old process had exited
    listening_at: float | None = None  # --storm: when the new process accepted connections (--handover: served)
    handover: bool = False  # --handover: the listening socket stayed open across the restart
    warm: bool = False  # --warm: the next process served on it before the SIGTERM
    blip: bool = False  # --blip: the fleet's connections were reset, the process stayed up
    back: dict[str, float] = field(default_factory=dict)  # --storm: when each charger was connected again
    rebooted: dict[str, float] = field(default_factory=dict)  # --storm: when a rebooting charger was Accepted again
    # --storm: when each charger saw its connection end (websockets raises once the closing handshake is done and
    # the TCP connection closed)
    noticed: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    messages: int = 0
    latencies: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # by backend (X-EVP-Backend), action
    by_action: dict[str, int] = field(default_factory=dict)  # measured messages by action
    backend_of: dict[str, str] = field(default_factory=dict)  # charger -> the process that took its last connection
    started: int = 0  # transactions Accepted
    refused_tx: int = 0  # StartTransactions answered anything but Accepted (also counted as errors)
    stopped: int = 0  # StopTransactions answered at the end of the run
    stop_latencies: list[float] = field(default_factory=list)  # theirs (not in the steady state's figures)
    resent: int = 0  # messages resent after a reconnect because their answer never came
    received: list[tuple[str, str, str]] = field(default_factory=list)  # calls from the server: charger, action, id
    cpu: dict[str, float] = field(default_factory=dict)  # client process CPU seconds: total, steady (per process)
    error_samples: list[str] = field(default_factory=list)
    in_flight: int = 0  # measured calls sent and not answered yet (the end of the run waits for them)
    stops_done: int = 0  # StopTransactions of the end answered or given up (the sockets close after them)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)

    def measured(self, action: str, backend: str, elapsed: float) -> None:
        self.messages += 1
        self.by_action[action] = self.by_action.get(action, 0) + 1
        self.latencies.setdefault(backend, {}).setdefault(action, []).append(elapsed)

    def merge(self, other: Stats) -> None:
        """Add another client process's figures (--clients)."""
        for name in ("connected", "connect_errors", "refused", "pending", "messages", "started", "refused_tx"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped += other.stopped
        self.resent += other.resent
        self.errors += other.errors
        for backend, actions in other.latencies.items():
            for action, values in actions.items():
                self.latencies.setdefault(backend, {}).setdefault(action, []).extend(values)
        for action, count in other.by_action.items():
            self.by_action[action] = self.by_action.get(action, 0) + count
        self.backend_of.update(other.backend_of)
        self.back.update(other.back)
        self.rebooted.update(other.rebooted)
        self.noticed.update(other.noticed)
        self.stop_latencies.extend(other.stop_latencies)
        self.received.extend(other.received)
        self.error_samples.extend(other.error_samples[: max(0, 5 - len(self.error_samples))])
        for key, value in other.cpu.items():
            self.cpu[f"{key}#{len(self.cpu) // 2 + 1}"] = value

    def all_latencies(self, backend: str | None = None, action: str | None = None) -> list[float]:
        return [
            value
            for name, actions in self.latencies.items()
            if backend in (None, name)
            for kind, values in actions.items()
            if action in (None, kind)
            for value in values
        ]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def percentiles(values: list[float]) -> tuple[float, float]:
    lat = sorted(values)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    return p50, p99


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- the floor server


def floor_server(port: int) -> None:
    """A bare ocpp + websockets central system: validates inline and answers at once, no database."""
    import ocpp.messages
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result

    ocpp.messages.ASYNC_VALIDATION = False
    import logging

    logging.getLogger("ocpp").setLevel(logging.WARNING)
    transactions = iter(range(1, 2**31))

    def now() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    class Floor(ChargePoint):  # type: ignore[misc]
        @on("BootNotification")
        def boot(self, **_: object) -> call_result.BootNotification:
            return call_result.BootNotification(current_time=now(), interval=300, status="Accepted")

        @on("Heartbeat")
        def heartbeat(self, **_: object) -> call_result.Heartbeat:
            return call_result.Heartbeat(current_time=now())

        @on("StatusNotification")
        def status(self, **_: object) -> call_result.StatusNotification:
            return call_result.StatusNotification()

        @on("StartTransaction")
        def start_transaction(self, **_: object) -> call_result.StartTransaction:
            return call_result.StartTransaction(transaction_id=next(transactions), id_tag_info={"status": "Accepted"})

        @on("MeterValues")
        def meter_values(self, **_: object) -> call_result.MeterValues:
            return call_result.MeterValues()

        @on("StopTransaction")
        def stop_transaction(self, **_: object) -> call_result.StopTransaction:
            return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    async def handler(ws: websockets.ServerConnection) -> None:
        charger = Floor(ws.request.path.rsplit("/", 1)[-1] if ws.request else "?", ws)
        with contextlib.suppress(websockets.ConnectionClosed):
            await charger.start()

    async def main() -> None:
        async with websockets.serve(handler, "127.0.0.1", port, subprotocols=["ocpp1.6"], max_queue=64):  # type: ignore[list-item]
            await asyncio.Future()

    asyncio.run(main())


# --------------------------------------------------------------------------- the load


def secret_of(identity: str) -> str:
    return f"{PASSWORD}-{identity}"


def id_tag_of(identity: str) -> str:
    """The charger's driver's token (OCPP idTag, 20 characters at most): BENCH-00001 -> BENCHTAG-00001."""
    return identity.replace("BENCH-", "BENCHTAG-")


def wire_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def open_socket(url: str, identity: str, stats: Stats, stop_at: float) -> websockets.ClientConnection | None:
    """Connect as a well-mannered charger: a 503 (admission control) is retried after the Retry-After the server
    gave, plus up to a fifth more (so that chargers told the same second do not all come back in it), and a refused
    connection after 1-5 s, until `stop_at`. The Retry-After was jittered by 0.5-1.5 before: half the chargers came
    back before the time they were given (RFC 9110: how long the client "ought to wait")."""
    token = base64.b64encode(f"{identity}:{secret_of(identity)}".encode()).decode()
    while True:
        try:
            return await websockets.connect(
                f"{url}/ocpp/{identity}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Basic {token}"},
                open_timeout=60,
                ping_interval=None,
                # no proxy lookup: websockets reads the proxy variables of the whole environment at every connect,
                # 13 % of the client's samples in a reconnect storm of 10,000 chargers (py-spy) on the cores the
                # platform shares with it
                proxy=None,
            )
        except websockets.InvalidStatus as error:
            if error.response.status_code != 503 or time.monotonic() >= stop_at:
                stats.connect_errors += 1
                stats.error(f"connect: {error!r}"[:300])
                return None
            stats.refused += 1
            retry_after = float(error.response.headers.get("Retry-After", "10"))
            await asyncio.sleep(retry_after * random.uniform(1.0, 1.2))
        except (OSError, websockets.InvalidMessage) as error:
            # the server is restarting (refused, or reset in the backlog of a listener that closed under the
            # handshake: "did not receive a valid HTTP response"): come back shortly, as chargers do
            if time.monotonic() >= stop_at:
                stats.connect_errors += 1
                stats.error(f"connect: {error!r}"[:300])
                return None
            await asyncio.sleep(random.uniform(1, 5))
        except Exception as error:  # noqa: BLE001 - counted, the run goes on
            stats.connect_errors += 1
            stats.error(f"connect: {error!r}"[:300])
            return None


live: dict[str, websockets.ClientConnection] = {}  # each connected charger's socket (--blip resets them)


def reset(ws: websockets.ClientConnection) -> None:
    """The connection dropped by the network: closed with a TCP RST (SO_LINGER 0), no closing handshake."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


settled = asyncio.Event()  # set by `drive` when the measured time is over and its calls are answered
closing = asyncio.Event()  # set by `drive` when the end's StopTransactions are answered: the sockets close


class ServerClosed(Exception):
    """The server closed the socket while the charger was waiting between messages."""


@dataclass
class Transaction:
    """A charging charger's transaction: what it tells the platform, kept across reconnections."""

    id_tag: str
    power_w: int
    meter_start: int
    timestamp: str
    meter_wh: float
    read_at: float  # monotonic time of `meter_wh`
    transaction_id: int | None = None

    def read(self) -> int:
        now = time.monotonic()
        self.meter_wh += self.power_w * random.uniform(0.95, 1.0) * (now - self.read_at) / 3600
        self.read_at = now
        return int(self.meter_wh)


@dataclass
class Charger:
    """What a simulated charger keeps across its connections."""

    identity: str
    charging: bool
    counter: int = 0
    booted: bool = False
    transaction: Transaction | None = None
    unanswered: tuple[str, dict[str, Any]] | None = None  # a call whose answer the lost connection took along
    tried: bool = False  # it started (or tried to start) its transaction


class Link:
    """One WebSocket connection of a charger: its own calls (one outstanding, OCPP-J), timed; the server's calls
    answered whenever they come (while the charger waits between messages or for the answer to its own call)."""

    def __init__(
        self, ws: websockets.ClientConnection, charger: Charger, stats: Stats, window: tuple[float, float]
    ) -> None:
        self.ws = ws
        self.charger = charger
        self.stats = stats
        self.window = window  # measured from, until (monotonic)
        response = ws.response
        self.backend = (response.headers.get("X-EVP-Backend") if response is not None else None) or SINGLE
        self.triggered: list[str] = []  # messages the server asked for (TriggerMessage), sent at the next pause

    async def rpc(self, action: str, payload: dict[str, Any], *, measured: bool = True) -> Any:
        charger = self.charger
        charger.counter += 1
        unique_id = f"{charger.identity}-{charger.counter}"
        charger.unanswered = (action, payload)
        started = time.perf_counter()
        self.stats.in_flight += measured
        try:
            await self.ws.send(json.dumps([2, unique_id, action, payload]))
            deadline = time.monotonic() + 30
            while True:
                frame = await self.receive(deadline - time.monotonic())
                if frame is None:
                    raise TimeoutError(f"{action}: no answer within 30 s")
                if frame[0] == 2:
                    await self.answer(frame)
                    continue
                break
        finally:
            self.stats.in_flight -= measured
        elapsed = (time.perf_counter() - started) * 1000
        charger.unanswered = None
        now = time.monotonic()
        if frame[0] != 3 or frame[1] != unique_id:
            self.stats.error(f"{action}: {frame!r}"[:200])
        elif measured and self.window[0] <= now:
            self.stats.measured(action, self.backend, elapsed)
        elif not measured:
            self.stats.stop_latencies.append(elapsed)
        return frame[2] if frame[0] == 3 else None

    async def receive(self, timeout: float) -> list[Any] | None:
        """The next frame, or None after `timeout` seconds (cancelling recv() loses nothing in websockets)."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.0, timeout))
        except TimeoutError:
            return None
        frame = json.loads(raw)
        return frame if isinstance(frame, list) and frame else [None]

    async def answer(self, frame: list[Any]) -> None:
        """A CALL of the server: answered as a charger with a working firmware does."""
        _, unique_id, action, payload = [*frame, None, None, None][:4]
        self.stats.received.append((self.charger.identity, str(action), str(unique_id)))
        result: dict[str, Any]
        if action == "TriggerMessage":
            result = {"status": "Accepted"}
            self.triggered.append(str((payload or {}).get("requestedMessage")))
        elif action == "GetConfiguration":
            keys = (payload or {}).get("key") or []
            result = {"configurationKey": [], "unknownKey": keys} if keys else {"configurationKey": []}
        elif action in ("ChangeAvailability", "ChangeConfiguration", "ClearCache", "Reset", "UnlockConnector"):
            result = {"status": "Accepted"} if action != "UnlockConnector" else {"status": "NotSupported"}
        else:
            await self.ws.send(json.dumps([4, unique_id, "NotImplemented", f"{action} is not simulated", {}]))
            return
        await self.ws.send(json.dumps([3, unique_id, result]))

    async def pause(self, seconds: float) -> None:
        """Wait `seconds` between messages, as a charger does, answering the server's calls meanwhile and noticing a
        close at once (a charger's WebSocket stack reads whether or not it is sending). Sleeping blind, the client
        noticed a restart only at its next message, up to 1.2 x the interval later, and the storm's "back within"
        measured that sleep."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                while self.triggered:
                    await self.send_triggered(self.triggered.pop(0))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                frame = await self.receive(remaining)
                if frame is None:
                    return
                if frame[0] == 2:
                    await self.answer(frame)
                else:
                    self.stats.error(f"unexpected frame: {frame!r}"[:200])
        except websockets.ConnectionClosed:
            raise ServerClosed from None

    async def send_triggered(self, message: str) -> None:
        transaction = self.charger.transaction
        if message == "MeterValues" and transaction is not None and transaction.transaction_id is not None:
            await self.rpc("MeterValues", meter_values(transaction))
        elif message == "StatusNotification":
            status = "Charging" if transaction is not None else "Available"
            await self.rpc("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status})
        else:
            await self.rpc("Heartbeat", {})


def meter_values(transaction: Transaction) -> dict[str, Any]:
    """A periodic sample as AC chargers send it: the energy register and the power (apps/sessions parses both)."""
    return {
        "connectorId": 1,
        "transactionId": transaction.transaction_id,
        "meterValue": [
            {
                "timestamp": wire_now(),
                "sampledValue": [
                    {
                        "value": str(transaction.read()),
                        "context": "Sample.Periodic",
                        "measurand": "Energy.Active.Import.Register",
                        "location": "Outlet",
                        "unit": "Wh",
                    },
                    {
                        "value": str(int(transaction.power_w * random.uniform(0.95, 1.0))),
                        "context": "Sample.Periodic",
                        "measurand": "Power.Active.Import",
                        "location": "Outlet",
                        "unit": "W",
                    },
                ],
            }
        ],
    }


async def transaction_start(link: Link, charger: Charger) -> None:
    """Preparing, StartTransaction (Accepted or it is an error, and the charger stops it), Charging."""
    await link.rpc("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
    meter = int(time.time())  # the charger's register: rises from run to run (1 Wh a second)
    transaction = Transaction(
        id_tag=id_tag_of(charger.identity),
        power_w=random.choice((7_400, 11_000, 11_000, 22_000)),
        meter_start=meter,
        timestamp=wire_now(),
        meter_wh=meter,
        read_at=time.monotonic(),
    )
    charger.transaction = transaction
    charger.tried = True
    await transaction_send_start(link, charger)


async def transaction_send_start(link: Link, charger: Charger) -> None:
    transaction = charger.transaction
    assert transaction is not None
    answer = await link.rpc(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": transaction.id_tag,
            "meterStart": transaction.meter_start,
            "timestamp": transaction.timestamp,
        },
    )
    status = (answer or {}).get("idTagInfo", {}).get("status") if isinstance(answer, dict) else None
    transaction.transaction_id = answer.get("transactionId") if isinstance(answer, dict) else None
    if status != "Accepted" or transaction.transaction_id is None:
        link.stats.refused_tx += 1
        link.stats.error(f"StartTransaction {charger.identity}: {answer!r}"[:200])
        if transaction.transaction_id is not None:  # the charger stops what it was not allowed to start
            await transaction_stop(link, charger, reason="DeAuthorized")
        charger.transaction = None
        return
    link.stats.started += 1
    await link.rpc("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})


async def transaction_stop(link: Link, charger: Charger, *, reason: str = "Local") -> None:
    transaction = charger.transaction
    assert transaction is not None
    assert transaction.transaction_id is not None
    await link.rpc(
        "StopTransaction",
        {
            "transactionId": transaction.transaction_id,
            "idTag": transaction.id_tag,
            "meterStop": transaction.read(),
            "timestamp": wire_now(),
            "reason": reason,
        },
        measured=False,
    )
    if reason == "Local":
        link.stats.stopped += 1
    charger.transaction = None


async def resend(link: Link, charger: Charger) -> None:
    """After a reconnect: the transaction's call whose answer the old connection took along goes again (a
    StartTransaction with its own timestamp and meterStart, which the platform recognises as the same; a MeterValues
    with its sample), then the connector's status. A transaction not started yet starts now."""
    unanswered, charger.unanswered = charger.unanswered, None
    if unanswered is not None and unanswered[0] in ("StartTransaction", "MeterValues"):
        link.stats.resent += 1
        if unanswered[0] == "MeterValues":
            await link.rpc(*unanswered)
    if charger.transaction is None:
        if not charger.tried:
            await transaction_start(link, charger)
    elif charger.transaction.transaction_id is None:  # its StartTransaction was not answered: the same again
        await transaction_send_start(link, charger)
    else:
        await link.rpc("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"})


async def charger(
    url: str,
    identity: str,
    stats: Stats,
    interval: float,
    stop_at: float,
    measure_from: list[float],
    charging: bool = False,
) -> None:
    """One charger: connects, boots (again after the interval while answered Pending), then a Heartbeat or a
    StatusNotification every `interval` (a charging one starts a transaction first, sends MeterValues every
    `interval` and a Heartbeat or StatusNotification Charging in between, and stops it after `stop_at`); after the
    server closes the socket (a restart) it reconnects and records when it was back (`stats.back`)."""
    state = Charger(identity, charging)
    stop_spread = min(interval / 2, 20.0)
    while time.monotonic() < stop_at:
        ws = await open_socket(url, identity, stats, stop_at)
        if ws is None:
            return
        if stats.restart_at is None:
            stats.connected += 1
        else:
            stats.back[identity] = time.monotonic()
        live[identity] = ws
        link = Link(ws, state, stats, (measure_from[0], stop_at))
        stats.backend_of[identity] = link.backend

        def wait(share: float = 1.0) -> float:
            """A share of the (jittered) interval, cut at the end of the run. Halving what was left instead (a
            charging charger's two messages per interval) made every charging charger send faster and faster as the
            end came near (20, 10, 5, 2.5 s ...): a burst of thousands of calls in the last seconds of the measured
            time, which was its p99 (3,000 chargers: 3.0 s against a p50 of 12 ms)."""
            return min(interval * random.uniform(0.8, 1.2) * share, max(0.0, stop_at - time.monotonic()))

        try:
            if not (state.charging and state.booted):  # a charger that only lost its connection does not reboot
                while True:
                    boot = await link.rpc("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "B1"})
                    if not isinstance(boot, dict) or boot.get("status") != "Pending":
                        break
                    stats.pending += 1
                    await link.pause(float(boot.get("interval", 30)))
                state.booted = True
                if stats.restart_at is not None:
                    stats.rebooted[identity] = time.monotonic()
                await link.pause(random.uniform(0, interval))
                if state.charging and time.monotonic() < stop_at:
                    await transaction_start(link, state)
            else:
                await resend(link, state)
            if state.transaction is not None:
                toggle = 0
                while time.monotonic() < stop_at:
                    await link.rpc("MeterValues", meter_values(state.transaction))
                    await link.pause(wait(0.5))
                    if time.monotonic() >= stop_at:
                        break
                    toggle ^= 1
                    if toggle:
                        await link.rpc("Heartbeat", {})
                    else:
                        payload = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
                        await link.rpc("StatusNotification", payload)
                    await link.pause(wait(0.5))
                # the run is over: the car leaves. Not all at one instant (a fleet's stops are spread): within
                # `stop_spread` seconds, timed apart from the steady state, once every measured call is answered
                await settled.wait()
                await link.pause(random.uniform(0, stop_spread))
                try:
                    await transaction_stop(link, state)
                finally:
                    stats.stops_done += 1
                await closing.wait()
                return
            status = ("Available", "Preparing", "Charging", "Finishing")
            while time.monotonic() < stop_at:
                await link.rpc("Heartbeat", {})
                await link.pause(wait())
                if time.monotonic() >= stop_at:
                    break
                payload = {"connectorId": 1, "errorCode": "NoError", "status": random.choice(status)}
                await link.rpc("StatusNotification", payload)
                await link.pause(wait())
            await settled.wait()  # the socket closes once every measured call and every stop is answered
            await closing.wait()
            return
        except (websockets.ConnectionClosed, ServerClosed):
            if stats.restart_at is not None and identity not in stats.noticed:
                stats.noticed[identity] = time.monotonic()
            continue  # the server went away: reconnect (the storm)
        except Exception as error:  # noqa: BLE001
            stats.error(f"{identity}: {error!r}"[:200])
            return
        finally:
            if live.get(identity) is ws:
                del live[identity]
            await ws.close()


async def drive(
    url: str,
    ids: list[str],
    interval: float,
    duration: float,
    ramp: float,
    restart: Callable[[Stats], None] | None = None,
    *,
    charging: frozenset[str] = frozenset(),
    start_at: float | None = None,
    at_steady: Callable[[Stats], None] | None = None,
    blip: bool = False,
) -> tuple[Stats, float]:
    """Connect everyone over `ramp` seconds, then measure `duration` seconds. With `restart` (--storm), the
    server is restarted in the middle of the measured time and the time until every charger is back is kept; with
    `blip` (--blip) every charger's connection is reset there instead.
    `start_at` (monotonic, shared by the client processes) aligns their windows; `at_steady` runs in a thread
    when the measured time begins (the commands of ops)."""
    global settled, closing
    settled = asyncio.Event()  # this run's (an Event is bound to the loop that first waits on it)
    closing = asyncio.Event()
    stats = Stats()
    if start_at is not None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    cpu_start = cpu_seconds()
    loop_start = time.monotonic()
    stop_at = loop_start + ramp + duration
    measure_from = [loop_start + ramp]  # latencies of the steady state only (not the connection storm)
    tasks = []
    for n, identity in enumerate(ids):
        tasks.append(
            asyncio.create_task(
                charger(url, identity, stats, interval, stop_at, measure_from, charging=identity in charging)
            )
        )
        if n % 50 == 49:
            await asyncio.sleep(max(0.0, loop_start + ramp * (n + 1) / len(ids) - time.monotonic()))
    await asyncio.sleep(max(0.0, measure_from[0] - time.monotonic()))
    cpu_steady = cpu_seconds()
    if at_steady is not None:
        await asyncio.to_thread(at_steady, stats)
    if restart is not None or blip:
        await asyncio.sleep(max(0.0, measure_from[0] + STORM_AT - time.monotonic()))
        stats.restart_at = time.monotonic()
        if blip:
            stats.blip = True
            for ws in list(live.values()):
                reset(ws)
        else:
            await asyncio.to_thread(restart, stats)
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
    cpu_end = cpu_seconds()
    # The stops and closes of the end wait until every measured call is answered (at most their 30 s timeout): the
    # wave of 900 StopTransactions (pricing, CDR) that began at once delayed the answers of the calls still in flight
    # and made the steady state's p99 (3,000 chargers: 4.2 s, against a p50 of 14 ms).
    while stats.in_flight > 0 and time.monotonic() < stop_at + 31:
        await asyncio.sleep(0.05)
    settled.set()
    # The sockets close once the stops are answered (or timed out): 7,000 idle chargers closing at the instant the
    # stops began put their 7,000 disconnects (an UPDATE and an event each) in front of the 3,000 StopTransactions,
    # which then waited 25 s (p50) and timed out: a measure of the disconnect storm, not of the stops.
    stop_end = time.monotonic() + min(interval / 2, 20.0) + 31
    while stats.stops_done < stats.started and time.monotonic() < stop_end:
        await asyncio.sleep(0.05)
    closing.set()
    await asyncio.gather(*tasks)
    stats.cpu = {"run": cpu_seconds() - cpu_start, "steady": cpu_end - cpu_steady}
    return stats, duration


def client_process(
    url: str,
    ids: list[str],
    interval: float,
    duration: float,
    ramp: float,
    charging: frozenset[str],
    start_at: float,
    out: Any,
) -> None:
    """One of --clients K processes: its share of the chargers; at the steady state it tells the parent one
    connected charger per backend (the commands' targets), at the end its figures."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def steady(stats: Stats) -> None:
        out.put(("steady", targets_of(stats)))

    stats, _ = asyncio.run(
        drive(url, ids, interval, duration, ramp, charging=charging, start_at=start_at, at_steady=steady)
    )
    out.put(("done", dataclasses.asdict(stats)))


def targets_of(stats: Stats) -> dict[str, str]:
    """One connected charger per backend (the first by identity)."""
    found: dict[str, str] = {}
    for identity, backend in sorted(stats.backend_of.items()):
        found.setdefault(backend, identity)
    return found


def run_fleet(
    url: str,
    ids: list[str],
    args: argparse.Namespace,
    charging: frozenset[str],
    *,
    restart: Callable[[Stats], None] | None = None,
    single: Callable[[Stats], None] | None = None,
    many: Callable[[dict[str, str]], None] | None = None,
    blip: bool = False,
) -> tuple[Stats, float]:
    """The fleet against `url`: in this process (`drive`, with `restart` and `single` at the steady state) or over
    `--clients` processes (`drive_clients`, `many` at the steady state; no restart there)."""
    if args.clients == 1:
        return asyncio.run(
            drive(
                url,
                ids,
                args.interval,
                args.duration,
                args.ramp,
                restart,
                charging=charging,
                at_steady=single,
                blip=blip,
            )
        )
    return drive_clients(
        url, ids, args.interval, args.duration, args.ramp, clients=args.clients, charging=charging, at_steady=many
    )


def drive_clients(
    url: str,
    ids: list[str],
    interval: float,
    duration: float,
    ramp: float,
    *,
    clients: int,
    charging: frozenset[str],
    at_steady: Callable[[dict[str, str]], None] | None,
) -> tuple[Stats, float]:
    """`drive` over `clients` processes (spawned: no Django, no inherited sockets), figures merged."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.monotonic() + 5  # the children import websockets meanwhile
    procs = [
        context.Process(
            target=client_process,
            args=(url, ids[n::clients], interval, duration, ramp, charging, start_at, out),
            daemon=True,
        )
        for n in range(clients)
    ]
    for proc in procs:
        proc.start()
    stats = Stats()
    targets: dict[str, str] = {}
    done = steady = 0
    while done < clients:
        try:
            kind, data = out.get(timeout=10)
        except queue.Empty:
            if any(proc.exitcode not in (None, 0) for proc in procs):
                raise SystemExit(f"a client process failed: {[proc.exitcode for proc in procs]}") from None
            continue
        if kind == "steady":
            for backend, identity in data.items():
                targets.setdefault(backend, identity)
            steady += 1
            if steady == clients and at_steady is not None:
                at_steady(targets)
        else:
            stats.merge(Stats(**data))
            done += 1
    for proc in procs:
        proc.join(30)
    return stats, duration


def report(name: str, stats: Stats, seconds: float, rss: float | None) -> dict[str, Any]:
    p50, p99 = percentiles(stats.all_latencies())
    row: dict[str, Any] = {
        "server": name,
        "connected": stats.connected,
        "msgs_per_s": round(stats.messages / seconds, 1),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "errors": stats.errors,
        "rss_mb": round(rss, 1) if rss is not None else None,
    }
    row["refused_retried"], row["boots_pending"] = stats.refused, stats.pending
    print(
        f"{name:<10} connected={stats.connected:<5} msgs/s={row['msgs_per_s']:<8} p50={row['p50_ms']} ms "
        f"p99={row['p99_ms']} ms errors={stats.errors} rss={row['rss_mb']} MB "
        f"refused(503)+retried={stats.refused} boots-pending={stats.pending}"
    )
    row["by_action"] = {}
    for action, count in sorted(stats.by_action.items()):
        a50, a99 = percentiles(stats.all_latencies(action=action))
        row["by_action"][action] = {"messages": count, "p50_ms": round(a50, 2), "p99_ms": round(a99, 2)}
    actions = row["by_action"].items()
    print(
        "           messages by action: "
        + ", ".join(f"{k}={v['messages']} (p50 {v['p50_ms']} p99 {v['p99_ms']} ms)" for k, v in actions)
    )
    if stats.started or stats.refused_tx:
        s50, s99 = percentiles(stats.stop_latencies)
        row["transactions"] = {"started": stats.started, "refused": stats.refused_tx, "stopped": stats.stopped}
        print(
            f"           transactions: {stats.started} started (Accepted), {stats.refused_tx} refused, "
            f"{stats.stopped} stopped after the measured time (StopTransaction p50={s50:.2f} ms p99={s99:.2f} ms), "
            f"{stats.resent} calls resent after a reconnect"
        )
    if stats.restart_at is not None:
        back = sorted(at - stats.restart_at for at in stats.back.values())
        row["storm_back"] = len(back)
        row["storm_all_back_s"] = round(back[-1], 1) if back else None
        row["storm_p50_back_s"] = round(back[len(back) // 2], 1) if back else None
        booted = sorted(at - stats.restart_at for at in stats.rebooted.values())
        row["storm_rebooted"] = len(booted)
        row["storm_all_rebooted_s"] = round(booted[-1], 1) if booted else None
        event = "the reset" if stats.blip else "the SIGTERM"
        print(
            f"           storm: {len(back)}/{stats.connected} back after {event}; half within "
            f"{row['storm_p50_back_s']} s, all within {row['storm_all_back_s']} s; of those that boot again (not "
            f"charging), {len(booted)} Accepted by the end, half within "
            f"{round(booted[len(booted) // 2], 1) if booted else None} s, all within {row['storm_all_rebooted_s']} s"
        )
        if stats.noticed:
            noticed = sorted(at - stats.restart_at for at in stats.noticed.values())
            row["storm_noticed_p50_s"] = round(noticed[len(noticed) // 2], 1)
            row["storm_noticed_all_s"] = round(noticed[-1], 1)
            print(
                f"           after {event} {len(noticed)} chargers saw their connection end, half within "
                f"{row['storm_noticed_p50_s']} s, all within {row['storm_noticed_all_s']} s"
            )
        per_10s: dict[int, int] = {}
        for at in back:
            per_10s[int(at // 10) * 10] = per_10s.get(int(at // 10) * 10, 0) + 1
        per_10s_text = f"back per 10 s after {event}: " + ", ".join(
            f"{k}-{k + 10} s: {v}" for k, v in sorted(per_10s.items())
        )
        if stats.blip:
            print(f"           the connections were reset (--blip), the process stayed up; {per_10s_text}")
        if stats.unlistened_at is not None and stats.stopped_at is not None and stats.listening_at is not None:
            row["storm_unlisten_s"] = round(stats.unlistened_at - stats.restart_at, 1)
            row["storm_stop_s"] = round(stats.stopped_at - stats.restart_at, 1)
            row["storm_listen_s"] = round(stats.listening_at - stats.restart_at, 1)
            phases = (
                f"the next process served on the listening socket before it (--warm); the old process exited in "
                f"{row['storm_stop_s']} s"
                if stats.warm
                else f"the listening socket stayed open (--handover); the old process exited in {row['storm_stop_s']} "
                f"s; the new one served /healthz {row['storm_listen_s']} s after the SIGTERM"
                if stats.handover
                else f"the old process stopped listening in {row['storm_unlisten_s']} s and exited in "
                f"{row['storm_stop_s']} s; the new one listened {row['storm_listen_s']} s after it"
            )
            print(f"           after the SIGTERM {phases}; {per_10s_text}")
    for sample in stats.error_samples:
        print(f"           error: {sample}")
    return row


def report_processes(stats: Stats, seconds: float, rss: dict[str, float | None]) -> dict[str, Any]:
    """Per daphne process: the chargers it holds (X-EVP-Backend of their last 101), its RSS, its share of the load."""
    held: dict[str, int] = {}
    for backend in stats.backend_of.values():
        held[backend] = held.get(backend, 0) + 1
    rows = {}
    for backend in sorted(set(held) | set(rss)):
        values = stats.all_latencies(backend=backend)
        p50, p99 = percentiles(values)
        memory = rss.get(backend)
        rows[backend] = {
            "connected": held.get(backend, 0),
            "rss_mb": round(memory, 1) if memory is not None else None,
            "msgs_per_s": round(len(values) / seconds, 1),
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
        }
        print(
            f"  {backend:<8} connected={held.get(backend, 0):<6} rss={rows[backend]['rss_mb']} MB "
            f"msgs/s={rows[backend]['msgs_per_s']} p50={rows[backend]['p50_ms']} ms p99={rows[backend]['p99_ms']} ms"
        )
    return rows


def report_cpu(stats: Stats, wall: float, duration: float) -> dict[str, float]:
    """The client side's CPU: a process near 100 % of a core in the steady state is the bottleneck, not the server."""
    parts = []
    for key in sorted(stats.cpu):
        if key.startswith("run"):
            steady = stats.cpu[key.replace("run", "steady")]
            parts.append(
                f"{key.replace('run', 'client')}: {stats.cpu[key]:.1f} s over the {wall:.0f} s run "
                f"({100 * stats.cpu[key] / wall:.0f} % of a core), {steady:.1f} s in the {duration:.0f} s measured "
                f"({100 * steady / duration:.0f} %)"
            )
    print("client CPU: " + "; ".join(parts))
    return {k: round(v, 1) for k, v in stats.cpu.items()}


# --------------------------------------------------------------------------- the platform


def bench_environment() -> list[str]:
    """Redis keys of their own for a run on this database (channel layer, cache, Celery queues, outbox kick), unless
    the environment names them: the Redis is shared, and a charger BENCH-00001 of another database must not get this
    run's commands, nor another platform's worker this run's tasks. Returns the Celery queue prefix to clean."""
    name = urlsplit(os.environ.get("DATABASE_URL", "")).path.lstrip("/") or "default"
    own = {
        "CHANNEL_LAYER_PREFIX": f"bench-{name}-asgi",
        "CACHE_KEY_PREFIX": f"bench-{name}",
        "CELERY_QUEUE_PREFIX": f"bench-{name}-",
        "EVENTS_OUTBOX_KICK_KEY": f"bench-{name}:outbox:kick",
    }
    for key, value in own.items():
        os.environ.setdefault(key, value)
    return (
        [os.environ["CELERY_QUEUE_PREFIX"]] if os.environ["CELERY_QUEUE_PREFIX"] == own["CELERY_QUEUE_PREFIX"] else []
    )


def drop_queues(prefixes: list[str]) -> None:
    """No Celery worker consumes the bench's queues: their tasks (session side effects) are dropped after the run."""
    if not prefixes:
        return
    from apps.stations import dispatch

    client = dispatch.sync_client()
    keys = [key for prefix in prefixes for key in client.scan_iter(match=f"{prefix}*", count=1000)]
    keys += [key for prefix in prefixes for key in client.scan_iter(match=f"_kombu.binding.{prefix}*", count=1000)]
    if keys:
        client.delete(*keys)
    print(f"dropped {len(keys)} Celery queue keys of the bench ({', '.join(prefixes)}*)")


def register_chargers(count: int) -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import transaction

    from apps.customers.models import Token
    from apps.customers.services import tokens_changed
    from apps.stations.hashers import check_secret, hash_secret
    from apps.stations.models import ChargePoint
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.order_by("pk").first() or Tenant.objects.create(name="Bench", slug="bench")
    ids = [f"BENCH-{n:05d}" for n in range(1, count + 1)]
    stored = dict(ChargePoint.objects.filter(identity__in=ids).values_list("identity", "password_hash"))
    # every charger its own secret, as in a real fleet. A stored hash that verifies the secret is kept: the check
    # costs one Redis GET once a daphne verified the pair (apps/stations/hashers.py), a new hash one PBKDF2 (~5 ms)
    # and makes the next handshake of each charger pay the PBKDF2 check again.
    started = time.monotonic()
    hashes, kept = {}, 0
    for identity in ids:
        if identity in stored and check_secret(secret_of(identity), stored[identity]):
            kept += 1
        else:
            hashes[identity] = hash_secret(secret_of(identity))
    print(
        f"charger secrets: {kept:,} stored hashes verified and kept, {len(hashes):,} hashed, "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    ChargePoint.objects.bulk_create(
        [
            ChargePoint(tenant=tenant, identity=i, password_hash=hashes[i], heartbeat_interval=300)
            for i in ids
            if i not in stored
        ]
    )
    rows = [row for row in ChargePoint.objects.filter(identity__in=ids) if row.identity in hashes]
    for row in rows:
        row.password_hash = hashes[row.identity]
    ChargePoint.objects.bulk_update(rows, ["password_hash"], batch_size=2000)
    # each charger's driver: a token of the tenant that may charge (valid, not blocked, no expiry, no contract)
    tags = [id_tag_of(i) for i in ids]
    with transaction.atomic():
        known = set(Token.objects.filter(tenant=tenant, uid__in=tags).values_list("uid", flat=True))
        created = Token.objects.bulk_create(
            [Token(tenant=tenant, uid=tag, issuer="Bench") for tag in tags if tag not in known], batch_size=2000
        )
        Token.objects.filter(tenant=tenant, uid__in=tags).exclude(valid=True, blocked=False, expires_at=None).update(
            valid=True, blocked=False, expires_at=None
        )
        tokens_changed(tenant_id=tenant.pk, token_ids=[token.pk for token in created])
    return ids


def send_commands(targets: dict[str, str]) -> list[dict[str, Any]]:
    """One command per process, through the platform's command service (as the API and the admin send them): it
    finds the process holding the charger's socket (presence in Redis), which sends the CALL and records the answer."""
    from apps.stations.models import ChargePoint
    from apps.stations.services import send_command

    results = []
    for backend, identity in sorted(targets.items()):
        charge_point = ChargePoint.objects.get(identity=identity)
        started = time.perf_counter()
        try:
            command = send_command(charge_point=charge_point, action=COMMAND[0], payload=COMMAND[1], source="bench")
        except Exception as error:  # noqa: BLE001 - printed with the others
            results.append({"backend": backend, "charger": identity, "status": f"raised {error!r}"[:200]})
            continue
        elapsed = (time.perf_counter() - started) * 1000
        results.append(
            {
                "backend": backend,
                "charger": identity,
                "command_id": command.pk,
                "status": command.status,
                "response": command.response,
                "round_trip_ms": round(elapsed, 1),
            }
        )
    return results


def report_commands(results: list[dict[str, Any]], stats: Stats) -> None:
    for result in results:
        got = [r for r in stats.received if r[0] == result["charger"] and r[1] == COMMAND[0]]
        result["charger_received"] = len(got)
        print(
            f"  command {COMMAND[0]} {json.dumps(COMMAND[1])} to {result['charger']} on {result['backend']}: "
            f"{result['status']} {json.dumps(result.get('response'))} in {result.get('round_trip_ms')} ms "
            f"(send_command, recorded); the simulated charger received it {len(got)} time(s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per server")
    parser.add_argument("--interval", type=float, default=5, help="seconds between a charger's messages")
    parser.add_argument("--ramp", type=float, default=20, help="seconds to connect everyone (not measured)")
    parser.add_argument(
        "--charging",
        type=float,
        default=CHARGING_DEFAULT,
        help=f"share of the chargers in a transaction, sending MeterValues (default {CHARGING_DEFAULT})",
    )
    parser.add_argument("--processes", type=int, default=1, help="daphne processes (2: behind HAProxy)")
    parser.add_argument(
        "--handover",
        action="store_true",
        help="daphne adopts a listening socket the benchmark holds (--fd, as systemd socket activation): a restart "
        "never closes the port",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="--storm with --handover, the next daphne started on the socket and serving before the old one's SIGTERM",
    )
    parser.add_argument(
        "--blip",
        action="store_true",
        help="--storm without a restart: every charger's TCP connection is reset (RST), the daphne process stays up",
    )
    parser.add_argument("--clients", type=int, default=1, help="client processes simulating the chargers")
    parser.add_argument(
        "--lb-instances", type=int, default=0, help="HAProxy processes on the port (default: as the fd limit needs)"
    )
    parser.add_argument("--url", default="", help="a running platform (ws://host:port); default: start daphne")
    parser.add_argument("--pid", type=int, default=None, help="pid of that running daphne, for its RSS")
    parser.add_argument(
        "--storm", action="store_true", help="restart the platform's daphne mid-run: time until every charger is back"
    )
    parser.add_argument("--no-floor", action="store_true", help="the platform only (no bare ocpp + websockets run)")
    parser.add_argument("--no-command", action="store_true", help="send no command to a charger of each process")
    parser.add_argument(
        "--server-log", default="", help="append the started daphnes' and HAProxy's output (warnings) to this file"
    )
    parser.add_argument("--floor-server", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server(args.floor_server)
        return
    if args.processes not in (1, len(HAPROXY_BACKENDS)):
        parser.error(f"--processes: 1, or {len(HAPROXY_BACKENDS)} behind docker/haproxy.cfg (its servers)")
    args.handover = args.handover or args.warm
    if args.blip and args.handover:
        parser.error("--blip keeps the one daphne process: nothing is handed over")
    args.storm = args.storm or args.blip
    if args.handover and (args.processes != 1 or args.url):
        parser.error("--handover hands the socket of the one daphne it starts")
    if args.storm and (args.processes != 1 or args.clients != 1 or args.url):
        parser.error("--storm restarts the one daphne it started, with one client process")
    if args.storm and args.duration < STORM_AT + STORM_WINDOW:
        least = STORM_AT + STORM_WINDOW
        parser.error(f"--storm needs --duration {least:.0f} or more ({STORM_WINDOW:.0f} s after the restart)")

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    queues = bench_environment()
    ids = register_chargers(args.chargers)
    charging = frozenset(random.Random(1).sample(ids, round(len(ids) * args.charging)))
    print(
        f"{len(ids):,} chargers, {len(charging):,} of them charging (--charging {args.charging}), "
        f"{args.processes} daphne process(es), {args.clients} client process(es); "
        f"load averages before: {os.getloadavg()}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    command_results: list[dict[str, Any]] = []
    send = not args.no_command and not args.storm

    # the platform
    daphne: list[subprocess.Popen[bytes]] = []
    balancers: list[subprocess.Popen[bytes]] = []
    url, pid = args.url, args.pid
    log = open(args.server_log, "ab") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev",
        "DEBUG": "0",
        "DB_CONN_MAX_AGE": "300",
    }
    ports = [free_port() for _ in range(args.processes)]
    backend_names = [SINGLE] if args.processes == 1 else list(HAPROXY_BACKENDS)

    listening = listening_socket(ports[0]) if args.handover else None
    # the project's bytecode, as the image has it (docker/Dockerfile): under PYTHONDONTWRITEBYTECODE every daphne
    # started compiled the sources again, ~0.45 s of CPU, in a storm while the old process was still stopping
    compileall.compile_dir(ROOT / "apps", quiet=1)
    compileall.compile_dir(ROOT / "evplatform", quiet=1)

    def restart(stats: Stats) -> None:
        """A deploy: SIGTERM, and the next process on the port as soon as the old one stops listening (at once: it
        then closes its sockets, each with a close frame, and records their closes). Waiting for the old process to
        exit first (8.7-11.6 s for 10,000 sockets) left the chargers nothing to reconnect to meanwhile. With
        --handover the next process adopts the listening socket, which never closed: the chargers that reconnect
        while it starts wait in the kernel's queue instead of being refused (and waiting out their back-off). With
        --warm the next process adopts it and serves before the old one gets its SIGTERM: the measured time
        begins at the SIGTERM, and the chargers come back to a process that is up."""
        old = daphne[-1]
        stats.handover = listening is not None
        stats.warm = args.warm
        if args.warm:
            daphne.append(start_daphne(ports[0], env, log, listening, beside=True))
            stats.listening_at = stats.restart_at = time.monotonic()
        old.send_signal(signal.SIGTERM)
        if listening is None:
            wait_closed(ports[0], old)
        stats.unlistened_at = time.monotonic()
        if not args.warm:
            daphne.append(start_daphne(ports[0], env, log, listening))
            stats.listening_at = time.monotonic()
        old.wait(120)
        stats.stopped_at = time.monotonic()

    try:
        if not url:
            # the platform's warnings (a refused handshake each during a storm) are counted by the client; kept
            # only with --server-log
            daphne.extend(start_daphne(port, env, log, listening) for port in ports)
            url = f"ws://127.0.0.1:{ports[0]}"
            if args.processes > 1:
                per_instance = haproxy_maxconn_limit()
                instances = args.lb_instances or max(1, math.ceil(args.chargers * 1.2 / per_instance))
                lb_port = free_port()
                balancers = start_haproxy(lb_port, ports, maxconn=per_instance, instances=instances, log=log)
                url = f"ws://127.0.0.1:{lb_port}"
                print(
                    f"HAProxy (docker/haproxy.cfg): {instances} process(es) on port {lb_port}, EVP_LB_MAXCONN="
                    f"{per_instance} each (RLIMIT_NOFILE hard limit {hard}); daphnes on {ports}",
                    flush=True,
                )
        started = time.monotonic()

        def commands_single(stats: Stats) -> None:
            command_results.extend(send_commands(targets_of(stats)))

        def commands_many(targets: dict[str, str]) -> None:
            command_results.extend(send_commands(targets))

        stats, seconds = run_fleet(
            url,
            ids,
            args,
            charging,
            restart=restart if args.storm and daphne and not args.blip else None,
            blip=args.blip,
            single=commands_single if send else None,
            many=commands_many if send else None,
        )
        wall = time.monotonic() - started
        current = daphne[-args.processes :] if daphne else []
        rss = {name: rss_mb(proc.pid) for name, proc in zip(backend_names, current, strict=True)}
        if not daphne and pid:
            rss = {SINGLE: rss_mb(pid)}
        row = report("platform", stats, seconds, sum(v or 0 for v in rss.values()) if rss else None)
        if args.processes > 1 or len(stats.latencies) > 1:
            print("per daphne process (X-EVP-Backend of each charger's 101):")
            row["processes"] = report_processes(stats, seconds, rss)
            row["haproxy_rss_mb"] = [rss_mb(proc.pid) for proc in balancers]
            print(f"  HAProxy RSS: {', '.join(f'{v:.1f} MB' for v in row['haproxy_rss_mb'] if v is not None)}")
        if command_results:
            report_commands(command_results, stats)
            row["commands"] = command_results
        row["client_cpu_s"] = report_cpu(stats, wall, seconds)
        rows.append(row)
        print(f"load averages after platform run: {os.getloadavg()}")
    finally:
        for proc in balancers:
            stop(proc, 30)
        for proc in daphne:
            stop(proc, 60)
        drop_queues(queues)

    if args.no_floor:
        print(json.dumps(rows, default=str))
        return
    # the floor
    port = free_port()
    floor = subprocess.Popen([sys.executable, __file__, "--floor-server", str(port)], cwd=ROOT)
    try:
        wait_port(port, floor)
        floor_url = f"ws://127.0.0.1:{port}"
        stats, seconds = run_fleet(floor_url, ids, args, charging)
        rows.append(report("floor", stats, seconds, rss_mb(floor.pid)))
    finally:
        stop(floor, 30)
    print(f"load averages after: {os.getloadavg()}")
    platform, bare = rows
    if bare["p99_ms"] and platform["p99_ms"]:
        print(
            f"ratio platform/floor: p50 x{platform['p50_ms'] / bare['p50_ms']:.1f}, "
            f"p99 x{platform['p99_ms'] / bare['p99_ms']:.1f}, "
            f"RSS x{(platform['rss_mb'] or 0) / (bare['rss_mb'] or 1):.1f}"
        )
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
