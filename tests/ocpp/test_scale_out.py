"""The horizontal shape, run for real: HAProxy (docker/haproxy.cfg) in front of two daphne processes, two Celery
workers on different queues (one of them reading from a streaming replica), all on one database and one Redis.
A charger's session starts through one process and, after that process is stopped (a rolling restart), stops
through the other; the session's export is then served from the replica."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from asgiref.sync import sync_to_async
from django.db import connection

from apps.customers.models import Token
from apps.sessions.models import ChargingSession, SessionStatus
from tests.ocpp.conftest import Charger, Station, db, open_charger
from tests.ocpp.processes import CeleryWorker, Daphne, HAProxy
from tests.replica import Replica, wait_replayed
from tests.reports.factories import make_sessions
from tests.tenants.factories import api_key_for

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs Debian's haproxy (make test installs it)"),
]

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
WORK_QUEUES = ("celery", "events", "ocpp", "energy", "billing", "roaming")


@dataclass
class Cluster:
    lb: HAProxy
    webs: dict[str, Daphne]
    workers: list[CeleryWorker]
    replica: Replica


@pytest.fixture
def cluster(streaming_replica: Replica) -> Iterator[Cluster]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"  # queues of their own on the shared test Redis
    env = {"CELERY_QUEUE_PREFIX": prefix, "EVENTS_OUTBOX_KICK_KEY": f"{prefix}outbox-kick"}
    replica_url = streaming_replica.url(connection.settings_dict["NAME"])
    web1, web2 = Daphne(env=env), Daphne(env=env)
    lb = HAProxy(web1, web2)
    workers = [
        CeleryWorker([prefix + queue for queue in WORK_QUEUES], env),
        CeleryWorker([prefix + "exports"], {**env, "DATABASE_REPLICA_URL": replica_url}),
    ]
    try:
        web1.start()
        web2.start()
        lb.start()
        for worker in workers:
            worker.start()
        yield Cluster(lb, {"web1": web1, "web2": web2}, workers, streaming_replica)
    finally:
        for process in [lb, *workers, web1, web2]:
            process.stop()


async def connect_through(lb: HAProxy, station: Station, attempts: int = 150) -> tuple[Charger, str]:
    """The charger connects through the load balancer; also which process took it (HAProxy's header)."""
    for _ in range(attempts):
        try:
            charger = await open_charger(lb.url, station.charge_point.identity, station.password)
        except Exception:  # noqa: BLE001 (refused, reset or 503 while a process goes away)
            await asyncio.sleep(0.2)
            continue
        return charger, charger.ws.response.headers["X-EVP-Backend"]
    raise AssertionError("the charger could not connect through the load balancer")


def _api(lb: HAProxy, key: str, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(
        method, f"{lb.http}{path}", headers={"Authorization": f"Api-Key {key}"}, timeout=30, **kwargs
    )
    assert response.status_code < 300, (response.status_code, response.text[:500])
    return response


def export_through(lb: HAProxy, key: str, workers: list[CeleryWorker]) -> list[dict[str, str]]:
    job = _api(lb, key, "POST", "/api/v1/exports/", json={"format": "csv"}).json()
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert all(worker.alive() for worker in workers), "a worker exited"
        assert time.monotonic() < deadline, f"export still {job['status']} after 120 s"
        time.sleep(0.3)
        job = _api(lb, key, "GET", f"/api/v1/exports/{job['id']}/").json()
    assert job["status"] == "done", job
    link = _api(lb, key, "GET", f"/api/v1/exports/{job['id']}/download/").json()
    url = urlsplit(link["url"])
    body = _api(lb, key, "GET", f"{url.path}?{url.query}").content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_a_session_moves_between_processes_and_its_export_comes_from_the_replica(
    station: Station, cluster: Cluster
) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG-LB")
    _, key = await db(api_key_for)(station.tenant, ["*"])

    charger, first = await connect_through(cluster.lb, station)
    await charger.ok("BootNotification", BOOT)
    start = {"connectorId": 1, "idTag": "TAG-LB", "meterStart": 1000, "timestamp": "2026-03-01T12:00:00Z"}
    tx = (await charger.ok("StartTransaction", start))["transactionId"]
    meter = {"value": "3000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    values = {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [{"timestamp": "2026-03-01T12:30:00Z", "sampledValue": [meter]}],
    }
    await charger.ok("MeterValues", values)

    # a rolling restart: the process holding the charger stops; the charger comes back through the balancer
    await sync_to_async(cluster.webs[first].stop, thread_sensitive=False)()
    assert charger._reader is not None
    await asyncio.wait_for(asyncio.gather(charger._reader, return_exceptions=True), 30)
    charger, second = await connect_through(cluster.lb, station)
    stop = {"transactionId": tx, "idTag": "TAG-LB", "meterStop": 5000, "timestamp": "2026-03-01T13:00:00Z"}
    await charger.ok("StopTransaction", stop)
    await charger.close()

    session = await db(ChargingSession.objects.get)(pk=tx)
    assert second != first
    assert (session.status, session.meter_stop_wh - session.meter_start_wh) == (SessionStatus.COMPLETED, 4000)

    # the export worker reads the replica: frozen, it has the session but not what the primary got afterwards
    standby = await sync_to_async(cluster.replica.connect)(connection.settings_dict["NAME"])
    try:
        await sync_to_async(wait_replayed)(standby)
        await sync_to_async(standby.execute)("SELECT pg_wal_replay_pause()")
        late = (await db(make_sessions)(station.tenant, 1, first=90))[0]

        rows = await sync_to_async(export_through, thread_sensitive=False)(cluster.lb, key, cluster.workers)
    finally:
        await sync_to_async(standby.execute)("SELECT pg_wal_replay_resume()")
        await sync_to_async(standby.close)()

    await db(lambda: connection.close())()  # the executor thread's connection (else it outlives the test database)

    exported = {row["Session id"]: row for row in rows}
    assert str(session.pk) in exported
    assert str(late.pk) not in exported
