# ruff: noqa: S311 - simulation timings and readings, not secrets
"""Simulated OCPP 1.6 chargers on the `ocpp` package's client side (`ocpp.v16.ChargePoint` over `websockets`).

Each charger boots, reports its connectors, heartbeats, runs transactions with meter values, answers every
server command, and reconnects with backoff when the connection drops (so a restarted server gets its
chargers back, with the queued transaction messages sent in order)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import ocpp.messages
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

ocpp.messages.ASYNC_VALIDATION = False
logger = logging.getLogger(__name__)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SimConfig:
    url: str  # ws://host:port (the /ocpp/<id> path is appended)
    password: str | None = None
    id_tags: list[str] = field(default_factory=lambda: ["SIM-TAG"])
    connectors: int = 2
    heartbeat: float | None = None  # None: the interval the server answers in BootNotification
    meter_interval: float = 15.0
    session_seconds: tuple[float, float] = (60.0, 180.0)
    idle_seconds: tuple[float, float] = (20.0, 90.0)
    power_w: int = 11_000
    vendor: str = "EVP-Sim"
    model: str = "Sim-22"


class SimulatedCharger(ChargePoint):  # type: ignore[misc]
    def __init__(self, identity: str, connection: Any, config: SimConfig) -> None:
        super().__init__(identity, connection, response_timeout=30)
        self.config = config
        self.meter_wh = random.randint(0, 500_000)
        self.transactions: dict[int, int] = {}  # connector -> transaction id
        self.configuration = {"HeartbeatInterval": "300", "MeterValueSampleInterval": str(int(config.meter_interval))}
        self.local_list_version = 0
        self.stop_requests: set[int] = set()

    # ------------------------------------------------------------------ behaviour
    async def run(self) -> None:
        boot = await self.call(
            call.BootNotification(
                charge_point_vendor=self.config.vendor, charge_point_model=self.config.model, firmware_version="1.0.0"
            )
        )
        interval = self.config.heartbeat or float(boot.interval)
        await self.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"))
        for connector in range(1, self.config.connectors + 1):
            await self.call(
                call.StatusNotification(
                    connector_id=connector, error_code="NoError", status="Available", timestamp=now_iso()
                )
            )
        tasks = [asyncio.create_task(self._heartbeats(interval))]
        tasks += [asyncio.create_task(self._sessions(c)) for c in range(1, self.config.connectors + 1)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _heartbeats(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.call(call.Heartbeat())

    async def _sessions(self, connector: int) -> None:
        while True:
            await asyncio.sleep(random.uniform(*self.config.idle_seconds))
            await self.charge(
                connector, random.choice(self.config.id_tags), random.uniform(*self.config.session_seconds)
            )

    async def charge(self, connector: int, id_tag: str, seconds: float) -> None:
        await self.call(
            call.StatusNotification(
                connector_id=connector, error_code="NoError", status="Preparing", timestamp=now_iso()
            )
        )
        started = await self.call(
            call.StartTransaction(connector_id=connector, id_tag=id_tag, meter_start=self.meter_wh, timestamp=now_iso())
        )
        tx = started.transaction_id
        if started.id_tag_info["status"] != "Accepted":
            await self.call(
                call.StopTransaction(
                    meter_stop=self.meter_wh, timestamp=now_iso(), transaction_id=tx, reason="DeAuthorized"
                )
            )
            await self.call(
                call.StatusNotification(
                    connector_id=connector, error_code="NoError", status="Available", timestamp=now_iso()
                )
            )
            return
        self.transactions[connector] = tx
        await self.call(
            call.StatusNotification(
                connector_id=connector, error_code="NoError", status="Charging", timestamp=now_iso()
            )
        )
        elapsed = 0.0
        step = self.config.meter_interval
        while elapsed < seconds and tx not in self.stop_requests:
            await asyncio.sleep(step)
            elapsed += step
            self.meter_wh += int(self.config.power_w * step / 3600)
            await self.call(
                call.MeterValues(
                    connector_id=connector,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": now_iso(),
                            "sampledValue": [
                                {
                                    "value": str(self.meter_wh),
                                    "measurand": "Energy.Active.Import.Register",
                                    "unit": "Wh",
                                },
                                {"value": str(self.config.power_w), "measurand": "Power.Active.Import", "unit": "W"},
                            ],
                        }
                    ],
                )
            )
        reason = "Remote" if tx in self.stop_requests else "Local"
        await self.call(
            call.StopTransaction(
                meter_stop=self.meter_wh, timestamp=now_iso(), transaction_id=tx, reason=reason, id_tag=id_tag
            )
        )
        self.transactions.pop(connector, None)
        await self.call(
            call.StatusNotification(
                connector_id=connector, error_code="NoError", status="Available", timestamp=now_iso()
            )
        )

    # ------------------------------------------------------------------ every server command answered
    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        return call_result.Reset(status="Accepted")

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(status="Scheduled" if self.transactions else "Accepted")

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        self.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        keys = [{"key": k, "readonly": False, "value": v} for k, v in self.configuration.items() if not key or k in key]
        unknown = [k for k in key or [] if k not in self.configuration]
        return call_result.GetConfiguration(configuration_key=keys, unknown_key=unknown or None)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **_: Any
    ) -> call_result.RemoteStartTransaction:
        connector = connector_id or next(
            (c for c in range(1, self.config.connectors + 1) if c not in self.transactions), None
        )
        if connector is None or connector in self.transactions:
            return call_result.RemoteStartTransaction(status="Rejected")
        asyncio.get_running_loop().create_task(
            self.charge(connector, id_tag, random.uniform(*self.config.session_seconds))
        )
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        if transaction_id not in self.transactions.values():
            return call_result.RemoteStopTransaction(status="Rejected")
        self.stop_requests.add(transaction_id)
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, **_: Any) -> call_result.ReserveNow:
        return call_result.ReserveNow(status="Occupied" if connector_id in self.transactions else "Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(status="Accepted")

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str, **_: Any) -> call_result.SendLocalList:
        self.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.local_list_version)

    @on(Action.set_charging_profile)
    def on_set_charging_profile(self, **_: Any) -> call_result.SetChargingProfile:
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(self, **_: Any) -> call_result.ClearChargingProfile:
        return call_result.ClearChargingProfile(status="Accepted")

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(self, connector_id: int, duration: int, **_: Any) -> call_result.GetCompositeSchedule:
        return call_result.GetCompositeSchedule(status="Accepted", connector_id=connector_id)

    @on(Action.trigger_message)
    def on_trigger_message(self, requested_message: str, **_: Any) -> call_result.TriggerMessage:
        async def send() -> None:
            if requested_message == "Heartbeat":
                await self.call(call.Heartbeat())
            elif requested_message == "StatusNotification":
                await self.call(call.StatusNotification(connector_id=0, error_code="NoError", status="Available"))
            elif requested_message == "BootNotification":
                await self.call(
                    call.BootNotification(charge_point_vendor=self.config.vendor, charge_point_model=self.config.model)
                )

        asyncio.get_running_loop().create_task(send())
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> call_result.UpdateFirmware:
        async def progress() -> None:
            for status in ("Downloading", "Downloaded", "Installing", "Installed"):
                await asyncio.sleep(1)
                await self.call(call.FirmwareStatusNotification(status=status))

        asyncio.get_running_loop().create_task(progress())
        return call_result.UpdateFirmware()

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        async def upload() -> None:
            await self.call(call.DiagnosticsStatusNotification(status="Uploading"))
            await self.call(call.DiagnosticsStatusNotification(status="Uploaded"))

        asyncio.get_running_loop().create_task(upload())
        return call_result.GetDiagnostics(file_name=f"{self.id}-diagnostics.log")


async def run_charger(identity: str, config: SimConfig, stop: asyncio.Event | None = None) -> None:
    """Connect, run, and reconnect with backoff until `stop` is set."""
    headers = {}
    if config.password:
        token = base64.b64encode(f"{identity}:{config.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    backoff = 1.0
    while stop is None or not stop.is_set():
        try:
            async with websockets.connect(
                f"{config.url.rstrip('/')}/ocpp/{identity}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
                open_timeout=20,
            ) as ws:
                backoff = 1.0
                charger = SimulatedCharger(identity, ws, config)
                await asyncio.gather(charger.start(), charger.run())
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - a simulator reconnects whatever happened
            logger.info("%s: %s; reconnecting in %.0f s", identity, error.__class__.__name__, backoff)
        await asyncio.sleep(backoff + random.random())
        backoff = min(backoff * 2, 30)
