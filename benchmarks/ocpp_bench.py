"""OCPP load benchmark: N chargers against the platform (daphne) and against a bare `ocpp` + `websockets`
server (the floor), in the same run, with the same client.

    python benchmarks/ocpp_bench.py --chargers 1000 --duration 30 --interval 5

Each simulated charger connects (HTTP Basic, subprotocol ocpp1.6), sends BootNotification, then alternates
Heartbeat and StatusNotification every `--interval` seconds (jittered) and times every round trip. Prints
connected chargers, messages/s, p50/p99 round-trip latency, errors and the server's RSS, for both servers.

Without --url, the platform is started here: `daphne` on a free loopback port with the environment's
DATABASE_URL / REDIS_URL (run `eval $(python scripts/stack.py up | grep export)` first), and N charge points
BENCH-00001.. are registered (idempotent) for the first tenant. The message log stays on (it is part of the
platform's cost).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from servers import free_port, wait_port  # benchmarks/servers.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-charger-password-0001"


@dataclass
class Stats:
    connected: int = 0
    connect_errors: int = 0
    refused: int = 0  # handshakes answered 503 + Retry-After (admission control), retried as a charger would
    pending: int = 0  # BootNotifications answered Pending, booted again after the interval
    restart_at: float | None = None  # --storm: when the server was restarted
    stopped_at: float | None = None  # --storm: when the old process had exited
    listening_at: float | None = None  # --storm: when the new process accepted connections
    back: dict[str, float] = field(default_factory=dict)  # --storm: when each charger was connected again
    errors: int = 0
    messages: int = 0
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text)


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


# --------------------------------------------------------------------------- the floor server


def floor_server(port: int) -> None:
    """A bare ocpp + websockets central system: validates inline and answers at once, no database."""
    import ocpp.messages
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result

    ocpp.messages.ASYNC_VALIDATION = False
    import logging

    logging.getLogger("ocpp").setLevel(logging.WARNING)

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


async def open_socket(url: str, identity: str, stats: Stats, stop_at: float) -> websockets.ClientConnection | None:
    """Connect as a well-mannered charger: a 503 (admission control) or a refused connection is retried after
    the Retry-After the server gave (jittered), until `stop_at`."""
    token = base64.b64encode(f"{identity}:{secret_of(identity)}".encode()).decode()
    while True:
        try:
            return await websockets.connect(
                f"{url}/ocpp/{identity}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Basic {token}"},
                open_timeout=60,
                ping_interval=None,
            )
        except websockets.InvalidStatus as error:
            if error.response.status_code != 503 or time.monotonic() >= stop_at:
                stats.connect_errors += 1
                stats.error(f"connect: {error!r}"[:300])
                return None
            stats.refused += 1
            retry_after = float(error.response.headers.get("Retry-After", "10"))
            await asyncio.sleep(retry_after * random.uniform(0.5, 1.5))
        except OSError as error:  # the server is restarting: come back shortly, as chargers do
            if time.monotonic() >= stop_at:
                stats.connect_errors += 1
                stats.error(f"connect: {error!r}"[:300])
                return None
            await asyncio.sleep(random.uniform(1, 5))
        except Exception as error:  # noqa: BLE001 - counted, the run goes on
            stats.connect_errors += 1
            stats.error(f"connect: {error!r}"[:300])
            return None


class ServerClosed(Exception):
    """The server closed the socket while the charger was waiting between messages."""


async def pause(ws: websockets.ClientConnection, seconds: float) -> None:
    """Wait `seconds` between messages, as a charger does, but notice a close at once (a charger's WebSocket stack
    reads the close frame whether or not it is sending). Sleeping blind, the client noticed a restart only at its
    next message, up to 1.2 x the interval later, and the storm's "back within" measured that sleep."""
    closed = asyncio.ensure_future(ws.wait_closed())
    try:
        await asyncio.wait_for(asyncio.shield(closed), seconds)
    except TimeoutError:
        closed.cancel()
        return
    raise ServerClosed


async def charger(
    url: str,
    identity: str,
    stats: Stats,
    interval: float,
    stop_at: float,
    measure_from: list[float],
) -> None:
    """One charger: connects, boots (again after the interval while answered Pending), then a Heartbeat or a
    StatusNotification every `interval`; after the server closes the socket (a restart) it reconnects and
    records when it was back (`stats.back`)."""
    counter = 0
    while time.monotonic() < stop_at:
        ws = await open_socket(url, identity, stats, stop_at)
        if ws is None:
            return
        if stats.restart_at is None:
            stats.connected += 1
        else:
            stats.back[identity] = time.monotonic()

        async def rpc(action: str, payload: dict[str, object], ws: websockets.ClientConnection = ws) -> object:
            nonlocal counter
            counter += 1
            unique_id = f"{identity}-{counter}"
            started = time.perf_counter()
            await ws.send(json.dumps([2, unique_id, action, payload]))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 30))
            elapsed = (time.perf_counter() - started) * 1000
            if answer[0] != 3 or answer[1] != unique_id:
                stats.error(f"{action}: {answer!r}"[:200])
            elif time.monotonic() >= measure_from[0]:
                stats.messages += 1
                stats.latencies.append(elapsed)
            return answer[2] if answer[0] == 3 else None

        try:
            while True:
                boot = await rpc("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "B1"})
                if not isinstance(boot, dict) or boot.get("status") != "Pending":
                    break
                stats.pending += 1
                await pause(ws, float(boot.get("interval", 30)))
            await pause(ws, random.uniform(0, interval))
            status = ("Available", "Preparing", "Charging", "Finishing")
            while time.monotonic() < stop_at:
                await rpc("Heartbeat", {})
                await pause(ws, min(interval * random.uniform(0.8, 1.2), max(0.0, stop_at - time.monotonic())))
                if time.monotonic() >= stop_at:
                    break
                payload = {"connectorId": 1, "errorCode": "NoError", "status": random.choice(status)}
                await rpc("StatusNotification", payload)
                await pause(ws, min(interval * random.uniform(0.8, 1.2), max(0.0, stop_at - time.monotonic())))
            return
        except (websockets.ConnectionClosed, ServerClosed):
            continue  # the server went away: reconnect (the storm)
        except Exception as error:  # noqa: BLE001
            stats.error(f"{error!r}"[:200])
            return
        finally:
            await ws.close()


async def drive(
    url: str,
    ids: list[str],
    interval: float,
    duration: float,
    ramp: float,
    restart: Callable[[Stats], None] | None = None,
) -> tuple[Stats, float]:
    """Connect everyone over `ramp` seconds, then measure `duration` seconds. With `restart` (--storm), the
    server is restarted in the middle of the measured time and the time until every charger is back is kept."""
    stats = Stats()
    loop_start = time.monotonic()
    stop_at = loop_start + ramp + duration
    measure_from = [loop_start + ramp]  # latencies of the steady state only (not the connection storm)
    tasks = []
    for n, identity in enumerate(ids):
        tasks.append(asyncio.create_task(charger(url, identity, stats, interval, stop_at, measure_from)))
        if n % 50 == 49:
            await asyncio.sleep(ramp * 50 / len(ids))
    if restart is not None:
        await asyncio.sleep(max(0.0, measure_from[0] + duration / 4 - time.monotonic()))
        stats.restart_at = time.monotonic()
        await asyncio.to_thread(restart, stats)
    await asyncio.gather(*tasks)
    return stats, duration


def report(name: str, stats: Stats, seconds: float, rss: float | None) -> dict[str, object]:
    lat = sorted(stats.latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
    row = {
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
    if stats.restart_at is not None:
        back = sorted(at - stats.restart_at for at in stats.back.values())
        row["storm_back"] = len(back)
        row["storm_all_back_s"] = round(back[-1], 1) if back else None
        row["storm_p50_back_s"] = round(back[len(back) // 2], 1) if back else None
        print(
            f"           storm: {len(back)}/{stats.connected} back after the restart; half within "
            f"{row['storm_p50_back_s']} s, all within {row['storm_all_back_s']} s"
        )
        if stats.stopped_at is not None and stats.listening_at is not None:
            row["storm_stop_s"] = round(stats.stopped_at - stats.restart_at, 1)
            row["storm_start_s"] = round(stats.listening_at - stats.stopped_at, 1)
            per_10s: dict[int, int] = {}
            for at in back:
                per_10s[int(at // 10) * 10] = per_10s.get(int(at // 10) * 10, 0) + 1
            print(
                f"           the old process stopped in {row['storm_stop_s']} s (SIGTERM to exit), the new one "
                f"listened {row['storm_start_s']} s later; back per 10 s after the SIGTERM: "
                + ", ".join(f"{k}-{k + 10} s: {v}" for k, v in sorted(per_10s.items()))
            )
    for sample in stats.error_samples:
        print(f"           error: {sample}")
    return row


# --------------------------------------------------------------------------- the platform


def register_chargers(count: int) -> list[str]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from apps.stations.hashers import hash_secret
    from apps.stations.models import ChargePoint
    from apps.tenants.models import Tenant

    tenant = Tenant.objects.order_by("pk").first() or Tenant.objects.create(name="Bench", slug="bench")
    ids = [f"BENCH-{n:05d}" for n in range(1, count + 1)]
    existing = set(ChargePoint.objects.filter(identity__in=ids).values_list("identity", flat=True))
    # every charger its own secret, as in a real fleet: the first handshake of each pays the PBKDF2 check (~5 ms of
    # CPU), a restarted process finds the verified pairs in Redis (apps/stations/hashers.py)
    started = time.monotonic()
    hashes = {i: hash_secret(secret_of(i)) for i in ids}
    print(f"hashed {len(ids):,} charger secrets in {time.monotonic() - started:.1f} s", flush=True)
    ChargePoint.objects.bulk_create(
        [
            ChargePoint(tenant=tenant, identity=i, password_hash=hashes[i], heartbeat_interval=300)
            for i in ids
            if i not in existing
        ]
    )
    rows = list(ChargePoint.objects.filter(identity__in=ids))
    for row in rows:
        row.password_hash = hashes[row.identity]
    ChargePoint.objects.bulk_update(rows, ["password_hash"], batch_size=2000)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per server")
    parser.add_argument("--interval", type=float, default=5, help="seconds between a charger's messages")
    parser.add_argument("--ramp", type=float, default=20, help="seconds to connect everyone (not measured)")
    parser.add_argument("--url", default="", help="a running platform (ws://host:port); default: start daphne")
    parser.add_argument("--pid", type=int, default=None, help="pid of that running daphne, for its RSS")
    parser.add_argument(
        "--storm", action="store_true", help="restart the platform's daphne mid-run: time until every charger is back"
    )
    parser.add_argument("--no-floor", action="store_true", help="the platform only (no bare ocpp + websockets run)")
    parser.add_argument(
        "--server-log", default="", help="append the started daphne's output (its warnings) to this file"
    )
    parser.add_argument("--floor-server", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_server:
        floor_server(args.floor_server)
        return

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ids = register_chargers(args.chargers)
    print(f"load averages before: {os.getloadavg()}")
    rows = []

    # the platform
    daphne: list[subprocess.Popen[bytes]] = []
    url, pid = args.url, args.pid
    if not url:
        port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev",
            "DEBUG": "0",
            "DB_CONN_MAX_AGE": "300",
        }
        command = [
            sys.executable,
            "-m",
            "evplatform.server",  # daphne with the settings' handshake and close timeouts
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "evplatform.asgi:application",
        ]

        def start() -> None:
            # the platform's warnings (a refused handshake each during a storm) are counted by the client; kept
            # only with --server-log
            log = open(args.server_log, "ab") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
            daphne.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
            wait_port(port, daphne[-1])

        def restart(stats: Stats) -> None:
            """A deploy: the graceful stop (close frames to every charger), then a new process on the port."""
            daphne[-1].send_signal(signal.SIGTERM)
            daphne[-1].wait(120)
            stats.stopped_at = time.monotonic()
            start()
            stats.listening_at = time.monotonic()

        start()
        url = f"ws://127.0.0.1:{port}"
    try:
        stats, seconds = asyncio.run(
            drive(url, ids, args.interval, args.duration, args.ramp, restart if args.storm and daphne else None)
        )
        rows.append(report("platform", stats, seconds, rss_mb(daphne[-1].pid if daphne else pid)))
        print(f"load averages after platform run: {os.getloadavg()}")
    finally:
        if daphne:
            daphne[-1].send_signal(signal.SIGTERM)
            daphne[-1].wait(60)

    if args.no_floor:
        print(json.dumps(rows))
        return
    # the floor
    port = free_port()
    floor = subprocess.Popen([sys.executable, __file__, "--floor-server", str(port)], cwd=ROOT)
    try:
        wait_port(port, floor)
        stats, seconds = asyncio.run(drive(f"ws://127.0.0.1:{port}", ids, args.interval, args.duration, args.ramp))
        rows.append(report("floor", stats, seconds, rss_mb(floor.pid)))
    finally:
        floor.send_signal(signal.SIGTERM)
        floor.wait(30)
    print(f"load averages after: {os.getloadavg()}")
    platform, bare = rows
    if bare["p99_ms"] and platform["p99_ms"]:
        print(
            f"ratio platform/floor: p50 x{platform['p50_ms'] / bare['p50_ms']:.1f}, "  # type: ignore[operator]
            f"p99 x{platform['p99_ms'] / bare['p99_ms']:.1f}, "  # type: ignore[operator]
            f"RSS x{(platform['rss_mb'] or 0) / (bare['rss_mb'] or 1):.1f}"  # type: ignore[operator]
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
