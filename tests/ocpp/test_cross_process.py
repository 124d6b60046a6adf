"""Two real daphne processes on real Redis: a command from one process reaches a charger whose socket another
process holds, and a reconnect to the other process replaces the old socket (the newest wins)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async

from apps.stations import services
from apps.stations.models import ChargePoint, Command
from tests.ocpp.conftest import Station, db, open_charger, wait_for
from tests.ocpp.processes import Daphne
from tests.tenants.factories import api_key_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def daphnes(transactional_db: None) -> Iterator[tuple[Daphne, Daphne]]:
    first, second = Daphne(), Daphne()
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


async def test_command_from_one_process_reaches_charger_on_another(
    station: Station, daphnes: tuple[Daphne, Daphne]
) -> None:
    a, b = daphnes
    charger = await open_charger(a.url, station.charge_point.identity, station.password)
    charger.answers["Reset"] = {"status": "Accepted"}
    charger.answers["GetConfiguration"] = {"configurationKey": [{"key": "K", "readonly": True, "value": "v"}]}
    await charger.ok("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    _, raw_key = await db(api_key_for)(station.tenant, ["*"])

    # process B (an API request) commands the charger held by process A
    def post_to_b() -> tuple[int, dict[str, object]]:
        import requests

        response = requests.post(
            f"http://127.0.0.1:{b.port}/api/v1/charge-points/{station.charge_point.pk}/commands/reset/",
            json={"type": "Soft"},
            headers={"Authorization": f"Api-Key {raw_key}"},
            timeout=30,
        )
        return response.status_code, response.json()

    status_code, body = await sync_to_async(post_to_b, thread_sensitive=False)()
    # and this (third) process commands it too
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    command = await services.send_command_async(charge_point=cp, action="GetConfiguration", payload={}, timeout=10)

    assert status_code == 200, body
    assert (body["action"], body["status"], body["response"]) == ("Reset", "accepted", {"status": "Accepted"})
    assert command.status == "accepted"
    assert [c[2] for c in charger.received_calls] == ["Reset", "GetConfiguration"]
    await charger.close()


async def test_reconnect_to_another_process_replaces_the_old_socket(
    station: Station, daphnes: tuple[Daphne, Daphne]
) -> None:
    a, b = daphnes
    old = await open_charger(a.url, station.charge_point.identity, station.password)
    await old.ok("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})

    new = await open_charger(b.url, station.charge_point.identity, station.password)
    new.answers["ClearCache"] = {"status": "Accepted"}
    assert old._reader is not None
    await asyncio.wait_for(asyncio.gather(old._reader, return_exceptions=True), 10)
    await asyncio.sleep(0.3)
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    command = await services.send_command_async(charge_point=cp, action="ClearCache", payload={}, timeout=10)

    assert (old.ws.close_code, old.ws.close_reason) == (1000, "Replaced by a newer connection")
    assert cp.online is True
    assert command.status == "accepted"
    assert [c[2] for c in new.received_calls] == ["ClearCache"]
    await new.close()
    await wait_for(db(lambda: not ChargePoint.objects.get(pk=station.charge_point.pk).online), timeout=10)
    assert await db(Command.objects.count)() == 1
