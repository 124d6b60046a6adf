# ruff: noqa: S311 - simulation timings and readings, not secrets
"""Simulated OCPP 1.6 chargers on the `ocpp` package's client side (`ocpp.v16.ChargePoint` over `websockets`).

A charger's state (meters, running transactions, configuration, charging profiles) lives in `ChargerState`
and survives its connections; a `SimulatedCharger` is one WebSocket connection of it. Like a well-mannered
charger:

- it sends BootNotification when it (re)boots, not on every reconnect (a reboot closes open sessions on the
  central system's side); on a reconnect it first sends its queued transaction messages, then the state of
  its connectors;
- transaction messages (StartTransaction, MeterValues of a transaction, StopTransaction) are sent until
  answered: when the connection drops they wait for the next one and are sent again, in order per connector,
  with the same payload (the central system recognises a resent StartTransaction by its connector, meter and
  timestamp). Other messages are dropped while offline, as real chargers do;
- every server command gets an answer; Reset stops the running transactions (reason SoftReset/HardReset)
  and reboots; charging profiles are stored, limit the simulated power and shape GetCompositeSchedule as OCPP 1.6
  §3.13 says: a transaction's TxProfile (else the TxDefaultProfile of its connector, else of connector 0; the
  highest stack level of a purpose wins) capped by the ChargePointMaxProfile shared by the charging connectors;
  a TxProfile ends with its transaction.

Fault injection for soak runs (`benchmarks/soak_bench.py`): abrupt closes (frames written, then the TCP
socket closed without a WebSocket close, `SimConfig.abrupt_close_every`) and late MeterValues of a
transaction already stopped (`SimConfig.late_meter_values`). What the fleet saw is counted in `SimStats`
(frames written and answered, CallErrors by code, sessions with their meters) for comparison with what the
central system stored."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime as dt
import hashlib
import json
import logging
import random
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any

import ocpp.messages
import websockets
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

from apps.stations import certificates

ocpp.messages.ASYNC_VALIDATION = False
logger = logging.getLogger(__name__)

VOLTS = 230  # a profile in A is turned into W with this and the phases
PHASES = 3


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - the location the platform gave
        return bytes(answer.read())


def now_iso(at: dt.datetime | None = None) -> str:
    return (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class SimSession:
    """One transaction as the charger saw it."""

    identity: str
    connector: int
    transaction_id: int
    id_tag: str
    status: str  # idTagInfo.status of StartTransaction.conf
    meter_start: int
    meter_stop: int | None = None
    stop_reason: str = ""
    stopped: bool = False  # StopTransaction answered


@dataclass
class SimStats:
    """What a fleet of simulated chargers saw (shared by every charger of a run)."""

    written: int = 0  # CALL frames written to a socket
    answered: set[str] = field(default_factory=set)  # unique ids of CALLs answered (CALLRESULT or CALLERROR)
    flushed: set[str] = field(default_factory=set)  # written before the charger closed its socket abruptly
    flushed_at: dict[str, tuple[str, float]] = field(default_factory=dict)  # unique id -> (charger, time.time())
    unanswered: set[str] = field(default_factory=set)  # in flight when the central system closed or went away
    call_errors: collections.Counter[str] = field(default_factory=collections.Counter)  # "Action: code"
    timeouts: int = 0
    resent: int = 0  # transaction messages sent again on a new connection
    given_up: int = 0  # transaction messages refused 3 times with a CallError
    connects: int = 0
    boots: int = 0
    abrupt_closes: int = 0
    late_meter_values: int = 0
    simulator_errors: int = 0  # exceptions inside the simulator itself (not the central system's answers)
    sessions: dict[tuple[str, int], SimSession] = field(default_factory=dict)

    def call_error(self, action: str, code: str) -> None:
        self.call_errors[f"{action}: {code}"] += 1


@dataclass
class SimConfig:
    url: str  # ws://host:port (the /ocpp/<id> path is appended)
    password: str | None = None
    id_tags: list[str] = field(default_factory=lambda: ["SIM-TAG"])
    # one card per connector instead of a random pick from id_tags: "{identity}" and "{connector}" are filled in
    # (the demo network: a tag used on two connectors at once is refused ConcurrentTx)
    id_tag_template: str | None = None
    connector_tags: list[str] | None = None  # one tag per connector (connector n uses the n-th), over the others
    connectors: int = 2
    heartbeat: float | None = None  # None: the interval the server answers in BootNotification
    meter_interval: float = 15.0
    session_seconds: tuple[float, float] = (60.0, 180.0)
    idle_seconds: tuple[float, float] = (20.0, 90.0)
    power_w: int = 11_000
    vendor: str = "EVP-Sim"
    model: str = "Sim-22"
    late_meter_values: float = 0.0  # probability that a stopped transaction gets one more MeterValues
    abrupt_close_every: tuple[float, float] | None = None  # seconds between abrupt closes (None: never)
    frames_before_close: int = 3  # CALLs written just before an abrupt close, not waiting for answers
    stats: SimStats | None = None  # shared by a fleet; each charger makes its own when None
    unanswered: tuple[str, ...] = ()  # server CALLs (by action) the charger never answers (a hung firmware)


class Disconnected(Exception):
    """The connection a CALL was written to closed before its answer came."""


class SimulatedCharger(ChargePoint):  # type: ignore[misc]
    """One WebSocket connection of a simulated charger; the charger itself is `state`."""

    def __init__(self, identity: str, connection: Any, state: ChargerState) -> None:
        super().__init__(identity, connection, response_timeout=30)
        self.state = state
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.in_flight: set[str] = set()  # CALLs written on this connection, not answered yet

    async def _send(self, message: str) -> None:
        frame = json.loads(message)
        if frame[0] == 2:
            self.in_flight.add(frame[1])
            self.state.stats.written += 1
        await super()._send(message)

    async def request(self, payload: Any) -> Any:
        """One CALL on this connection: its answer, OCPPError on a CallError, Disconnected if the socket closed
        before the answer, TimeoutError when none came in time."""
        unique_id = str(uuid.uuid4())
        pending = asyncio.ensure_future(self.call(payload, suppress=False, unique_id=unique_id))
        try:
            await asyncio.wait({pending, self.closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pending.done():  # the socket closed first, or the caller was cancelled
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        try:
            result = pending.result()
        except (asyncio.CancelledError, websockets.ConnectionClosed) as error:
            raise Disconnected from error
        except OCPPError as error:
            self.state.stats.answered.add(unique_id)
            self.in_flight.discard(unique_id)
            self.state.stats.call_error(payload.__class__.__name__, error.code)
            raise
        except TimeoutError:
            self.state.stats.timeouts += 1
            raise
        self.state.stats.answered.add(unique_id)
        self.in_flight.discard(unique_id)
        return result

    async def route_message(self, raw_msg: str) -> None:
        """Every frame the server sends; a CALL of an action in `config.unanswered` is swallowed."""
        if self.state.config.unanswered:
            with contextlib.suppress(ValueError, TypeError, IndexError, KeyError):
                frame = json.loads(raw_msg)
                if frame[0] == 2 and frame[2] in self.state.config.unanswered:
                    return
        await super().route_message(raw_msg)

    async def serve(self) -> None:
        """Until the socket closes: route what the server sends, and let the charger use this connection."""
        listener = asyncio.create_task(self.start())
        runner = asyncio.create_task(self.state.connected(self))
        try:
            with contextlib.suppress(websockets.ConnectionClosed):
                await listener
        finally:
            self.closed.set_result(None)
            self.state.disconnected(self)
            runner.cancel()
            listener.cancel()
            await asyncio.gather(runner, listener, return_exceptions=True)

    async def close_abruptly(self) -> None:
        """Write a few CALLs and close the TCP socket without waiting for answers or a WebSocket close:
        everything written is flushed to the server first (`transport.close`), which must apply and log it."""
        for n in range(self.state.config.frames_before_close):
            if n % 2:
                frame = [2, str(uuid.uuid4()), "Heartbeat", {}]
            else:
                status = {"connectorId": 0, "errorCode": "NoError", "status": "Available", "timestamp": now_iso()}
                frame = [2, str(uuid.uuid4()), "StatusNotification", status]
            await self._send(json.dumps(frame))
        self.state.stats.flushed |= self.in_flight
        self.state.stats.flushed_at.update((uid, (self.state.identity, time.time())) for uid in self.in_flight)
        self.state.stats.abrupt_closes += 1
        self._connection.transport.close()

    # ------------------------------------------------------------------ every server command answered
    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        asyncio.get_running_loop().create_task(self.state.reboot(f"{type}Reset"))
        return call_result.Reset(status="Accepted")

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> call_result.ChangeAvailability:
        busy = self.state.transactions if connector_id == 0 else connector_id in self.state.transactions
        return call_result.ChangeAvailability(status="Scheduled" if busy else "Accepted")

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str, **_: Any) -> call_result.ChangeConfiguration:
        self.state.configuration[key] = value
        return call_result.ChangeConfiguration(status="Accepted")

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> call_result.GetConfiguration:
        configuration = self.state.configuration
        keys = [{"key": k, "readonly": False, "value": v} for k, v in configuration.items() if not key or k in key]
        unknown = [k for k in key or [] if k not in configuration]
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
        state = self.state
        connector = connector_id or next((c for c in state.connector_ids if c not in state.transactions), None)
        if connector is None or connector in state.transactions or connector not in state.connector_ids:
            return call_result.RemoteStartTransaction(status="Rejected")
        state.spawn(state.charge(connector, id_tag, random.uniform(*state.config.session_seconds)))
        return call_result.RemoteStartTransaction(status="Accepted")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        if transaction_id not in self.state.transactions.values():
            return call_result.RemoteStopTransaction(status="Rejected")
        self.state.stop_requests[transaction_id] = "Remote"
        return call_result.RemoteStopTransaction(status="Accepted")

    @on(Action.unlock_connector)
    def on_unlock(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        if connector_id not in self.state.connector_ids:
            return call_result.UnlockConnector(status="NotSupported")
        tx = self.state.transactions.get(connector_id)
        if tx:
            self.state.stop_requests[tx] = "UnlockCommand"
        return call_result.UnlockConnector(status="Unlocked")

    @on(Action.reserve_now)
    def on_reserve_now(self, connector_id: int, **_: Any) -> call_result.ReserveNow:
        return call_result.ReserveNow(status="Occupied" if connector_id in self.state.transactions else "Accepted")

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        return call_result.CancelReservation(status="Accepted")

    @on(Action.send_local_list)
    def on_send_local_list(self, list_version: int, update_type: str, **_: Any) -> call_result.SendLocalList:
        self.state.local_list_version = list_version
        return call_result.SendLocalList(status="Accepted")

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.state.local_list_version)

    # The ocpp package caches one schema per action whatever float parser loaded it first; in a process that also
    # runs the platform (tests) the platform may have loaded these two with floats, and the package's Decimal payloads
    # then fail its own multipleOf check with a TypeError. The platform validates what it sends; the charger trusts it.
    @on(Action.set_charging_profile, skip_schema_validation=True)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        profile = cs_charging_profiles  # the ocpp package hands nested keys over in snake_case
        purpose = profile.get("charging_profile_purpose", "")
        if connector_id != 0 and connector_id not in self.state.connector_ids:
            return call_result.SetChargingProfile(status="Rejected")
        if purpose == "TxProfile" and (connector_id == 0 or connector_id not in self.state.transactions):
            return call_result.SetChargingProfile(status="Rejected")  # 1.6 §5.16.3: only on a running transaction
        self.state.profiles[(connector_id, purpose, profile.get("stack_level", 0))] = profile
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        profiles = self.state.profiles
        doomed = [
            k
            for k, p in profiles.items()
            if (id is None or p.get("charging_profile_id") == id)
            and (connector_id is None or k[0] == connector_id)
            and (charging_profile_purpose is None or k[1] == charging_profile_purpose)
            and (stack_level is None or k[2] == stack_level)
        ]
        for key in doomed:
            del profiles[key]
        return call_result.ClearChargingProfile(status="Accepted" if doomed else "Unknown")

    @on(Action.get_composite_schedule, skip_schema_validation=True)  # see set_charging_profile
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        if connector_id != 0 and connector_id not in self.state.connector_ids:
            return call_result.GetCompositeSchedule(status="Rejected")
        limit_w = self.state.limit_w(connector_id)
        unit = charging_rate_unit or "W"
        limit = limit_w if unit == "W" else round(limit_w / VOLTS / PHASES, 1)
        schedule = {
            "duration": duration,
            "startSchedule": now_iso(),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        }
        return call_result.GetCompositeSchedule(
            status="Accepted", connector_id=connector_id, schedule_start=now_iso(), charging_schedule=schedule
        )

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        state = self.state
        if requested_message == "BootNotification":
            payload: Any = call.BootNotification(
                charge_point_vendor=state.config.vendor, charge_point_model=state.config.model
            )
        elif requested_message == "Heartbeat":
            payload = call.Heartbeat()
        elif requested_message == "StatusNotification":
            payload = state.status_of(connector_id or 0)
        elif requested_message == "MeterValues":
            payload = call.MeterValues(
                connector_id=connector_id or 1, meter_value=state.sample(connector_id or 1, state.config.power_w)
            )
        else:
            return call_result.TriggerMessage(status="NotImplemented")
        state.spawn(state.send(payload))
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.update_firmware)
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> call_result.UpdateFirmware:
        async def progress() -> None:
            for status in ("Downloading", "Downloaded", "Installing", "Installed"):
                await asyncio.sleep(1)
                await self.state.send(call.FirmwareStatusNotification(status=status))

        self.state.spawn(progress())
        return call_result.UpdateFirmware()

    # ------------------------------------------------------------------ security extension (whitepaper ed. 3)
    @on(Action.install_certificate)
    def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any) -> Any:
        try:
            certificates.load_certificate(certificate)
        except certificates.CertificateError:
            return call_result.InstallCertificate(status="Rejected")
        held = self.state.certificates.setdefault(certificate_type, [])
        if certificate not in held:
            held.append(certificate)
        return call_result.InstallCertificate(status="Accepted")

    def _hash_data(self, pem: str) -> dict[str, str]:
        data = certificates.hash_data(certificates.load_certificate(pem))
        return {
            "hashAlgorithm": data.hash_algorithm,
            "issuerNameHash": data.issuer_name_hash,
            "issuerKeyHash": data.issuer_key_hash,
            "serialNumber": data.serial_number,
        }

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(self, certificate_type: str, **_: Any) -> Any:
        held = [self._hash_data(pem) for pem in self.state.certificates.get(certificate_type, [])]
        if not held:
            return call_result.GetInstalledCertificateIds(status="NotFound")
        return call_result.GetInstalledCertificateIds(status="Accepted", certificate_hash_data=held)

    @on(Action.delete_certificate)
    def on_delete_certificate(self, certificate_hash_data: dict[str, str], **_: Any) -> Any:
        serial = str(certificate_hash_data.get("serial_number", "")).lower().lstrip("0")
        for held in self.state.certificates.values():
            for pem in list(held):
                if self._hash_data(pem)["serialNumber"].lstrip("0") == serial:
                    held.remove(pem)
                    return call_result.DeleteCertificate(status="Accepted")
        return call_result.DeleteCertificate(status="NotFound")

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> Any:
        """Check the signing certificate against the manufacturer roots now (else InvalidCertificate and a
        security event), then download, verify the signature, install, reporting each step."""
        signing = firmware.get("signing_certificate", "")
        roots = self.state.certificates.get("ManufacturerRootCertificate", [])
        if not any(certificates.firmware_signer_trusted(signing_certificate_pem=signing, root_pem=r) for r in roots):
            self.state.spawn(
                self._security_event("InvalidFirmwareSigningCertificate", "not issued by a manufacturer root")
            )
            return call_result.SignedUpdateFirmware(status="InvalidCertificate")
        self.state.spawn(self._signed_firmware(request_id, firmware["location"], firmware["signature"], signing))
        return call_result.SignedUpdateFirmware(status="Accepted")

    async def _security_event(self, kind: str, info: str) -> None:
        await self.state.send(call.SecurityEventNotification(type=kind, timestamp=now_iso(), tech_info=info))

    async def _signed_firmware(self, request_id: int, location: str, signature: str, signing: str) -> None:
        async def report(status: str) -> None:
            await self.state.send(call.SignedFirmwareStatusNotification(status=status, request_id=request_id))

        await report("Downloading")
        try:
            content = await asyncio.to_thread(_download, location)
        except OSError:
            await report("DownloadFailed")
            return
        await report("Downloaded")
        if not certificates.firmware_signature_valid(
            content=content, signature_b64=signature, signing_certificate_pem=signing
        ):
            await self._security_event("InvalidFirmwareSignature", f"firmware from {location[:200]}")
            await report("InvalidSignature")
            return
        await report("SignatureVerified")
        await report("Installing")
        self.state.firmware_installed.append(hashlib.sha256(content).hexdigest())
        await report("Installed")

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        async def upload() -> None:
            await self.state.send(call.DiagnosticsStatusNotification(status="Uploading"))
            await self.state.send(call.DiagnosticsStatusNotification(status="Uploaded"))

        self.state.spawn(upload())
        return call_result.GetDiagnostics(file_name=f"{self.id}-diagnostics.log")


class ChargerState:
    """One simulated charger, across its connections."""

    def __init__(self, identity: str, config: SimConfig) -> None:
        self.identity = identity
        self.config = config
        self.stats = config.stats if config.stats is not None else SimStats()
        self.connector_ids = list(range(1, config.connectors + 1))
        self.meters = {c: random.randint(0, 500_000) for c in self.connector_ids}  # Wh, one meter per connector
        self.transactions: dict[int, int] = {}  # connector -> transaction id (0 while the start is on its way)
        self.started_at: dict[int, dt.datetime] = {}  # connector -> when its transaction started
        self.stop_requests: dict[int, str] = {}  # transaction id -> stop reason
        self.configuration = {"HeartbeatInterval": "300", "MeterValueSampleInterval": str(int(config.meter_interval))}
        self.local_list_version = 0
        self.certificates: dict[str, list[str]] = {}  # certificate type -> PEMs (InstallCertificate)
        self.firmware_installed: list[str] = []  # sha256 of every firmware image installed
        self.profiles: dict[tuple[int, str, int], dict[str, Any]] = {}  # (connector, purpose, stack level)
        self.connection: SimulatedCharger | None = None
        self.online = asyncio.Event()  # booted and connected: transaction messages may go
        self.booted = False
        self.finishing = False  # no new sessions; running ones stop
        self.tx_pending = 0  # transaction messages waiting for an answer
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # ------------------------------------------------------------------ connections
    async def connected(self, connection: SimulatedCharger) -> None:
        self.connection = connection
        self.stats.connects += 1
        try:
            while not self.booted:
                boot = await connection.request(
                    call.BootNotification(
                        charge_point_vendor=self.config.vendor,
                        charge_point_model=self.config.model,
                        firmware_version="1.0.0",
                    )
                )
                if boot.status == "Accepted":
                    self.booted = True
                    self.stats.boots += 1
                    self.configuration["HeartbeatInterval"] = str(boot.interval)
                else:  # Pending / Rejected: ask again after the interval the server gave
                    await asyncio.sleep(max(float(boot.interval), 1.0))
            self.online.set()
            for _ in range(300):  # queued transaction messages first, then the state of the connectors
                if not self.tx_pending:
                    break
                await asyncio.sleep(0.1)
            for connector in [0, *self.connector_ids]:
                await self._quietly(connection, self.status_of(connector))
            interval = self.config.heartbeat or float(self.configuration["HeartbeatInterval"])
            while True:
                await asyncio.sleep(interval)
                await self._quietly(connection, call.Heartbeat())
        except (TimeoutError, Disconnected):
            return

    async def _quietly(self, connection: SimulatedCharger, payload: Any) -> None:
        with contextlib.suppress(OCPPError):
            await connection.request(payload)

    def disconnected(self, connection: SimulatedCharger) -> None:
        self.stats.unanswered |= connection.in_flight - self.stats.flushed
        if self.connection is connection:
            self.connection = None
            self.online.clear()

    async def reboot(self, reason: str) -> None:
        """Reset: stop the running transactions, close, boot again on the next connection."""
        for tx in list(self.transactions.values()):
            self.stop_requests[tx] = reason
        for _ in range(300):
            if not self.transactions and not self.tx_pending:
                break
            await asyncio.sleep(0.1)
        self.booted = False
        connection = self.connection
        if connection is not None:
            await connection._connection.close()

    # ------------------------------------------------------------------ messages
    async def send(self, payload: Any, *, transaction: bool = False) -> Any | None:
        """One CALL: its answer, or None. A transaction message is sent until answered (again on the next
        connection when this one drops; up to 3 times when refused with a CallError); others are dropped
        when the charger is offline or the connection drops."""
        refused = 0
        if transaction:
            self.tx_pending += 1
        try:
            while True:
                connection = self.connection
                if connection is None or not self.online.is_set():
                    if not transaction:
                        return None
                    await self.online.wait()
                    continue
                try:
                    return await connection.request(payload)
                except Disconnected:
                    if not transaction:
                        return None
                    self.stats.resent += 1
                    while self.connection is connection:  # until this connection is noted as closed
                        await asyncio.sleep(0.05)
                except TimeoutError:
                    if not transaction:
                        return None
                    self.stats.resent += 1
                except OCPPError:
                    refused += 1
                    if not transaction or refused >= 3:
                        self.stats.given_up += transaction
                        return None
                    await asyncio.sleep(refused)
        finally:
            if transaction:
                self.tx_pending -= 1

    def status_of(self, connector: int) -> Any:
        charging = connector in self.transactions if connector else False
        return call.StatusNotification(
            connector_id=connector,
            error_code="NoError",
            status="Charging" if charging else "Available",
            timestamp=now_iso(),
        )

    def sample(self, connector: int, power_w: int, at: dt.datetime | None = None) -> list[dict[str, Any]]:
        return [
            {
                "timestamp": now_iso(at),
                "sampledValue": [
                    {"value": str(self.meters[connector]), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ]

    def id_tag(self, connector: int) -> str:
        if self.config.connector_tags:
            return self.config.connector_tags[(connector - 1) % len(self.config.connector_tags)]
        template = self.config.id_tag_template
        if template:
            return template.format(identity=self.identity, connector=connector)
        return random.choice(self.config.id_tags)

    def _profile(self, connector: int, purpose: str) -> dict[str, Any] | None:
        """The profile of this purpose that applies on `connector` (its own first, then connector 0's); the
        highest stack level wins. A TxProfile applies only to the transaction it names (or the running one)."""
        tx = self.transactions.get(connector)
        for where in (connector, 0):
            found = [
                (level, profile)
                for (c, p, level), profile in self.profiles.items()
                if c == where
                and p == purpose
                and (purpose != "TxProfile" or profile.get("transaction_id") in (None, tx))
            ]
            if found:
                return max(found, key=lambda item: item[0])[1]
        return None

    def _profile_w(self, profile: dict[str, Any], started: dt.datetime | None) -> int | None:
        """The limit of the schedule period in force now, in W (A x 230 V x phases)."""
        schedule = profile.get("charging_schedule") or {}
        periods = sorted(schedule.get("charging_schedule_period") or [], key=lambda p: p.get("start_period", 0))
        if not periods:
            return None
        now = dt.datetime.now(dt.UTC)
        origin = started if profile.get("charging_profile_kind") == "Relative" else None
        if origin is None and schedule.get("start_schedule"):
            with contextlib.suppress(ValueError):
                origin = dt.datetime.fromisoformat(str(schedule["start_schedule"]).replace("Z", "+00:00"))
        elapsed = (now - origin).total_seconds() if origin is not None else 0.0
        period = periods[0]
        for candidate in periods:
            if candidate.get("start_period", 0) <= elapsed:
                period = candidate
        limit = float(period["limit"])
        phases = int(period.get("number_phases") or PHASES)
        return int(limit if schedule.get("charging_rate_unit") == "W" else limit * VOLTS * phases)

    def limit_w(self, connector: int) -> int:
        """The power allowed on `connector` now: its transaction's TxProfile (else a TxDefaultProfile), capped by
        the charger's hardware (`power_w`) and by its share of the ChargePointMaxProfile."""
        started = self.started_at.get(connector)
        limits = [self.config.power_w]
        if connector:
            tx_profile = self._profile(connector, "TxProfile") if self.transactions.get(connector) else None
            profile = tx_profile or self._profile(connector, "TxDefaultProfile")
            if profile is not None and (watts := self._profile_w(profile, started)) is not None:
                limits.append(watts)
        cp_max = self._profile(0, "ChargePointMaxProfile")
        if cp_max is not None and (watts := self._profile_w(cp_max, None)) is not None:
            limits.append(watts // max(1, len(self.transactions)) if connector else watts)
        return max(min(limits), 0)

    def transaction_ended(self, connector: int, tx: int) -> None:
        """A TxProfile lives as long as its transaction (OCPP 1.6 §3.13.3)."""
        for key in [k for k, p in self.profiles.items() if k[0] == connector and k[1] == "TxProfile"]:
            if self.profiles[key].get("transaction_id") in (None, tx):
                del self.profiles[key]

    # ------------------------------------------------------------------ behaviour
    async def sessions(self, connector: int) -> None:
        while not self.finishing:
            await asyncio.sleep(random.uniform(*self.config.idle_seconds))
            if self.finishing:
                break
            await self.online.wait()
            if connector in self.transactions:
                continue
            try:
                await self.charge(connector, self.id_tag(connector), random.uniform(*self.config.session_seconds))
            except Exception:  # a simulator bug: counted (a soak must show 0), and the connector goes on
                self.stats.simulator_errors += 1
                logger.exception("%s: connector %s", self.identity, connector)

    async def charge(self, connector: int, id_tag: str, seconds: float) -> None:
        if connector in self.transactions:
            return
        self.transactions[connector] = 0  # occupied while the start is on its way
        try:
            await self._charge(connector, id_tag, seconds)
        finally:
            self.transactions.pop(connector, None)
            await self.send(self.status_of(connector))

    async def _charge(self, connector: int, id_tag: str, seconds: float) -> None:
        await self.send(
            call.StatusNotification(
                connector_id=connector, error_code="NoError", status="Preparing", timestamp=now_iso()
            )
        )
        meter_start = self.meters[connector]
        started = await self.send(
            call.StartTransaction(connector_id=connector, id_tag=id_tag, meter_start=meter_start, timestamp=now_iso()),
            transaction=True,
        )
        if started is None:
            return
        tx = started.transaction_id
        self.started_at[connector] = dt.datetime.now(dt.UTC)
        status = started.id_tag_info["status"]
        record = SimSession(self.identity, connector, tx, id_tag, status, meter_start)
        self.stats.sessions[(self.identity, tx)] = record
        self.transactions[connector] = tx
        reason = "DeAuthorized"
        if status == "Accepted":
            await self.send(
                call.StatusNotification(
                    connector_id=connector, error_code="NoError", status="Charging", timestamp=now_iso()
                )
            )
            elapsed, step = 0.0, self.config.meter_interval
            while elapsed < seconds and tx not in self.stop_requests and not self.finishing:
                await asyncio.sleep(step)
                elapsed += step
                power = self.limit_w(connector)
                self.meters[connector] += int(power * step / 3600)
                await self.send(
                    call.MeterValues(
                        connector_id=connector, transaction_id=tx, meter_value=self.sample(connector, power)
                    ),
                    transaction=True,
                )
            reason = self.stop_requests.pop(tx, "Local")
        self.transaction_ended(connector, tx)
        self.started_at.pop(connector, None)
        stopped_at = dt.datetime.now(dt.UTC)
        record.meter_stop, record.stop_reason = self.meters[connector], reason
        answer = await self.send(
            call.StopTransaction(
                meter_stop=record.meter_stop,
                timestamp=now_iso(stopped_at),
                transaction_id=tx,
                reason=reason,
                id_tag=id_tag,
            ),
            transaction=True,
        )
        record.stopped = answer is not None
        if status == "Accepted" and random.random() < self.config.late_meter_values:
            await self._late_meter_value(connector, tx, stopped_at)

    async def _late_meter_value(self, connector: int, tx: int, stopped_at: dt.datetime) -> None:
        """A MeterValues of a transaction already stopped: alternately a sample taken before the stop and
        delivered late, and one taken after it (a charger that keeps metering): neither may change it."""
        self.stats.late_meter_values += 1
        before = self.stats.late_meter_values % 2
        at = stopped_at - dt.timedelta(seconds=1) if before else dt.datetime.now(dt.UTC)
        reading = self.meters[connector] + (-1 if before else 25)
        value = [
            {
                "timestamp": now_iso(at),
                "sampledValue": [
                    {"value": str(max(reading, 0)), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ],
            }
        ]
        await self.send(
            call.MeterValues(connector_id=connector, transaction_id=tx, meter_value=value), transaction=True
        )

    async def abrupt_closes(self) -> None:
        low, high = self.config.abrupt_close_every or (0, 0)
        while not self.finishing:
            await asyncio.sleep(random.uniform(low, high))
            connection = self.connection
            if connection is not None and self.online.is_set() and not self.finishing:
                with contextlib.suppress(websockets.ConnectionClosed):  # the server closed it first
                    await connection.close_abruptly()

    async def finish(self) -> None:
        """Start nothing new, stop what runs, and wait until every transaction message was answered."""
        self.finishing = True
        for tx in list(self.transactions.values()):
            self.stop_requests.setdefault(tx, "Local")
        while self.transactions or self.tx_pending:
            await asyncio.sleep(0.1)


async def run_charger(
    identity: str, config: SimConfig, stop: asyncio.Event | None = None, finish: asyncio.Event | None = None
) -> ChargerState:
    """Connect, run, and reconnect with backoff until `stop` is set (at once) or `finish` is set (after the
    running transactions were stopped and every transaction message was answered)."""
    headers = {}
    if config.password:
        token = base64.b64encode(f"{identity}:{config.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    state = ChargerState(identity, config)
    for connector in state.connector_ids:
        state.spawn(state.sessions(connector))
    if config.abrupt_close_every:
        state.spawn(state.abrupt_closes())
    done = asyncio.Event()

    async def finisher() -> None:
        assert finish is not None
        await finish.wait()
        await state.finish()
        done.set()
        if state.connection is not None:
            await state.connection._connection.close()

    async def stopper() -> None:  # stop: at once, also in the middle of a connection
        assert stop is not None
        await stop.wait()
        if state.connection is not None:
            await state.connection._connection.close()

    if finish is not None:
        state.spawn(finisher())
    if stop is not None:
        state.spawn(stopper())
    backoff = 1.0
    try:
        while not done.is_set() and (stop is None or not stop.is_set()):
            try:
                async with websockets.connect(
                    f"{config.url.rstrip('/')}/ocpp/{identity}",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    additional_headers=headers,
                    open_timeout=20,
                ) as ws:
                    backoff = 1.0
                    await SimulatedCharger(identity, ws, state).serve()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a simulator reconnects whatever happened
                # the network's and the server's doing (closed, refused, timed out, handshake answered 4xx/5xx)
                expected = isinstance(error, (websockets.exceptions.WebSocketException, OSError, TimeoutError))
                if not expected:  # a simulator bug: counted (a soak must show 0) and shown with its traceback
                    state.stats.simulator_errors += 1
                logger.info(
                    "%s: %s; reconnecting in %.0f s", identity, error.__class__.__name__, backoff, exc_info=not expected
                )
            if done.is_set() or (stop is not None and stop.is_set()):
                break
            await asyncio.sleep((backoff if state.booted else 0.5) + random.random())
            backoff = min(backoff * 2, 30)
    finally:
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
    return state
