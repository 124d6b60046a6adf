"""The simulator (ocpp package client side) against the real endpoint: it boots, charges, and answers commands."""

from __future__ import annotations

import asyncio

import pytest

from apps.customers.models import Token
from apps.ocpp.simulator import SimConfig, run_charger
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations import services
from apps.stations.models import ChargePoint
from tests.ocpp.conftest import Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_simulated_charger_runs_sessions_and_answers_every_command(server: str, station: Station) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="SIM-TAG")
    config = SimConfig(
        url=server,
        password=station.password,
        connectors=1,
        heartbeat=0.5,
        meter_interval=0.2,
        session_seconds=(0.6, 0.6),
        idle_seconds=(0.1, 0.2),
        power_w=3_600_000,  # 200 Wh per 0.2 s sample
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_charger(station.charge_point.identity, config, stop))
    try:
        await wait_for(db(ChargingSession.objects.filter(status=SessionStatus.COMPLETED).exists), timeout=15)
        cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
        results = {}
        for action, payload in [
            ("GetConfiguration", {}),
            ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}),
            ("TriggerMessage", {"requestedMessage": "Heartbeat"}),
            ("SendLocalList", {"listVersion": 3, "updateType": "Full"}),
            ("GetLocalListVersion", {}),
            ("UnlockConnector", {"connectorId": 1}),
            ("ClearCache", {}),
            ("Reset", {"type": "Soft"}),
        ]:
            results[action] = (
                await services.send_command_async(charge_point=cp, action=action, payload=payload, timeout=5)
            ).status
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert set(results.values()) == {"accepted"}, results
    session = await db(ChargingSession.objects.filter(status=SessionStatus.COMPLETED).first)()
    assert session.energy_wh == session.meter_stop_wh - session.meter_start_wh
    assert session.energy_wh > 0
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.vendor, cp.local_list_version) == ("EVP-Sim", 3)
