"""End to end: a simulated OCPP charger (apps/ocpp/simulator.py) boots on our daphne and reports its connectors'
status; the partner simulator, registered with the charger's tenant, receives the EVSE PATCH over HTTP.

The push task runs eagerly here (no Celery worker in this test): the hop through the broker is Celery's own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from apps.ocpp.simulator import SimConfig, run_charger
from apps.roaming.partner_sim import PartnerSimulator
from evplatform.celery import app as celery_app
from tests.ocpp.conftest import Station, db, server, station, wait_for
from tests.roaming.factories import partner_for

__all__ = ["server", "station"]  # fixtures of the OCPP tests, used here

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


async def test_a_status_notification_from_a_simulated_charger_reaches_the_partner(
    server: str, station: Station, ocpi_base: str, sim: PartnerSimulator, eager_tasks: None
) -> None:
    partner, token_a = await db(partner_for)(station.tenant, country_code="NL", party_id="SIM")
    answer = await asyncio.to_thread(sim.register_with, f"{ocpi_base}/ocpi/versions", token_a)
    assert answer["status_code"] == 1000, answer
    evse_pks = {str(c.evse_id) for c in station.connectors}
    config = SimConfig(url=server, password=station.password, connectors=2, heartbeat=30, idle_seconds=(30, 30))

    def patched() -> dict[str, Any]:
        return {
            r.path.rsplit("/", 1)[1]: r.body
            for r in list(sim.received)
            if r.method == "PATCH" and "/locations/" in r.path
        }

    stop = asyncio.Event()
    task = asyncio.create_task(run_charger(station.charge_point.identity, config, stop))
    try:
        # the charger reports connector 0 (its EVSEs are pushed with their stored status, Unknown yet), then 1 and 2
        await wait_for(db(lambda: {patched().get(pk, {}).get("status") for pk in evse_pks} == {"AVAILABLE"}), 30)
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    bodies = patched()
    paths = [r.path for r in sim.received if r.method == "PATCH"]
    assert all(path.startswith("/ocpi/emsp/2.2.1/locations/DE/OWN/") for path in paths)
    assert all(set(bodies[pk]) == {"status", "last_updated"} for pk in evse_pks)
    assert partner.party == "NL*SIM"
