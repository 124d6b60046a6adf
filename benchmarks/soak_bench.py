"""Soak: the project's simulated chargers against the whole platform for minutes, with the faults chargers
really produce, and a count of everything that could be lost or wrong on either side.

    eval $(python scripts/stack.py up | grep export)        # or DATABASE_URL / REDIS_URL of real servers
    python benchmarks/soak_bench.py --chargers 200 --minutes 10

What runs: daphne (`evplatform.server`, as in production), a Celery worker on the default and events queues,
Celery beat (the reporting and clean-up jobs that compete with the charger path), and N simulated chargers
(`apps.ocpp.simulator`) of one tenant, one connector each, two chargers per token (so starts race for the
same token), sessions of `--session` seconds with MeterValues every `--meter-interval` s. Faults:
- late MeterValues: a share of stopped transactions gets one more sample (taken before or after the stop);
- abrupt closes: every charger now and then writes a few frames and closes its TCP socket without waiting;
- a daphne restart (SIGTERM, then a new daphne on the same port) at `--restart-at` of the run.
At the end the chargers stop their sessions and send what they queued, daphne stops gracefully, the outbox
drains, and both sides are compared:
- sessions started and stopped as the chargers saw them and as the platform stored them;
- energy mismatches: a session whose stored meter stop or energy differs from the charger's;
- CallErrors by action and code, as the chargers received them;
- lost frames: CALLs that the platform answered, or that a charger flushed before closing its socket, and
  that are missing from the platform's message log;
- events: outbox rows written and delivered, and sessions without their started/ended event.
Goal: 0 mismatches, 0 InternalError, 0 lost frames, 0 lost events. The exit status is 1 when a goal fails.

Chargers are SOAK-0001.. in the tenant `--tenant` (default: the first; the demo data is loaded when the
database has no tenant), at its first location, with tokens SOAK-TAG-001..; registering them is idempotent.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import free_port, wait_port  # benchmarks/servers.py (the script's folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "soak-charger-password-0001"


# --------------------------------------------------------------------------- set-up (Django, synchronous)


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def register(count: int, tenant_slug: str) -> tuple[list[str], list[str]]:
    """The chargers and tokens of the run (idempotent): ids, tags."""
    from django.core.management import call_command

    from apps.customers import services as customer_services
    from apps.customers.models import Driver, Token
    from apps.stations import services as station_services
    from apps.stations.hashers import hash_secret
    from apps.stations.models import ChargePoint, Connector, Location
    from apps.tenants.models import Tenant

    call_command("migrate", verbosity=0)  # the database is the one the platform's processes will use
    if not Tenant.objects.exists():
        call_command("seed_demo")
    tenants = Tenant.objects.order_by("pk")
    tenant = tenants.get(slug=tenant_slug) if tenant_slug else tenants.first()
    assert tenant is not None
    location = Location.objects.filter(tenant=tenant).order_by("pk").first()
    if location is None:
        location = Location.objects.create(
            tenant=tenant, name="Soak site", address="Soak 1", postal_code="10115", city="Berlin", country="DE"
        )
    ids = [f"SOAK-{n:04d}" for n in range(1, count + 1)]
    existing = set(ChargePoint.objects.filter(identity__in=ids).values_list("identity", flat=True))
    for identity in ids:
        if identity in existing:
            continue
        charge_point, _ = station_services.charge_point_register(
            tenant=tenant, identity=identity, location=location, password=PASSWORD, heartbeat_interval=120
        )
        evse = station_services.evse_create(
            charge_point=charge_point, connector_id=1, evse_uid=f"DE*SOK*E{identity[5:]}*1"
        )
        station_services.connector_create(
            evse=evse,
            standard=Connector.Standard.IEC_62196_T2,
            format=Connector.Format.SOCKET,
            power_type=Connector.PowerType.AC_3_PHASE,
            max_voltage=400,
            max_amperage=32,
            max_electric_power=22_000,
        )
    ChargePoint.objects.filter(identity__in=ids).update(password_hash=hash_secret(PASSWORD))
    driver = Driver.objects.filter(tenant=tenant, email="soak@example.com").first() or customer_services.driver_create(
        tenant=tenant, first_name="Soak", last_name="Driver", email="soak@example.com"
    )
    tags = [f"SOAK-TAG-{n:03d}" for n in range(1, (count + 1) // 2 + 1)]
    known = set(Token.objects.filter(tenant=tenant, uid__in=tags).values_list("uid", flat=True))
    for tag in tags:
        if tag not in known:
            customer_services.token_create(tenant=tenant, uid=tag, driver=driver, issuer="Soak")
    return ids, tags


def high_water() -> dict[str, int]:
    """The highest id of each table compared, before the run: what comes after is the run's."""
    from django.db.models import Max

    from apps.core.models import OutboxDelivery
    from apps.ocpp.models import MessageLog
    from apps.sessions.models import ChargingSession

    return {
        name: model.objects.aggregate(top=Max("pk"))["top"] or 0
        for name, model in (("messages", MessageLog), ("outbox", OutboxDelivery), ("sessions", ChargingSession))
    }


# --------------------------------------------------------------------------- the platform's processes


class Platform:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev", "DEBUG": "0"}
        self.daphne: subprocess.Popen[bytes] | None = None
        self.others: list[subprocess.Popen[bytes]] = []

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        out = (self.workdir / log).open("ab")
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def start_daphne(self) -> None:
        server = [sys.executable, "-m", "evplatform.server", "-b", "127.0.0.1", "-p", str(self.port)]
        self.daphne = self._spawn([*server, "evplatform.asgi:application"], "daphne.log")
        wait_port(self.port, self.daphne)

    def stop_daphne(self) -> float:
        """SIGTERM (graceful: chargers are told to reconnect, received frames drained); seconds it took."""
        assert self.daphne is not None
        started = time.monotonic()
        self.daphne.send_signal(signal.SIGTERM)
        try:
            self.daphne.wait(60)
        except subprocess.TimeoutExpired:
            self.daphne.kill()
            self.daphne.wait()
        return time.monotonic() - started

    def start_celery(self) -> None:
        celery = [sys.executable, "-m", "celery", "-A", "evplatform"]
        self.others.append(
            self._spawn(
                [
                    *celery,
                    "worker",
                    "-Q",
                    "celery,events,ocpp,energy,exports,billing,roaming",
                    "--concurrency",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                ],
                "worker.log",
            )
        )
        schedule = str(self.workdir / "celerybeat-schedule")
        self.others.append(self._spawn([*celery, "beat", "--schedule", schedule], "beat.log"))

    def stop_celery(self) -> None:
        for proc in self.others:
            proc.send_signal(signal.SIGTERM)
        for proc in self.others:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


# --------------------------------------------------------------------------- the fleet


async def fleet(args: argparse.Namespace, ids: list[str], tags: list[str], platform: Platform) -> dict[str, Any]:
    from apps.ocpp.simulator import SimConfig, SimStats, run_charger

    stats = SimStats()
    finish = asyncio.Event()
    url = f"ws://127.0.0.1:{platform.port}"
    tasks = []
    started = time.monotonic()
    for n, identity in enumerate(ids):
        config = SimConfig(
            url=url,
            password=PASSWORD,
            id_tags=[tags[n // 2]],  # two chargers per token
            connectors=1,
            heartbeat=60,
            meter_interval=args.meter_interval,
            session_seconds=(args.session * 0.5, args.session * 1.5),
            idle_seconds=(2, args.idle),
            power_w=random.choice((7_400, 11_000, 22_000)),
            late_meter_values=args.late,
            abrupt_close_every=(args.abrupt_every * 0.5, args.abrupt_every * 1.5) if args.abrupt_every else None,
            stats=stats,
        )
        tasks.append(asyncio.create_task(run_charger(identity, config, finish=finish)))
        if n % 20 == 19:
            await asyncio.sleep(args.ramp * 20 / len(ids))
    duration = args.minutes * 60
    restart: dict[str, float | None] = {"downtime_s": None, "stop_s": None}
    if args.restart_at:
        await asyncio.sleep(max(duration * args.restart_at - (time.monotonic() - started), 0))
        print(f"[soak] {time.monotonic() - started:.0f} s: restarting daphne", flush=True)
        down = time.monotonic()
        restart["began_at"] = time.time()
        restart["stop_s"] = round(await asyncio.to_thread(platform.stop_daphne), 1)
        await asyncio.to_thread(platform.start_daphne)
        restart["downtime_s"] = round(time.monotonic() - down, 1)
        restart["back_at"] = time.time()
    await asyncio.sleep(max(duration - (time.monotonic() - started), 0))
    print(f"[soak] {time.monotonic() - started:.0f} s: chargers stop their sessions", flush=True)
    finish.set()
    _, pending = await asyncio.wait(tasks, timeout=args.finish_timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {"stats": stats, "unfinished_chargers": len(pending), "restart": restart}


# --------------------------------------------------------------------------- the comparison


def wait_outbox(after_id: int, timeout: float) -> float:
    from apps.core.models import OutboxDelivery

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not OutboxDelivery.objects.filter(pk__gt=after_id, state=OutboxDelivery.State.PENDING).exists():
            break
        time.sleep(1)
    return time.monotonic() - started


def compare(ids: list[str], marks: dict[str, int], run: dict[str, Any]) -> dict[str, Any]:
    from django.db.models import Count

    from apps.core.models import OutboxDelivery
    from apps.ocpp.models import MessageLog
    from apps.sessions.models import ChargingSession, SessionStatus
    from apps.stations.models import ChargePoint

    stats = run["stats"]
    cps = dict(ChargePoint.objects.filter(identity__in=ids).values_list("pk", "identity"))
    stored = {
        (cps[s.charge_point_id], s.pk): s
        for s in ChargingSession.objects.filter(pk__gt=marks["sessions"], charge_point_id__in=cps)
    }
    seen = stats.sessions
    accepted = [s for s in seen.values() if s.status == "Accepted"]
    mismatches = []
    for key, sim in seen.items():
        if not sim.stopped:
            continue
        row = stored.get(key)
        if row is None:
            mismatches.append(f"{key}: not stored")
            continue
        expected = sim.meter_stop - sim.meter_start if sim.meter_stop is not None else None
        if (
            row.meter_stop_wh != sim.meter_stop
            or row.energy_wh != expected
            or (row.last_meter_wh or 0) > (sim.meter_stop or 0)
        ):
            mismatches.append(
                f"{key}: charger {sim.meter_start}->{sim.meter_stop}, platform {row.meter_start_wh}->"
                f"{row.meter_stop_wh} energy {row.energy_wh} last {row.last_meter_wh} ({row.status})"
            )
    by_status = collections.Counter(s.status for s in stored.values())
    closed_without_stop = sum(1 for s in stored.values() if s.end_evidence)
    extra = sorted(set(stored) - set(seen))
    still_running = [k for k, s in stored.items() if s.status in (SessionStatus.ACTIVE, SessionStatus.PENDING)]

    received: set[str] = set()
    wanted = sorted(stats.answered | stats.flushed | stats.unanswered)
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        received |= set(
            MessageLog.objects.filter(
                pk__gt=marks["messages"], direction=MessageLog.Direction.IN, unique_id__in=chunk
            ).values_list("unique_id", flat=True)
        )
    lost_answered = len(stats.answered - received)
    lost_flushed = len(stats.flushed - received)
    platform_errors = dict(
        MessageLog.objects.filter(
            pk__gt=marks["messages"],
            charge_point_id__in=cps,
            direction=MessageLog.Direction.OUT,
            kind=MessageLog.Kind.ERROR,
        )
        .values_list("result")
        .annotate(n=Count("id"))
        .values_list("result", "n")
    )

    outbox = OutboxDelivery.objects.filter(pk__gt=marks["outbox"])
    events = dict(outbox.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    session_ids = {pk for (_, pk) in stored}
    started_events = {
        int(p["session_id"])
        for p in outbox.filter(event_type="SessionStarted").values_list("payload", flat=True)
        if int(p["session_id"]) in session_ids
    }
    ended_events = {
        int(p["session_id"])
        for p in outbox.filter(event_type="SessionEnded").values_list("payload", flat=True)
        if int(p["session_id"]) in session_ids
    }
    ended = {s.pk for s in stored.values() if s.status not in (SessionStatus.ACTIVE, SessionStatus.PENDING)}
    return {
        "chargers": len(ids),
        "connects": stats.connects,
        "boots": stats.boots,
        "abrupt_closes": stats.abrupt_closes,
        "late_meter_values": stats.late_meter_values,
        "resent_transaction_messages": stats.resent,
        "frames_written": stats.written,
        "frames_answered": len(stats.answered),
        "frames_flushed_before_close": len(stats.flushed),
        "frames_in_flight_at_server_close": len(stats.unanswered),
        "of_which_in_the_log": len(stats.unanswered & received),
        "timeouts": stats.timeouts,
        "given_up": stats.given_up,
        "simulator_errors": stats.simulator_errors,
        "unfinished_chargers": run["unfinished_chargers"],
        "restart": run["restart"],
        "sessions_charger_started": len(seen),
        "sessions_charger_accepted": len(accepted),
        "sessions_charger_refused": collections.Counter(s.status for s in seen.values() if s.status != "Accepted"),
        "sessions_charger_stopped": sum(1 for s in seen.values() if s.stopped),
        "sessions_platform": len(stored),
        "sessions_platform_by_status": dict(by_status),
        "sessions_platform_closed_without_stop": closed_without_stop,
        "sessions_platform_unknown_to_chargers": len(extra),
        "sessions_platform_still_running": len(still_running),
        "energy_mismatches": len(mismatches),
        "mismatch_samples": mismatches[:5],
        "energy_wh_total": sum((s.meter_stop or 0) - s.meter_start for s in seen.values() if s.stopped),
        "call_errors_by_action_code": dict(stats.call_errors),
        "call_errors_sent_by_platform": platform_errors,
        "lost_frames": lost_answered + lost_flushed,
        "lost_frames_answered": lost_answered,
        "lost_frames_flushed": lost_flushed,
        "lost_frame_samples": [  # unique id, charger, when flushed (grep daphne.log for them)
            (uid, *_when(stats.flushed_at.get(uid), run["restart"]))
            for uid in sorted((stats.answered | stats.flushed) - received)[:10]
        ],
        "events_written": sum(events.values()),
        "events_delivered": events.get(OutboxDelivery.State.DELIVERED, 0),
        "events_pending": events.get(OutboxDelivery.State.PENDING, 0),
        "events_dead": events.get(OutboxDelivery.State.DEAD, 0),
        "sessions_without_started_event": len(session_ids - started_events),
        "ended_sessions_without_ended_event": len(ended - ended_events),
    }


def _when(flushed: tuple[str, float] | None, restart: dict[str, float | None]) -> tuple[str, str]:
    if flushed is None:
        return ("?", "answered")
    identity, at = flushed
    began, back = restart.get("began_at"), restart.get("back_at")
    moment = time.strftime("%H:%M:%S", time.gmtime(at))
    if began and back and began <= at <= back:
        return (identity, f"{moment} UTC, while daphne restarted")
    return (identity, f"{moment} UTC")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chargers", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--session", type=float, default=90, help="mean session length, seconds")
    parser.add_argument("--idle", type=float, default=40, help="longest pause between sessions, seconds")
    parser.add_argument("--meter-interval", type=float, default=10)
    parser.add_argument("--late", type=float, default=0.3, help="share of stopped sessions with a late MeterValues")
    parser.add_argument("--abrupt-every", type=float, default=240, help="mean s between abrupt closes")
    parser.add_argument("--restart-at", type=float, default=0.5, help="daphne restart (share of run; 0: none)")
    parser.add_argument("--ramp", type=float, default=20, help="seconds to connect every charger")
    parser.add_argument("--finish-timeout", type=float, default=180)
    parser.add_argument("--tenant", default="", help="tenant slug (default: the first)")
    args = parser.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import logging

    logging.basicConfig(level=logging.WARNING)
    setup_django()
    logging.getLogger("apps.ocpp.simulator").setLevel(logging.WARNING)
    ids, tags = register(args.chargers, args.tenant)
    marks = high_water()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    platform = Platform(free_port(), workdir)
    print(f"[soak] {len(ids)} chargers, {len(tags)} tokens, {args.minutes} min; logs in {workdir}", flush=True)
    print(f"[soak] load averages before: {os.getloadavg()}", flush=True)
    platform.start_celery()
    platform.start_daphne()
    try:
        run = asyncio.run(fleet(args, ids, tags, platform))
    finally:
        platform.stop_daphne()
    print(f"[soak] load averages after: {os.getloadavg()}", flush=True)
    drained = wait_outbox(marks["outbox"], 180)
    platform.stop_celery()
    print(f"[soak] outbox drained in {drained:.0f} s after the run", flush=True)
    result = compare(ids, marks, run)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    internal = sum(n for k, n in result["call_errors_by_action_code"].items() if k.endswith("InternalError"))
    goals = {
        "every charger connected and charged": result["connects"] >= len(ids)
        and result["sessions_charger_started"] > 0,
        "0 energy mismatches": result["energy_mismatches"] == 0,
        "0 InternalError": internal == 0 and "InternalError" not in result["call_errors_sent_by_platform"],
        "0 lost frames": result["lost_frames"] == 0,
        "0 lost events": result["events_pending"] == 0
        and result["events_dead"] == 0
        and result["sessions_without_started_event"] == 0
        and result["ended_sessions_without_ended_event"] == 0,
        "every session stopped on both sides": result["sessions_platform_still_running"] == 0
        and result["sessions_charger_stopped"] == result["sessions_charger_started"],
    }
    for goal, ok in goals.items():
        print(f"{'PASS' if ok else 'FAIL'}  {goal}")
    sys.exit(0 if all(goals.values()) else 1)


if __name__ == "__main__":
    main()
