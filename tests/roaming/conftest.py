"""OCPI tests over real HTTP: the platform served by this process's daphne (tests/asgi_server.py) and the partner
simulator (apps/roaming/partner_sim.py) on its own port, each calling the other."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery.signals import task_postrun
from django.db import connection

from apps.ocpp.simulator import SimConfig, SimStats, run_charger
from apps.roaming.partner_sim import PartnerSimulator
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Evse, Location
from apps.tenants.models import Tenant
from tests.asgi_server import DaphneThread, daphne_server
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory


@pytest.fixture
def ocpi_base(transactional_db: None, daphne: DaphneThread, settings: object) -> str:
    base = f"http://127.0.0.1:{daphne.port}"
    settings.OCPI_BASE_URL = base  # type: ignore[attr-defined]  # what the admin/API handshake sends as ours
    return base


@pytest.fixture
def sim() -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(country_code="NL", party_id="SIM").start()
    yield simulator
    simulator.stop()


# --------------------------------------------------------------------------- CPO Receiver rigs: a charger, a worker


@dataclass
class Site:
    tenant: Tenant
    location: Location
    charge_point: ChargePoint
    password: str
    evses: list[Evse]


@pytest.fixture
def site(ocpi_base: str, tenant_a: Tenant) -> Site:
    """Our location LOC-1 with one charger of two EVSEs (OCPI EVSE uids: the EVSE numbers; EVSE ids DE*ALP*E1*n)."""
    location = LocationFactory(tenant=tenant_a, ocpi_id="LOC-1")
    charge_point, password = station_services.charge_point_register(
        tenant=tenant_a, identity="CP-ROAM-1", location=location, heartbeat_interval=60
    )
    assert password is not None
    evses = []
    for n in (1, 2):
        evse = EvseFactory(charge_point=charge_point, connector_id=n, evse_uid=f"DE*ALP*E1*{n}")
        ConnectorFactory(evse=evse)
        evses.append(evse)
    return Site(tenant_a, location, charge_point, password, evses)


class ChargerThread:
    """apps.ocpp.simulator's charger on an event loop of its own thread, against this process's daphne."""

    def __init__(self, identity: str, config: SimConfig) -> None:
        self.identity, self.config = identity, config
        self.stats = config.stats = config.stats or SimStats()
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(target=self._run, name=f"sim-{identity}", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(run_charger(self.identity, self.config, asyncio.Event()))
        with contextlib.suppress(asyncio.CancelledError):
            self.loop.run_until_complete(self.task)
        self.loop.close()

    def start(self, site: Site, timeout: float = 60) -> ChargerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        # online once each connector reported a status (a charger that starts charging at once may never be seen
        # Available by a poll on a loaded machine)
        reported = Evse.objects.filter(charge_point=site.charge_point, status_received_at__isnull=False)
        while reported.count() < self.config.connectors:
            assert time.monotonic() < deadline, "the simulated charger did not come online"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        asyncio.run(daphne_server().quiesce())


@pytest.fixture
def charger(site: Site) -> Iterator[Callable[..., ChargerThread]]:
    started: list[ChargerThread] = []

    def start(**config: Any) -> ChargerThread:
        config.setdefault("connectors", len(site.evses))
        config.setdefault("idle_seconds", (3600.0, 3600.0))  # no session of its own unless told
        config.setdefault("meter_interval", 0.5)
        config.setdefault("heartbeat", 30)
        thread = ChargerThread(
            site.charge_point.identity,
            SimConfig(url=daphne_server().url, password=site.password, **config),
        )
        started.append(thread)
        return thread.start(site)

    yield start
    for thread in started:
        thread.stop()


@pytest.fixture
def celery_worker(settings: Any) -> Iterator[str]:
    """A real Celery worker (celery.contrib.testing: a thread of this process, the test Redis as broker) consuming a
    queue of its own, where the roaming tasks of this test go."""
    from celery.contrib.testing.worker import start_worker

    from evplatform.celery import app

    def close_connection(**_: Any) -> None:  # in the worker thread, after each task: no connection left behind
        connection.close()

    queue = f"test-roaming-{uuid.uuid4().hex[:8]}"
    settings.OCPI_TASK_QUEUE = queue
    task_postrun.connect(close_connection, weak=False)
    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        queues=[queue],
        loglevel="WARNING",
        shutdown_timeout=60,
    ):
        yield queue
    task_postrun.disconnect(close_connection)


def wait_until(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.1)
