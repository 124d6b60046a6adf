"""The simulator (ocpp package client side) against the real endpoint: it boots, charges, and answers commands."""

from __future__ import annotations

import asyncio

import pytest

from apps.customers.models import Token
from apps.ocpp.models import MessageLog
from apps.ocpp.simulator import SimConfig, SimStats, run_charger
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations import services
from apps.stations.models import ChargePoint
from tests.asgi_server import flush_frame_log
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


async def test_simulator_keeps_its_transactions_across_abrupt_closes_and_sends_them_again(
    server: str, station: Station
) -> None:
    """The soak benchmark's charger: it closes its socket abruptly now and then (frames written, no answer
    awaited), reconnects without rebooting, and sends its unanswered transaction messages again: the platform
    stores every session once, with the charger's meters, and logs every frame the charger flushed."""
    await db(Token.objects.create)(tenant=station.tenant, uid="SIM-TAG")
    stats = SimStats()
    config = SimConfig(
        url=server,
        password=station.password,
        connectors=2,
        heartbeat=30,
        meter_interval=0.2,
        session_seconds=(1.0, 1.5),
        idle_seconds=(0.1, 0.3),
        power_w=3_600_000,
        id_tags=["SIM-TAG", "SIM-TAG-2"],
        late_meter_values=1.0,
        abrupt_close_every=(0.7, 1.2),
        stats=stats,
    )
    await db(Token.objects.create)(tenant=station.tenant, uid="SIM-TAG-2")
    finish = asyncio.Event()
    task = asyncio.create_task(run_charger(station.charge_point.identity, config, finish=finish))
    try:
        # generous: on a loaded machine (CI next to other jobs) a reconnect takes seconds
        await wait_for(lambda: _async_true(stats.abrupt_closes >= 3 and _stopped(stats) >= 2), timeout=120)
    finally:
        finish.set()
        await asyncio.wait_for(task, 30)
    await flush_frame_log()

    assert stats.boots == 1
    assert stats.connects > stats.abrupt_closes >= 3
    stored = {s.pk: s for s in await db(list)(ChargingSession.objects.filter(charge_point_id=station.charge_point.pk))}
    seen = {tx: s for (_, tx), s in stats.sessions.items()}
    assert set(stored) == set(seen)  # a resent StartTransaction did not make a second session
    for tx, sim in seen.items():
        assert sim.stopped
        row = stored[tx]
        assert (row.meter_start_wh, row.meter_stop_wh) == (sim.meter_start, sim.meter_stop)
        assert row.last_meter_wh <= sim.meter_stop  # the late MeterValues changed nothing
        assert row.status in (SessionStatus.COMPLETED, SessionStatus.INVALID)
    assert stats.late_meter_values >= 1
    assert stats.flushed
    logged = set(
        await db(list)(
            MessageLog.objects.filter(direction=MessageLog.Direction.IN, unique_id__in=stats.flushed).values_list(
                "unique_id", flat=True
            )
        )
    )
    assert logged == stats.flushed
    assert not [k for k in stats.call_errors if k.endswith("InternalError")]


async def test_simulator_reboots_on_reset_and_applies_charging_profiles(server: str, station: Station) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="SIM-TAG")
    stats = SimStats()
    config = SimConfig(
        url=server,
        password=station.password,
        connectors=1,
        heartbeat=30,
        meter_interval=0.2,
        session_seconds=(60, 60),
        idle_seconds=(0.1, 0.1),
        power_w=3_600_000,
        stats=stats,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_charger(station.charge_point.identity, config, stop))
    cp = station.charge_point
    try:
        await wait_for(db(ChargingSession.objects.filter(status=SessionStatus.ACTIVE).exists), timeout=15)
        running = await db(ChargingSession.objects.get)(status=SessionStatus.ACTIVE)
        profile = {
            "chargingProfileId": 7,
            "transactionId": running.pk,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7200}],
            },
        }
        set_profile = await services.send_command_async(
            charge_point=cp,
            action="SetChargingProfile",
            payload={"connectorId": 1, "csChargingProfiles": profile},
            timeout=5,
        )
        metered_at_profile = (await db(ChargingSession.objects.get)(pk=running.pk)).last_meter_wh
        await asyncio.sleep(1.0)  # five samples under the profile
        schedule = await services.send_command_async(
            charge_point=cp, action="GetCompositeSchedule", payload={"connectorId": 1, "duration": 600}, timeout=5
        )
        reset = await services.send_command_async(charge_point=cp, action="Reset", payload={"type": "Soft"}, timeout=5)
        await wait_for(lambda: _async_true(stats.boots == 2), timeout=20)
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert (set_profile.status, schedule.status, reset.status) == ("accepted", "accepted", "accepted")
    assert schedule.response["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 7200
    stopped = await db(ChargingSession.objects.get)(pk=running.pk)
    assert stopped.status == SessionStatus.COMPLETED
    assert stopped.stop_reason == "SoftReset"
    # metered at the profile's 7.2 kW (under 1 Wh per 0.2 s sample), not the 3.6 MW configured (200 Wh per
    # sample): at most the one sample taken before the profile arrived is at full power
    assert stopped.meter_stop_wh - metered_at_profile <= 200


def _stopped(stats: SimStats) -> int:
    return sum(1 for s in stats.sessions.values() if s.stopped and s.status == "Accepted")


async def _async_true(value: bool) -> bool:
    return value
