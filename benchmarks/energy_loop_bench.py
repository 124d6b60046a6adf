"""End-to-end smart-charging control loop: from a grid signal posted through the API to SetChargingProfile
arriving at every charger.

    eval $(.venv/bin/python scripts/stack.py up | grep export)
    .venv/bin/python benchmarks/energy_loop_bench.py                  # N = 20 and 100, 3 limit changes each
    .venv/bin/python benchmarks/energy_loop_bench.py --chargers 20 --rounds 5 --keep

What runs: its own database `evp_bench_energy_loop` (created and migrated here, dropped at the end unless
--keep) and its own Redis database (index 13 of REDIS_URL's server: broker, channel layer, presence and the
debounce locks stay apart from everyone else's); `daphne` and one Celery worker (`--concurrency 1`) as in the
Procfile; N simulated OCPP 1.6 chargers (this process, the `ocpp` package's client over `websockets`), each
with one car charging on one connector of one site (equal share, connectors of 32 A). Per round the
benchmark posts a grid signal (`POST /api/v1/energy/grid-signals/`, API key with `energy:write`) that
moves every car to a new current, and times, per charger, the arrival of the TxProfile with that limit.

Printed per N: p50 / p95 / max over chargers and rounds of POST -> TxProfile received, next to a floor:
the debounce countdown the loop waits by design (tasks.DEBOUNCE_SECONDS / 2), plus one recompute with
nothing to send (`services.site_recompute(send=False)`: database read, optimizer, allocation rows), measured
in this process on the same site. Per round: when the recompute started (after the POST) and how long the
optimizer took in it, so the rest of the time is the sending of the profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from servers import free_port, wait_port  # benchmarks/servers.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "evp_bench_energy_loop"
BENCH_REDIS_DB = 13
PASSWORD = "bench-loop-charger-password-01"
V = 230.0


def _url_with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


def admin_execute(database_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(_url_with_path(database_url, "/postgres"), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(q * len(s) + 0.999999) - 1))]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- site setup (Django, bench DB)


@dataclass
class Site:
    root_id: int
    tenant_id: int
    identities: list[str]
    tags: list[str]
    api_key: str


def make_site(n: int, label: str) -> Site:
    from apps.energy.models import GridNode, NodeKind, Strategy
    from apps.stations.hashers import hash_secret
    from apps.stations.models import ChargePoint
    from tests.customers.factories import DriverFactory, TokenFactory
    from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
    from tests.tenants.factories import TenantFactory, api_key_for

    tenant = TenantFactory(name=f"Loop bench {label}", slug=f"loop-bench-{label}")
    location = LocationFactory(tenant=tenant, timezone="Europe/Berlin")
    root = GridNode.objects.create(
        tenant=tenant,
        location=location,
        name=f"site {label}",
        kind=NodeKind.SITE,
        max_current_a=32 * n,
        strategy=Strategy.EQUAL_SHARE,
    )
    secret = hash_secret(PASSWORD)
    driver = DriverFactory(tenant=tenant)
    identities, tags = [], []
    for i in range(n):
        identity = f"LOOP-{label}-{i:04d}"
        cp = ChargePoint.objects.create(
            tenant=tenant, location=location, identity=identity, password_hash=secret, heartbeat_interval=300
        )
        ConnectorFactory(
            evse=EvseFactory(charge_point=cp, connector_id=1, evse_uid=f"DE*LOO*E{label}{i:04d}*1"), max_amperage=32
        )
        GridNode.objects.create(
            tenant=tenant, location=location, parent=root, name=identity, kind=NodeKind.CHARGE_POINT, charge_point=cp
        )
        tag = f"LT{label}{i:04d}"
        TokenFactory(tenant=tenant, driver=driver, uid=tag)
        identities.append(identity)
        tags.append(tag)
    _key, raw = api_key_for(tenant, ["energy:write"])
    return Site(root.pk, tenant.pk, identities, tags, raw)


def recompute_floor_ms(site_id: int, runs: int = 5) -> list[float]:
    from apps.energy import services

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        services.site_recompute(site_id=site_id, trigger="bench-floor", send=False)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def recompute_rows_since(site_id: int, since: datetime) -> list[tuple[datetime, str, float]]:
    from apps.energy.models import SiteRecompute

    return list(
        SiteRecompute.objects.filter(site_id=site_id, at__gte=since)
        .order_by("at")
        .values_list("at", "trigger", "duration_ms")
    )


# --------------------------------------------------------------------------- simulated chargers


@dataclass
class Received:
    at: float  # time.time()
    purpose: str
    limit: float
    unit: str


@dataclass
class Fleet:
    received: dict[str, list[Received]] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def charger_class() -> Any:
    from ocpp.routing import on
    from ocpp.v16 import call, call_result
    from ocpp.v16.enums import Action

    from apps.ocpp.simulator import SimConfig, SimulatedCharger, now_iso

    class LoopCharger(SimulatedCharger):  # type: ignore[misc]
        """Boots, starts one transaction on connector 1, keeps charging, and logs every profile it gets."""

        def __init__(self, identity: str, connection: Any, url: str, tag: str, fleet: Fleet) -> None:
            super().__init__(identity, connection, SimConfig(url=url, connectors=1))
            self.tag, self.fleet = tag, fleet
            fleet.received[identity] = []

        async def run(self) -> None:
            await self.call(call.BootNotification(charge_point_vendor="EVP-Bench", charge_point_model="Loop-22"))
            await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing"))
            started = await self.call(
                call.StartTransaction(connector_id=1, id_tag=self.tag, meter_start=0, timestamp=now_iso())
            )
            if started.id_tag_info["status"] == "Accepted":
                self.fleet.accepted.add(self.id)
            await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))
            await asyncio.Event().wait()  # charge until cancelled

        @on(Action.set_charging_profile)
        def on_set_charging_profile(
            self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
        ) -> call_result.SetChargingProfile:
            schedule = cs_charging_profiles["charging_schedule"]
            self.fleet.received[self.id].append(
                Received(
                    time.time(),
                    cs_charging_profiles["charging_profile_purpose"],
                    float(schedule["charging_schedule_period"][0]["limit"]),
                    schedule["charging_rate_unit"],
                )
            )
            return call_result.SetChargingProfile(status="Accepted")

    return LoopCharger


async def connect(url: str, identity: str, tag: str, fleet: Fleet, cls: Any) -> None:
    import websockets

    token = base64.b64encode(f"{identity}:{PASSWORD}".encode()).decode()
    try:
        async with websockets.connect(
            f"{url}/ocpp/{identity}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            open_timeout=30,
        ) as ws:
            charger = cls(identity, ws, url, tag, fleet)
            await asyncio.gather(charger.start(), charger.run())
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 - reported, the run goes on with the others
        fleet.errors.append(f"{identity}: {error!r}")


def post_signal(http: str, key: str, node_id: int, max_power_w: int) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    body = json.dumps(
        {
            "node": node_id,
            "max_power_w": max_power_w,
            "valid_from": (now - timedelta(seconds=2)).isoformat(),
            "valid_until": (now + timedelta(hours=1)).isoformat(),
            "source": "bench DSO",
            "reference": f"LOOP-{time.time_ns()}",
        }
    ).encode()
    request = urllib.request.Request(
        f"{http}/api/v1/energy/grid-signals/",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Api-Key {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


async def wait_until(predicate: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()  # type: ignore[no-any-return]


def last_tx(fleet: Fleet, identity: str) -> Received | None:
    tx = [r for r in fleet.received[identity] if r.purpose == "TxProfile"]
    return tx[-1] if tx else None


async def run_site(ws_url: str, http: str, site: Site, rounds: int, quiet: float) -> dict[str, Any]:
    from asgiref.sync import sync_to_async

    from apps.energy import tasks

    n = len(site.identities)
    fleet = Fleet()
    cls = charger_class()
    t_connect = time.perf_counter()
    sims = [
        asyncio.create_task(connect(ws_url, identity, tag, fleet, cls))
        for identity, tag in zip(site.identities, site.tags, strict=True)
    ]
    try:
        ok = await wait_until(lambda: len(fleet.accepted) == n, 90)
        if not ok:
            raise SystemExit(f"only {len(fleet.accepted)}/{n} transactions accepted; errors: {fleet.errors[:3]}")
        connected_s = time.perf_counter() - t_connect
        # the starts' recomputes: every charger gets its first TxProfile (32 A), then nothing for `quiet` seconds
        await wait_until(lambda: all(last_tx(fleet, i) is not None for i in site.identities), 60)

        def settled() -> bool:
            latest = max((r.at for rs in fleet.received.values() for r in rs), default=0.0)
            return time.time() - latest > quiet

        await wait_until(settled, 60, 0.1)
        samples: list[float] = []
        rows = []
        for r in range(rounds):
            target = (10, 14, 8, 12, 9)[r % 5]
            # equal share: every car gets `target` A, and the half amp left per car goes to half of them as one
            # amp more (nothing allocatable is left unused), so a charger gets `target` or `target` + 1
            power = int(n * 3 * V * (target + 0.5))
            before = {i: len(fleet.received[i]) for i in site.identities}
            since = datetime.now(UTC)
            t0 = time.time()
            status = await asyncio.get_running_loop().run_in_executor(
                None, post_signal, http, site.api_key, site.root_id, power
            )
            posted = time.time() - t0

            def arrived(i: str, t: float = target, b: dict[str, int] = before) -> float | None:
                for rec in fleet.received[i][b[i] :]:
                    if rec.purpose == "TxProfile" and rec.limit in (t, t + 1):
                        return rec.at
                return None

            def limits(b: dict[str, int] = before) -> list[float]:
                return [
                    rec.limit
                    for i in site.identities
                    for rec in fleet.received[i][b[i] :]
                    if rec.purpose == "TxProfile"
                ]

            await wait_until(lambda: all(arrived(i) is not None for i in site.identities), 60)
            times = [((arrived(i) or float("nan")) - t0) * 1000 for i in site.identities]
            missing = sum(1 for i in site.identities if arrived(i) is None)
            recomputes = await sync_to_async(recompute_rows_since)(site.root_id, since)
            first_row = next((row for row in recomputes if row[1] == "grid_signal"), None)
            row_ms = (first_row[0].timestamp() - t0) * 1000 if first_row else float("nan")
            took = first_row[2] if first_row else float("nan")
            samples += [t for t in times if t == t]
            rows.append(
                {
                    "round": r + 1,
                    "target_a": target,
                    "post_status": status,
                    "post_ms": round(posted * 1000, 1),
                    "p50_ms": round(statistics.median(t for t in times if t == t), 1),
                    "max_ms": round(max(t for t in times if t == t), 1),
                    "recompute_row_ms": round(row_ms, 1),
                    "recompute_took_ms": round(float(took), 1),
                    "missing": missing,
                    "limits": sorted(set(limits())),
                    "recomputes": len(recomputes),
                }
            )
            await wait_until(settled, 30, 0.1)
        floor = await sync_to_async(recompute_floor_ms)(site.root_id)
        return {
            "n": n,
            "connected_s": round(connected_s, 1),
            "rounds": rows,
            "samples": samples,
            "floor_recompute_ms": floor,
            "debounce_s": tasks.DEBOUNCE_SECONDS / 2,
            "errors": fleet.errors,
        }
    finally:
        for task in sims:
            task.cancel()
        await asyncio.gather(*sims, return_exceptions=True)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", default="20,100", help="site sizes, one site each")
    parser.add_argument("--rounds", type=int, default=3, help="limit changes per site")
    parser.add_argument("--quiet", type=float, default=2.5, help="seconds without profiles before a round")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    base_db, base_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not base_db or not base_redis:
        raise SystemExit(
            "DATABASE_URL/REDIS_URL are not set: eval $(.venv/bin/python scripts/stack.py up | grep export)"
        )
    sizes = [int(x) for x in args.chargers.split(",") if x]
    print(f"energy control-loop bench: chargers {sizes}, {args.rounds} rounds; load average at start {load()}")

    admin_execute(base_db, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    admin_execute(base_db, f'CREATE DATABASE "{BENCH_DB}"')
    db_url = _url_with_path(base_db, "/" + BENCH_DB)
    redis_url = _url_with_path(base_redis, f"/{BENCH_REDIS_DB}")
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev",
            "DEBUG": "0",
            "CHANNEL_LAYER_PREFIX": "evp-bench-loop",
        }
    )
    import django
    import redis

    django.setup()
    from django.core.management import call_command

    redis.Redis.from_url(redis_url).flushdb()  # our own database index only
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"migrated {BENCH_DB} in {time.perf_counter() - t0:.1f} s")
    sites = [make_site(n, f"{k}") for k, n in enumerate(sizes)]

    env = {**os.environ, "PYTHONPATH": str(ROOT), "DB_CONN_MAX_AGE": "300"}
    port = free_port()
    bin_dir = Path(sys.executable).parent
    daphne = subprocess.Popen(
        [sys.executable, "-m", "evplatform.server", "-b", "127.0.0.1", "-p", str(port), "evplatform.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            str(bin_dir / "celery"),
            "-A",
            "evplatform",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    results = []
    try:
        wait_port(port, daphne)
        time.sleep(2)  # let the worker connect to the broker
        for site in sites:
            print(f"\n== {len(site.identities)} chargers, load average {load()}")
            res = asyncio.run(
                run_site(f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}", site, args.rounds, args.quiet)
            )
            for row in res["rounds"]:
                print(
                    f"  round {row['round']}: -> {row['target_a']} A  "
                    f"POST {row['post_status']} in {row['post_ms']} ms; "
                    f"chargers p50 {row['p50_ms']} ms, last {row['max_ms']} ms; recompute started at "
                    f"{row['recompute_row_ms']} ms (optimizer {row['recompute_took_ms']} ms); "
                    f"limits sent {row['limits']}; missing {row['missing']}"
                )
            if res["errors"]:
                print(f"  charger errors: {res['errors'][:3]}")
            results.append(res)
    finally:
        for proc in (daphne, worker):
            proc.send_signal(signal.SIGTERM)
        for proc in (daphne, worker):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        from django.db import connections

        connections.close_all()
        redis.Redis.from_url(redis_url).flushdb()
        if not args.keep:
            admin_execute(base_db, f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')

    print(f"\nload average at end {load()} on {os.cpu_count()} CPUs")
    print(
        f"{'chargers':>8} {'samples':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'floor ms':>9} "
        f"{'(debounce + recompute p50)':>28}"
    )
    for res in results:
        s = res["samples"]
        rec = statistics.median(res["floor_recompute_ms"])
        floor = res["debounce_s"] * 1000 + rec
        print(
            f"{res['n']:>8} {len(s):>7} {pct(s, 0.5):>8.0f} {pct(s, 0.95):>8.0f} {max(s):>8.0f} {floor:>9.0f} "
            f"{'':>6}{res['debounce_s'] * 1000:.0f} + {rec:.1f}"
        )


if __name__ == "__main__":
    main()
