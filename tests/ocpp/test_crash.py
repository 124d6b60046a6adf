"""kill -9 of daphne in the middle of a transaction loses nothing: the charger reconnects to the restarted
server, sends what it queued (and resends what was unanswered), the transaction finishes, energy is exact.

No Celery worker takes part in the transaction path (every OCPP message is committed by the consumer's
process before the charger gets its answer), so there is no worker to kill for this flow."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from apps.customers.models import Token
from apps.sessions.models import ChargingSession, MeterValue, SessionStatus
from apps.stations.models import ChargePoint
from tests.ocpp.conftest import Charger, Station, db, open_charger
from tests.ocpp.processes import Daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.fixture
def daphne(transactional_db: None) -> Iterator[Daphne]:
    server = Daphne()
    try:
        yield server.start()
    finally:
        server.stop()


def meter(tx: int, minute: int, wh: int) -> dict[str, object]:
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [{"timestamp": f"2026-03-01T12:{minute:02d}:00Z", "sampledValue": [{"value": str(wh)}]}],
    }


async def reconnect(daphne: Daphne, station: Station, attempts: int = 100) -> Charger:
    for _ in range(attempts):
        try:
            return await open_charger(daphne.url, station.charge_point.identity, station.password)
        except OSError:
            await asyncio.sleep(0.2)
    raise AssertionError("charger could not reconnect")


async def test_kill_9_mid_transaction_then_restart_loses_nothing(station: Station, daphne: Daphne) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await open_charger(daphne.url, station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": "2026-03-01T12:00:00Z"}
    tx = (await charger.ok("StartTransaction", start))["transactionId"]
    await charger.ok("MeterValues", meter(tx, 5, 2000))

    # the server dies without any chance to clean up; the charger keeps charging and queues its messages
    daphne.kill9()
    await asyncio.gather(charger._reader or asyncio.sleep(0), return_exceptions=True)
    queued = [("MeterValues", meter(tx, 5, 2000)), ("MeterValues", meter(tx, 10, 3000))]  # first one: answer lost
    stop = {"transactionId": tx, "meterStop": 5000, "timestamp": "2026-03-01T12:20:00Z", "reason": "EVDisconnected"}
    daphne.start()

    charger = await reconnect(daphne, station)
    await charger.ok("BootNotification", BOOT)
    await charger.ok("StartTransaction", start)  # a charger unsure whether its start arrived resends it
    for action, payload in queued:
        await charger.ok(action, payload)
    stopped = await charger.ok("StopTransaction", stop)
    resent_stop = await charger.ok("StopTransaction", stop)
    await charger.close()

    assert stopped == resent_stop == {}
    session = await db(ChargingSession.objects.get)(pk=tx)
    assert session.status == SessionStatus.COMPLETED
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (1000, 5000, 4000)
    assert await db(ChargingSession.objects.count)() == 1
    readings = await db(
        lambda: sorted(int(v) for v in MeterValue.objects.filter(session=session).values_list("value", flat=True))
    )()
    assert readings == [2000, 3000]
    assert (await db(ChargePoint.objects.get)(pk=station.charge_point.pk)).last_boot_at is not None
