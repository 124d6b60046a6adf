"""Core profile, charger -> central system, over a real WebSocket against the ASGI application."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.core import metrics
from apps.customers.models import Token
from apps.ocpp.models import MessageLog
from apps.sessions.models import ChargingSession, MeterValue, SessionStatus, TransactionAnomaly
from apps.stations.models import ChargePoint, Evse, StatusEvent
from tests.asgi_server import flush_frame_log
from tests.ocpp.conftest import ConnectCharger, Station, db

pytestmark = pytest.mark.django_db(transaction=True)

BOOT = {
    "chargePointVendor": "Alfen",
    "chargePointModel": "Eve Double",
    "chargePointSerialNumber": "ACE0001",
    "chargeBoxSerialNumber": "BOX-1",
    "firmwareVersion": "6.1.0",
    "iccid": "8949000000000000001",
    "imsi": "262010000000001",
    "meterType": "Eastron SDM630",
    "meterSerialNumber": "MTR-9",
}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def test_boot_heartbeat_and_status_are_stored(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    assert charger.ws.subprotocol == "ocpp1.6"

    boot = await charger.ok("BootNotification", BOOT)
    beat = await charger.ok("Heartbeat", {})
    status0 = await charger.ok("StatusNotification", {"connectorId": 0, "errorCode": "NoError", "status": "Available"})
    status1 = await charger.ok(
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "GroundFailure",
            "status": "Faulted",
            "info": "RCD tripped",
            "vendorErrorCode": "E42",
            "timestamp": "2026-01-02T03:04:05Z",
        },
    )
    status3 = await charger.ok("StatusNotification", {"connectorId": 3, "errorCode": "NoError", "status": "Available"})

    assert boot["status"] == "Accepted"
    assert boot["interval"] == 60
    assert "currentTime" in boot
    assert "currentTime" in beat
    assert status0 == status1 == status3 == {}
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    assert (cp.vendor, cp.model, cp.serial_number, cp.charge_box_serial_number) == (
        "Alfen",
        "Eve Double",
        "ACE0001",
        "BOX-1",
    )
    assert (cp.firmware_version, cp.iccid, cp.imsi, cp.meter_type, cp.meter_serial_number) == (
        "6.1.0",
        "8949000000000000001",
        "262010000000001",
        "Eastron SDM630",
        "MTR-9",
    )
    assert cp.online is True
    assert cp.last_heartbeat_at is not None
    assert cp.status == "Available"
    evse1 = await db(Evse.objects.get)(charge_point=cp, connector_id=1)
    assert (evse1.status, evse1.error_code, evse1.status_info, evse1.vendor_error_code) == (
        "Faulted",
        "GroundFailure",
        "RCD tripped",
        "E42",
    )
    assert evse1.status_at == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert await db(Evse.objects.filter(charge_point=cp, connector_id=3, evse_uid="CP-TEST-1*3").exists)()
    history = await db(
        lambda: list(StatusEvent.objects.filter(charge_point=cp).values_list("connector_id", "status"))
    )()
    assert sorted(history) == sorted([(0, "Online"), (0, "Available"), (1, "Faulted"), (3, "Available")])


async def test_late_status_does_not_overwrite_newer(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    new = {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": "2026-01-02T10:00:00Z"}
    old = {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": "2026-01-02T09:00:00Z"}

    await charger.ok("StatusNotification", new)
    await charger.ok("StatusNotification", old)

    evse = await db(Evse.objects.get)(charge_point=station.charge_point, connector_id=1)
    assert evse.status == "Charging"
    assert await db(StatusEvent.objects.filter(charge_point=station.charge_point, status="Preparing").count)() == 1


async def test_authorize_uses_tokens_and_accepts_a_tag_charging_elsewhere(
    station: Station, connect: ConnectCharger
) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="GOOD", group_id="FLEET")
    await db(Token.objects.create)(tenant=station.tenant, uid="LOST", blocked=True)
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)

    good = await charger.ok("Authorize", {"idTag": "GOOD"})
    lost = await charger.ok("Authorize", {"idTag": "LOST"})
    unknown = await charger.ok("Authorize", {"idTag": "NOBODY"})
    await charger.ok(
        "StartTransaction",
        {"connectorId": 1, "idTag": "GOOD", "meterStart": 0, "timestamp": iso(dt.datetime.now(dt.UTC))},
    )
    busy = await charger.ok("Authorize", {"idTag": "GOOD"})

    assert good["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FLEET"}
    assert lost["idTagInfo"]["status"] == "Blocked"
    assert unknown["idTagInfo"]["status"] == "Invalid"
    assert busy["idTagInfo"] == {"status": "Accepted", "parentIdTag": "FLEET"}  # 1.6: ConcurrentTx is for starts


async def test_transaction_with_meter_values_and_idempotent_stop(station: Station, connect: ConnectCharger) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    start_at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": iso(start_at)}

    started = await charger.ok("StartTransaction", start)
    tx = started["transactionId"]
    resent = await charger.ok("StartTransaction", start)  # answer lost, charger retries with a new unique id
    await charger.ok(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": iso(start_at + dt.timedelta(minutes=5)),
                    "sampledValue": [
                        {"value": "2.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                        {"value": "11000", "unit": "W", "measurand": "Power.Active.Import"},
                    ],
                }
            ],
        },
    )
    stop = {
        "transactionId": tx,
        "meterStop": 4500,
        "timestamp": iso(start_at + dt.timedelta(minutes=30)),
        "reason": "Local",
        "idTag": "TAG1",
    }
    stopped = await charger.ok("StopTransaction", stop)
    again = await charger.ok("StopTransaction", {**stop, "meterStop": 9999})
    unknown = await charger.ok("StopTransaction", {**stop, "transactionId": 987654})

    assert started["idTagInfo"] == {"status": "Accepted"}
    assert resent["transactionId"] == tx
    assert stopped == {"idTagInfo": {"status": "Accepted"}}
    assert again == stopped
    assert unknown == stopped
    session = await db(ChargingSession.objects.get)(pk=tx)
    assert session.status == SessionStatus.COMPLETED
    assert (session.meter_start_wh, session.meter_stop_wh, session.energy_wh) == (1000, 4500, 3500)
    assert session.last_meter_wh == 4500
    assert session.stop_reason == "Local"
    assert await db(ChargingSession.objects.count)() == 1
    values = await db(
        lambda: list(MeterValue.objects.filter(session_id=tx).values_list("measurand", "value", "unit"))
    )()
    assert sorted((m, str(v), u) for m, v, u in values) == [
        ("Energy.Active.Import.Register", "2.5000", "kWh"),
        ("Power.Active.Import", "11000.0000", "W"),
    ]
    kinds = await db(lambda: sorted(TransactionAnomaly.objects.values_list("kind", "transaction_id")))()
    assert kinds == [("duplicate_stop", tx), ("unknown_transaction", 987654)]


async def test_meter_backwards_and_future_timestamps_are_flagged_old_ones_accepted(
    station: Station, connect: ConnectCharger
) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    t0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    tx = (
        await charger.ok(
            "StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 500, "timestamp": iso(t0)}
        )
    )["transactionId"]

    def reading(at: dt.datetime, wh: int) -> dict[str, object]:
        return {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [{"timestamp": iso(at), "sampledValue": [{"value": str(wh)}]}],
        }

    await charger.ok("MeterValues", reading(t0 + dt.timedelta(minutes=10), 2000))
    await charger.ok("MeterValues", reading(t0 + dt.timedelta(minutes=5), 1200))  # queued offline, older: fine
    await charger.ok("MeterValues", reading(t0 + dt.timedelta(minutes=15), 1800))  # backwards
    await charger.ok("MeterValues", reading(dt.datetime.now(dt.UTC) + dt.timedelta(days=2), 2100))  # future

    session = await db(ChargingSession.objects.get)(pk=tx)
    assert session.flags == ["meter_backwards", "future_timestamp"]
    assert session.last_meter_wh == 2100
    assert await db(MeterValue.objects.filter(session=session).count)() == 4
    flags = await db(
        lambda: list(MeterValue.objects.filter(session=session).order_by("timestamp").values_list("flags", flat=True))
    )()
    assert flags == [[], [], ["meter_backwards"], ["future_timestamp"]]  # each sample keeps its own flags
    kinds = await db(
        lambda: sorted(TransactionAnomaly.objects.filter(session=session).values_list("kind", flat=True))
    )()
    assert kinds == ["future_timestamp", "meter_backwards"]


async def test_message_log_records_every_frame_with_latency(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)

    await charger.call("Heartbeat", {}, unique_id="hb-1")
    await flush_frame_log()

    rows = await db(
        lambda: list(
            MessageLog.objects.filter(charge_point=station.charge_point, unique_id="hb-1")
            .order_by("id")
            .values("direction", "kind", "action", "latency_ms", "tenant_id")
        )
    )()
    assert [(r["direction"], r["kind"], r["action"]) for r in rows] == [("in", 2, "Heartbeat"), ("out", 3, "Heartbeat")]
    assert rows[0]["latency_ms"] is None
    assert rows[1]["latency_ms"] > 0
    assert {r["tenant_id"] for r in rows} == {station.tenant.pk}


async def test_frames_and_latency_are_recorded_for_prometheus(station: Station, connect: ConnectCharger) -> None:
    calls = metrics.OCPP_MESSAGES.labels("Heartbeat", "in", "call")
    answers = metrics.OCPP_LATENCY.labels("Heartbeat", "out")
    calls_before, answers_before = calls._value.get(), answers._sum.get()
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)

    await charger.ok("Heartbeat", {})

    assert calls._value.get() == calls_before + 1
    assert answers._sum.get() > answers_before


async def test_actions_a_charger_invents_are_counted_as_other_not_as_a_label_each(
    station: Station, connect: ConnectCharger
) -> None:
    """The action label comes from the charger: counted as sent, every invented name would be a new time series."""
    other = metrics.OCPP_MESSAGES.labels("other", "in", "call")
    before = other._value.get()
    invented = [f"Invented{n}" for n in range(3)]
    charger = await connect(station.charge_point.identity, station.password)

    for action in invented:
        answer = await charger.call(action, {})
        assert answer[:1] + answer[2:3] == [4, "NotSupported"]

    assert other._value.get() == before + 3
    labels = {sample.labels.get("action") for metric in metrics.OCPP_MESSAGES.collect() for sample in metric.samples}
    assert not labels & set(invented)
