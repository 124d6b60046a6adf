"""Real chargers misbehave: CallErrors with the 1.6 codes (socket stays up), the lenient flag, repeated unique
ids, registration states, vendor DataTransfer hooks, and the newest connection of a charger wins."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from apps.ocpp.central import DATA_TRANSFER_HANDLERS, data_transfer_handler
from apps.ocpp.models import MessageLog
from apps.sessions.models import ChargingSession, MeterValue
from apps.stations import services
from apps.stations.models import ChargePoint, Command
from apps.stations.services import Handshake
from tests.asgi_server import flush_frame_log
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
START = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2026-03-01T12:00:00Z"}

# frame sent, expected CallError code
BAD_CALLS: list[tuple[str, str]] = [
    ('[2, "e1", "StatusNotification", {"connectorId": 1, "status": "Available"}]', "OccurenceConstraintViolation"),
    (
        '[2, "e2", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", "status": "Available"}]',
        "TypeConstraintViolation",
    ),
    (
        '[2, "e3", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"}]',
        "PropertyConstraintViolation",
    ),
    ('[2, "e4", "Heartbeat", {"extra": 1}]', "FormationViolation"),
    (
        '[2, "e5", "BootNotification", {"chargePointVendor": "' + "V" * 30 + '", "chargePointModel": "M"}]',
        "TypeConstraintViolation",
    ),
    (
        '[2, "e6", "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"}]',
        "PropertyConstraintViolation",
    ),
    ('[2, "e7", "GetConfiguration", {}]', "NotImplemented"),
    ('[2, "e8", "SomethingElse", {}]', "NotSupported"),
    ('[2, "e9", "Heartbeat", {"broken": ]', "FormationViolation"),
]


async def test_invalid_calls_get_the_spec_call_error_and_socket_stays_up(
    station: Station, connect: ConnectCharger
) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)

    answers = [await charger.send_raw(frame, f"e{n}") for n, (frame, _) in enumerate(BAD_CALLS, start=1)]
    still_up = await charger.ok("Heartbeat", {})

    assert [(a[0], a[2]) for a in answers] == [(4, code) for _, code in BAD_CALLS]
    assert "currentTime" in still_up
    assert await db(ChargingSession.objects.count)() == 0


async def test_lenient_charger_quirks_are_accepted_with_warning_strict_ones_refused(
    station: Station, connect: ConnectCharger
) -> None:
    quirky = {
        "connectorId": "1",
        "transactionId": None,
        "meterValue": [
            {
                "timestamp": "2026-03-01T12:05:00Z",
                "sampledValue": [
                    {"value": 1500, "context": "Sample.Whatever", "measurand": "Energy.Active.Import.Register"},
                    {"value": "3", "measurand": "Vendor.Specific.Thing"},
                ],
            }
        ],
    }
    del quirky["transactionId"]
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    strict = await charger.call("MeterValues", quirky, unique_id="strict-1")
    await db(ChargePoint.objects.filter(pk=station.charge_point.pk).update)(lenient=True)
    await charger.close()
    charger = await connect(station.charge_point.identity, station.password)

    lenient = await charger.call("MeterValues", quirky, unique_id="lenient-1")
    await flush_frame_log()

    assert strict[0] == 4
    assert strict[2] == "TypeConstraintViolation"
    assert lenient == [3, "lenient-1", {}]
    values = await db(lambda: list(MeterValue.objects.values_list("measurand", "value", "context")))()
    assert [(m, int(v), c) for m, v, c in values] == [("Energy.Active.Import.Register", 1500, "")]
    row = await db(MessageLog.objects.get)(unique_id="lenient-1", direction="in")
    assert row.payload == quirky  # the raw frame is kept
    assert "connectorId: number sent as string" in row.warning
    assert "string sent as number" in row.warning
    assert "unknown value 'Sample.Whatever' ignored" in row.warning
    assert "unknown measurand 'Vendor.Specific.Thing' not stored" in row.warning


async def test_repeated_unique_id_is_answered_idempotently(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)

    first = await charger.call("StartTransaction", START, unique_id="tx-start")
    second = await charger.call("StartTransaction", {**START, "meterStart": 5}, unique_id="tx-start")

    assert first == second
    assert await db(ChargingSession.objects.count)() == 1


async def test_pending_charger_may_only_boot_and_heartbeat(station: Station, connect: ConnectCharger) -> None:
    await db(ChargePoint.objects.filter(pk=station.charge_point.pk).update)(registration_status="Pending")
    charger = await connect(station.charge_point.identity, station.password)

    boot = await charger.ok("BootNotification", BOOT)
    refused = await charger.call("StartTransaction", START)
    await db(ChargePoint.objects.filter(pk=station.charge_point.pk).update)(registration_status="Accepted")
    accepted = await charger.ok("BootNotification", BOOT)
    started = await charger.call("StartTransaction", START)

    assert boot["status"] == "Pending"
    assert refused[0] == 4
    assert refused[2] == "SecurityError"
    assert accepted["status"] == "Accepted"
    assert started[0] == 3


async def test_unknown_charger_auto_registers_pending_when_allowed(
    station: Station, connect: ConnectCharger, settings: Any
) -> None:
    settings.OCPP_AUTO_REGISTER_TENANT = station.tenant.slug
    charger = await connect("NEW-BOX-7", None)

    boot = await charger.ok("BootNotification", {"chargePointVendor": "ABB", "chargePointModel": "Terra"})

    assert boot["status"] == "Pending"
    cp = await db(ChargePoint.objects.get)(identity="NEW-BOX-7")
    assert (cp.tenant_id, cp.registration_status, cp.vendor, cp.password_hash) == (
        station.tenant.pk,
        "Pending",
        "ABB",
        "",
    )


async def test_data_transfer_from_charger_goes_to_vendor_hook(station: Station, connect: ConnectCharger) -> None:
    seen: list[tuple[str, Any, Any]] = []

    @data_transfer_handler("com.example", "Echo")
    async def echo(handshake: Handshake, message_id: str | None, data: str | None) -> tuple[str, str | None]:
        seen.append((handshake.identity, message_id, data))
        return "Accepted", (data or "")[::-1]

    try:
        charger = await connect(station.charge_point.identity, station.password)
        await charger.ok("BootNotification", BOOT)
        hooked = await charger.ok("DataTransfer", {"vendorId": "com.example", "messageId": "Echo", "data": "abc"})
        other_message = await charger.ok("DataTransfer", {"vendorId": "com.example", "messageId": "Nope"})
        other_vendor = await charger.ok("DataTransfer", {"vendorId": "org.unknown"})
    finally:
        DATA_TRANSFER_HANDLERS.pop(("com.example", "Echo"), None)

    assert hooked == {"status": "Accepted", "data": "cba"}
    assert other_message == {"status": "UnknownMessageId"}
    assert other_vendor == {"status": "UnknownVendorId"}
    assert seen == [(station.charge_point.identity, "Echo", "abc")]


async def test_reconnect_replaces_old_socket_and_commands_go_to_newest(
    station: Station, connect: ConnectCharger
) -> None:
    old = await connect(station.charge_point.identity, station.password)
    await old.ok("BootNotification", BOOT)

    new = await connect(station.charge_point.identity, station.password)
    new.answers["Reset"] = {"status": "Accepted"}
    assert old._reader is not None
    await asyncio.wait_for(old._reader, 5)  # ends when the server closes the old socket
    await asyncio.sleep(0.2)  # the old socket's disconnect must not mark the charger offline
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    command = await services.send_command_async(charge_point=cp, action="Reset", payload={"type": "Soft"}, timeout=5)

    assert (old.ws.close_code, old.ws.close_reason) == (1000, "Replaced by a newer connection")
    assert cp.online is True
    assert command.status == "accepted"
    assert [c[2] for c in new.received_calls] == ["Reset"]
    assert await db(Command.objects.filter(status="accepted").count)() == 1


async def test_remote_start_leads_to_a_transaction(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)

    def remote_start(payload: dict[str, Any]) -> dict[str, str]:
        start = {
            "connectorId": payload["connectorId"],
            "idTag": payload["idTag"],
            "meterStart": 10,
            "timestamp": "2026-03-01T12:00:00Z",
        }
        asyncio.get_running_loop().create_task(charger.call("StartTransaction", start))
        return {"status": "Accepted"}

    charger.answers["RemoteStartTransaction"] = remote_start
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)

    command = await services.send_command_async(
        charge_point=cp, action="RemoteStartTransaction", payload={"connectorId": 2, "idTag": "APP-1"}, timeout=5
    )
    await wait_for(db(ChargingSession.objects.exists))

    assert command.status == "accepted"
    session = await db(ChargingSession.objects.get)()
    assert (session.connector_id, session.id_tag, session.meter_start_wh) == (2, "APP-1", 10)
    assert json.loads(json.dumps(command.payload)) == {"connectorId": 2, "idTag": "APP-1"}
