"""Central system -> charger: every server-initiated 1.6 action through `send_command`, over a real WebSocket,
with the answers' effects, CallError/timeout/offline outcomes; and the firmware/diagnostics file endpoints."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test import Client

from apps.stations import services
from apps.stations.models import (
    ChargePoint,
    ChargingProfile,
    Command,
    CommandEvent,
    CommandStatus,
    DiagnosticsUpload,
    FirmwareCampaignTarget,
    FirmwareImage,
    LocalListEntry,
)
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PROFILE = {
    "chargingProfileId": 7,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]},
}

# action, payload, charger's answer, expected command status
CASES: list[tuple[str, dict[str, Any], Any, str]] = [
    ("CancelReservation", {"reservationId": 3}, {"status": "Accepted"}, "accepted"),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, {"status": "Scheduled"}, "accepted"),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "60"}, {"status": "Rejected"}, "rejected"),
    ("ClearCache", {}, {"status": "Accepted"}, "accepted"),
    (
        "DataTransfer",
        {"vendorId": "com.alfen", "messageId": "Ping", "data": "x"},
        {"status": "UnknownVendorId"},
        "rejected",
    ),
    (
        "GetCompositeSchedule",
        {"connectorId": 1, "duration": 3600},
        {"status": "Accepted", "connectorId": 1},
        "accepted",
    ),
    ("GetLocalListVersion", {}, {"listVersion": 12}, "accepted"),
    ("RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG1"}, {"status": "Accepted"}, "accepted"),
    ("RemoteStopTransaction", {"transactionId": 44}, {"status": "Rejected"}, "rejected"),
    (
        "ReserveNow",
        {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "TAG1", "reservationId": 3},
        {"status": "Occupied"},
        "rejected",
    ),
    ("Reset", {"type": "Soft"}, {"status": "Accepted"}, "accepted"),
    (
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        {"status": "Accepted"},
        "accepted",
    ),
    ("UnlockConnector", {"connectorId": 2}, {"status": "Unlocked"}, "accepted"),
    ("UpdateFirmware", {"location": "http://x/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z"}, {}, "accepted"),
]


async def online_charger(station: Station, connect: ConnectCharger, **answers: Any) -> Any:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers.update(answers)
    await charger.ok("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    return charger


async def send(station: Station, action: str, payload: dict[str, Any], timeout: float = 5) -> Command:
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    return await services.send_command_async(
        charge_point=cp, action=action, payload=payload, timeout=timeout, source="test"
    )


async def test_every_command_reaches_charger_and_answer_is_stored(station: Station, connect: ConnectCharger) -> None:
    charger = await online_charger(station, connect, **{action: answer for action, _, answer, _ in CASES})

    for action, payload, answer, expected in CASES:
        command = await send(station, action, payload)

        assert charger.received_calls[-1][2:] == [action, payload], action
        assert (command.action, command.status, command.response) == (action, expected, answer)
        assert command.completed_at is not None
        events = await db(
            lambda c=command: list(CommandEvent.objects.filter(command=c).values_list("status", flat=True))
        )()
        assert events == ["queued", "sent", expected], action
    assert len(charger.received_calls) == len(CASES)


async def test_get_and_change_configuration_keep_a_snapshot(station: Station, connect: ConnectCharger) -> None:
    keys = [
        {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
        {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
        {"key": "AuthorizationKey", "readonly": False, "value": "secret"},
    ]
    await online_charger(
        station,
        connect,
        GetConfiguration={"configurationKey": keys, "unknownKey": []},
        ChangeConfiguration={"status": "Accepted"},
    )

    read = await send(station, "GetConfiguration", {})
    changed = await send(station, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"})

    assert (read.status, changed.status) == ("accepted", "accepted")
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert cp.configuration == {
        "HeartbeatInterval": {"value": "120", "readonly": False},
        "NumberOfConnectors": {"value": "2", "readonly": True},
    }
    assert cp.heartbeat_interval == 120
    assert cp.configuration_read_at is not None


async def test_send_local_list_full_then_differential(station: Station, connect: ConnectCharger) -> None:
    await online_charger(station, connect, SendLocalList={"status": "Accepted"})
    full = {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": "A", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "B", "idTagInfo": {"status": "Blocked"}},
        ],
    }
    diff = {
        "listVersion": 2,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idTag": "A"},
            {"idTag": "C", "idTagInfo": {"status": "Accepted", "parentIdTag": "G"}},
        ],
    }

    await send(station, "SendLocalList", full)
    await send(station, "SendLocalList", diff)

    entries = await db(
        lambda: list(
            LocalListEntry.objects.filter(charge_point=station.charge_point).values_list(
                "id_tag", "status", "parent_id_tag"
            )
        )
    )()
    assert entries == [("B", "Blocked", ""), ("C", "Accepted", "G")]
    assert (await db(ChargePoint.objects.get)(pk=station.charge_point.pk)).local_list_version == 2


async def test_charging_profiles_are_stored_and_cleared(station: Station, connect: ConnectCharger) -> None:
    await online_charger(
        station, connect, SetChargingProfile={"status": "Accepted"}, ClearChargingProfile={"status": "Accepted"}
    )

    set_ = await send(station, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": PROFILE})
    stored = await db(lambda: list(ChargingProfile.objects.values_list("profile_id", "connector_id", "purpose")))()
    cleared = await send(station, "ClearChargingProfile", {"id": 7})

    assert (set_.status, cleared.status) == ("accepted", "accepted")
    assert stored == [(7, 1, "TxDefaultProfile")]
    assert await db(ChargingProfile.objects.count)() == 0


async def test_call_error_answer_timeout_and_offline(station: Station, connect: ConnectCharger) -> None:
    charger = await online_charger(station, connect, Reset=NotImplementedError("no"), ClearCache=None)

    errored = await send(station, "Reset", {"type": "Hard"})
    timed_out = await send(station, "ClearCache", {}, timeout=0.5)
    await charger.close()
    await wait_for(db(lambda: not ChargePoint.objects.get(pk=station.charge_point.pk).online))
    with pytest.raises(services.ChargePointOffline) as offline:
        await send(station, "Reset", {"type": "Soft"})

    assert errored.status == "error"
    assert errored.error.startswith("NotSupported")
    assert timed_out.status == "timeout"
    assert offline.value.code == "charge_point_offline"
    statuses = await db(lambda: list(Command.objects.order_by("id").values_list("action", "status")))()
    assert statuses == [("Reset", "error"), ("ClearCache", "timeout"), ("Reset", "offline")]


async def test_invalid_command_payload_is_refused_before_anything_is_recorded(station: Station) -> None:
    with pytest.raises(services.InvalidCommand) as refused:
        await send(station, "Reset", {"type": "Sideways"})

    assert refused.value.code == "validation_error"
    assert refused.value.fields == {"type": ["'Sideways' is not one of: Hard, Soft."]}
    assert await db(Command.objects.count)() == 0


async def test_a_charger_that_answers_then_closes_leaves_the_caller_its_committed_answer(
    station: Station, connect: ConnectCharger
) -> None:
    """The charger answers and drops its socket while its answer is being stored (the row is held by another
    transaction for a second): the caller gets the stored final result, never `sent` with no response."""
    locked, release = threading.Event(), threading.Event()

    def hold_the_command_row() -> None:
        try:
            with transaction.atomic():
                list(Command.objects.select_for_update().filter(action="Reset"))
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    charger = await online_charger(station, connect)

    def answer_then_close(_payload: dict[str, Any]) -> dict[str, str]:
        threading.Thread(target=hold_the_command_row, daemon=True).start()
        assert locked.wait(5)
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: loop.create_task(charger.ws.close()))
        loop.call_later(1.0, release.set)
        return {"status": "Accepted"}

    charger.answers["Reset"] = answer_then_close

    command = await send(station, "Reset", {"type": "Hard"}, timeout=5)

    assert (command.status, command.response, command.error) == ("accepted", {"status": "Accepted"}, "")
    events = await db(lambda: list(CommandEvent.objects.filter(command=command).values_list("status", flat=True)))()
    assert events == ["queued", "sent", "accepted"]


async def test_commands_to_one_charger_are_sent_one_at_a_time(station: Station, connect: ConnectCharger) -> None:
    charger = await online_charger(station, connect)
    in_flight = 0
    most = 0

    async def slow_answer(frame_id: str) -> None:
        nonlocal in_flight
        await asyncio.sleep(0.1)
        in_flight -= 1
        await charger.ws.send(f'[3, "{frame_id}", {{"status": "Accepted"}}]')

    def answer(_payload: dict[str, Any]) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        asyncio.get_running_loop().create_task(slow_answer(charger.received_calls[-1][1]))

    charger.answers["ClearCache"] = answer

    results = await asyncio.gather(*(send(station, "ClearCache", {}) for _ in range(3)))

    assert [c.status for c in results] == ["accepted"] * 3
    assert most == 1


async def test_firmware_campaign_progress_follows_status_notifications(
    station: Station, connect: ConnectCharger
) -> None:
    charger = await online_charger(station, connect, UpdateFirmware={})
    image = await db(FirmwareImage.objects.create)(
        tenant=station.tenant, name="Eve", version="6.2.0", file=ContentFile(b"FIRMWARE", name="eve-6.2.0.bin")
    )
    campaign = await db(services.firmware_campaign_create)(
        tenant=station.tenant, name="Spring", firmware=image, charge_points=[station.charge_point]
    )

    await db(services.firmware_campaign_run)(campaign=campaign, base_url="http://testserver")
    location = charger.received_calls[-1][3]["location"]
    download = await db(lambda: Client().get(location.removeprefix("http://testserver")))()
    await charger.ok("FirmwareStatusNotification", {"status": "Downloading"})
    await charger.ok("FirmwareStatusNotification", {"status": "Installed"})

    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"FIRMWARE"  # type: ignore[attr-defined]
    target = await db(FirmwareCampaignTarget.objects.get)(campaign=campaign)
    assert target.state == "Installed"
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert cp.firmware_status == "Installed"


async def test_get_diagnostics_and_upload(station: Station, connect: ConnectCharger) -> None:
    charger = await online_charger(station, connect, GetDiagnostics={"fileName": "diag.zip"})

    upload, command = await sync_to_async(services.diagnostics_request)(
        charge_point=station.charge_point, base_url="http://testserver", retries=1
    )
    location = charger.received_calls[-1][3]["location"]
    posted = await db(
        lambda: Client().put(
            location.removeprefix("http://testserver") + "diag.zip", b"LOGS", content_type="application/zip"
        )
    )()
    again = await db(
        lambda: Client().put(location.removeprefix("http://testserver") + "diag.zip", b"X", content_type="x")
    )()
    await charger.ok("DiagnosticsStatusNotification", {"status": "Uploaded"})

    assert command.status == "accepted"
    assert charger.received_calls[-1][3]["retries"] == 1
    assert (posted.status_code, again.status_code) == (201, 409)
    stored = await db(DiagnosticsUpload.objects.get)(pk=upload.pk)
    assert (stored.file_name, stored.size, stored.command_id) == ("diag.zip", 4, command.pk)
    assert (await db(ChargePoint.objects.get)(pk=station.charge_point.pk)).diagnostics_status == "Uploaded"
    assert command.status == CommandStatus.ACCEPTED
