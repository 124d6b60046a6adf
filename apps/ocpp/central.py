"""The central system's side of one charger connection: `ocpp.v16.ChargePoint` with our dispatch.

We keep the package's route map (`@on`), CALL machinery (one outstanding CALL, response queue) and
message classes, and replace its per-message dispatch to add what real chargers need: inline validation
with the 1.6 error codes and a lenient mode, idempotent answers to a repeated unique id, the frame log,
and domain errors mapped to CallErrors without ever closing the socket.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import (
    FormationViolationError,
    GenericError,
    InternalError,
    NotSupportedError,
    OCPPError,
    SecurityError,
)
from ocpp.exceptions import (
    NotImplementedError as OcppNotImplemented,
)
from ocpp.messages import Call, CallError, CallResult, MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.datatypes import IdTagInfo as WireIdTagInfo
from ocpp.v16.enums import Action

from apps.core import metrics
from apps.core.errors import ApplicationError
from apps.ocpp import heartbeats
from apps.ocpp.dbcall import run_db
from apps.ocpp.logbuffer import buffer as log
from apps.ocpp.validation import check_call, format_datetime, parse_datetime
from apps.sessions import services as session_services
from apps.stations import security as security_services
from apps.stations import services as station_services
from apps.stations.services import Handshake

_KIND_NAMES = {2: "call", 3: "result", 4: "error"}  # OCPP-J message type ids
_ACTIONS = frozenset(action.value for action in Action)


def _action_label(action: str) -> str:
    """An action that is not OCPP 1.6 (a typo, anything a charger sends) is counted as "other": a label per
    string a charger invents would grow the metrics without bound."""
    return action if action in _ACTIONS or not action else "other"


@functools.lru_cache(maxsize=1024)
def _frames_counter(action: str, direction: str, kind: int) -> Any:
    """The frame counter of a label set. `labels()` takes a lock and builds its key at every call (up to twice
    per frame with the latency below); the children are kept instead: a count and a latency cost 6.0-7.3 us of CPU
    through `labels()`, 2.3-3.6 us kept (100,000 each way, three rounds, the test suite running meanwhile)."""
    return metrics.OCPP_MESSAGES.labels(_action_label(action), direction, _KIND_NAMES.get(kind, "unparsable"))


@functools.lru_cache(maxsize=1024)
def _latency_histogram(action: str, direction: str) -> Any:
    return metrics.OCPP_LATENCY.labels(_action_label(action), direction)


logger = logging.getLogger(__name__)

_UNIQUE_ID = re.compile(r'^\s*\[\s*2\s*,\s*"([^"]{1,64})"')
RECENT_ANSWERS = 64  # answers kept per connection for repeated unique ids
CHARGER_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # the security extension (OCPP 1.6 security whitepaper edition 3)
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)
ALLOWED_BEFORE_ACCEPTED = frozenset({"BootNotification", "Heartbeat"})

DataTransferHandler = Callable[[Handshake, str | None, str | None], Awaitable[tuple[str, str | None]]]
DATA_TRANSFER_HANDLERS: dict[tuple[str, str | None], DataTransferHandler] = {}


def data_transfer_handler(
    vendor_id: str, message_id: str | None = None
) -> Callable[[DataTransferHandler], DataTransferHandler]:
    """Register a vendor hook for DataTransfer from chargers: `async def h(handshake, message_id, data) ->
    (status, data)`. A handler for (vendor, None) gets every message of that vendor without its own."""

    def register(func: DataTransferHandler) -> DataTransferHandler:
        DATA_TRANSFER_HANDLERS[(vendor_id, message_id)] = func
        return func

    return register


class CallErrorAnswer(Exception):
    """The charger answered our CALL with a CALLERROR."""

    def __init__(self, code: str, description: str, details: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class Transport(Protocol):
    async def recv(self) -> str: ...

    async def send(self, message: str) -> None: ...


def _redact(action: str, payload: Any) -> Any:
    if action == "ChangeConfiguration" and isinstance(payload, dict) and payload.get("key") == "AuthorizationKey":
        return {**payload, "value": "********"}
    return payload


def _id_tag_info(info: session_services.IdTagInfo | None) -> WireIdTagInfo | None:
    if info is None:
        return None
    return WireIdTagInfo(
        status=info.status,  # type: ignore[arg-type]
        parent_id_tag=info.parent_id_tag or None,
        expiry_date=format_datetime(info.expiry_date) if info.expiry_date else None,
    )


def _boot(*, charge_point_id: int, info: dict[str, Any]) -> station_services.BootResult:
    """BootNotification: recorded by stations; then sessions (stations cannot import it): the charger restarted,
    so the transactions of its running sessions are over (closed unless their StopTransaction comes)."""
    result = station_services.charge_point_boot(charge_point_id=charge_point_id, info=info)
    session_services.sessions_on_boot(charge_point_id=charge_point_id)
    return result


def _status(*, charge_point_id: int, connector_id: int, status: str, timestamp: Any, **fields: Any) -> None:
    """StatusNotification: recorded by stations; then sessions, in the same DB thread hop, when the status says
    whether a transaction runs on the connector (Available/Preparing: none; Charging/Suspended*: one)."""
    station_services.status_record(
        charge_point_id=charge_point_id, connector_id=connector_id, status=status, timestamp=timestamp, **fields
    )
    if connector_id != 0 and status in session_services.CONNECTOR_STATUSES_OF_INTEREST:
        session_services.sessions_on_connector_status(
            charge_point_id=charge_point_id, connector_id=connector_id, status=status, at=timestamp
        )


class BootAdmission:
    """How many BootNotifications this process records at once (OCPP_BOOT_CONCURRENCY). The handshake gate
    (consumers.gate) paces connections; this paces the boots that follow a fleet's restart, each a write of the
    charger's row and its sessions: past the limit the charger is answered Pending and boots again later.
    One event loop per process: plain counters, no lock.

    Tried and dropped: answering every boot Pending while handshakes wait at the gate (connections first). In the
    reconnect storm of 10,000 chargers (3,000 charging) measured with it, the Pending chargers booted again every
    10-60 s and were answered Pending again while the gate still had a queue: 19,792 BootNotifications (13,375
    Pending) for ~7,000 rebooting chargers, half of the fleet back within 51.5 s (33.7 s in the run before it),
    each Pending a frame, an answer and a row of the frame log (benchmarks/ocpp_bench.py --storm, 2026-12-06)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.deferred = 0
        self.admitted = 0

    def admit(self) -> bool:
        if self.in_flight >= settings.OCPP_BOOT_CONCURRENCY:
            self.deferred += 1
            metrics.OCPP_BOOTS_DEFERRED.inc()
            return False
        self.in_flight += 1
        self.admitted += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1


boots = BootAdmission()


class CentralChargePoint(ChargePoint):  # type: ignore[misc]
    def __init__(self, handshake: Handshake, transport: Transport, response_timeout: float = 30) -> None:
        super().__init__(handshake.identity, transport, response_timeout=response_timeout)
        self.handshake = handshake
        self.registration_status = handshake.registration_status
        self._answers: OrderedDict[str, str] = OrderedDict()
        self._outstanding: tuple[str, str, float] | None = None
        self._heartbeat_written = False
        # work a handler leaves for after its answer is sent (a CALL of ours that must follow the answer)
        self._after_answer: list[Callable[[], Awaitable[Any]]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ frames
    def _log(self, direction: str, kind: int, **fields: Any) -> None:
        action = str(getattr(fields.get("action"), "value", fields.get("action")) or "")
        _frames_counter(action, direction, kind).inc()
        if fields.get("latency_ms") is not None:
            _latency_histogram(action, direction).observe(fields["latency_ms"] / 1000)
        log.add(
            tenant_id=self.handshake.tenant_id,
            charge_point_id=self.handshake.charge_point_id,
            direction=direction,
            kind=kind,
            **fields,
        )

    async def route_message(self, raw_msg: str) -> None:
        started = time.perf_counter()
        try:
            msg = unpack(raw_msg)
        except OCPPError as error:
            await self._refuse_unparsable(raw_msg, error)
            return
        if msg.message_type_id == MessageType.Call:
            await self._on_call(msg, started)
        else:
            self._on_answer(msg)

    async def _refuse_unparsable(self, raw: str, error: OCPPError) -> None:
        found = _UNIQUE_ID.match(raw)  # the JSON may be broken: find the id the charger waits for anyway
        unique_id = found.group(1) if found else None
        self._log("in", 0, payload={"raw": raw[:4000]}, result=f"{error.code}", warning=str(error.details)[:500])
        if isinstance(unique_id, str):
            # 1.6 spells it FormationViolation (the package raises the 2.0 FormatViolation / ProtocolError)
            code_error: OCPPError = error
            if error.code in ("FormatViolation", "ProtocolError"):
                code_error = FormationViolationError(details=error.details)
            answer = CallError(unique_id, code_error.code, code_error.description, code_error.details).to_json()
            await self._send(answer)
            self._log("out", 4, unique_id=unique_id, result=code_error.code)

    def _on_answer(self, msg: CallResult | CallError) -> None:
        latency = None
        action = ""
        if self._outstanding is not None and self._outstanding[0] == msg.unique_id:
            action = self._outstanding[1]
            latency = (time.perf_counter() - self._outstanding[2]) * 1000
        if msg.message_type_id == MessageType.CallError:
            self._log(
                "in",
                4,
                action=action,
                unique_id=msg.unique_id,
                payload=msg.error_details or None,
                result=f"{msg.error_code}: {msg.error_description}"[:200],
                latency_ms=latency,
            )
        else:
            status = msg.payload.get("status", "") if isinstance(msg.payload, dict) else ""
            self._log(
                "in",
                3,
                action=action,
                unique_id=msg.unique_id,
                payload=msg.payload,
                result=str(status),
                latency_ms=latency,
            )
        self._response_queue.put_nowait(msg)

    async def _on_call(self, msg: Call, started: float) -> None:
        cached = self._answers.get(msg.unique_id)
        if cached is not None:  # a repeated unique id: the same answer again, nothing done twice
            self._log("in", 2, action=msg.action, unique_id=msg.unique_id, payload=msg.payload, result="repeated")
            await self._send(cached)
            return
        warnings: list[str] = []
        logged = False
        try:
            handler, kwargs = self._prepare(msg, warnings)
            # logged before the handler runs: a frame whose processing is interrupted (the socket closed and
            # the drain ran out of time) is in the log all the same
            self._log_call(msg, warnings)
            logged = True
            answer, result = await self._handle(msg, handler, kwargs)
        except OCPPError as error:
            answer = msg.create_call_error(error).to_json()
            result = error.code
        finally:
            if not logged:
                self._log_call(msg, warnings)
        kind = 4 if answer.startswith("[4") else 3
        self._answers[msg.unique_id] = answer
        if len(self._answers) > RECENT_ANSWERS:
            self._answers.popitem(last=False)
        # recorded (frame log, latency) before it is sent: the answer leaves within `_send` (daphne_patch writes to
        # the socket at once), and a charger that has it may already be looking at what the platform recorded
        self._log(
            "out",
            kind,
            action=msg.action,
            unique_id=msg.unique_id,
            payload=json.loads(answer)[2 if kind == 3 else 4],
            result=result,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        await self._send(answer)
        self._run_after_answer()

    def _run_after_answer(self) -> None:
        work, self._after_answer = self._after_answer, []
        for job in work:
            task = asyncio.ensure_future(self._background_job(job))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _background_job(self, job: Callable[[], Awaitable[Any]]) -> None:
        try:
            await job()
        except ApplicationError as error:
            logger.warning("%s: follow-up work failed: %s", self.id, error.message)
        except Exception:
            logger.exception("%s: follow-up work failed", self.id)

    def _log_call(self, msg: Call, warnings: list[str]) -> None:
        self._log(
            "in",
            2,
            action=msg.action,
            unique_id=msg.unique_id,
            payload=_redact(msg.action, msg.payload),
            warning="; ".join(warnings),
        )

    def log_unprocessed(self, raw: str, reason: str) -> None:
        """Log a frame the charger sent that was never processed (left over when its socket closed)."""
        try:
            msg = unpack(raw)
        except OCPPError:
            self._log("in", 0, payload={"raw": raw[:4000]}, result=reason)
            return
        if isinstance(msg, Call):
            self._log(
                "in",
                2,
                action=msg.action,
                unique_id=msg.unique_id,
                payload=_redact(msg.action, msg.payload),
                result=reason,
            )
        else:
            self._log("in", msg.message_type_id, unique_id=msg.unique_id, payload=msg.payload, result=reason)

    def _prepare(self, msg: Call, warnings: list[str]) -> tuple[Callable[..., Awaitable[Any]], dict[str, Any]]:
        """The handler of a CALL and its arguments, or the OCPPError that answers it (nothing done yet)."""
        handlers = self.route_map.get(msg.action)
        if handlers is None or "_on_action" not in handlers:
            try:
                Action(msg.action)
            except ValueError:
                raise NotSupportedError(details={"cause": f"{msg.action} is not an OCPP 1.6 action."}) from None
            raise OcppNotImplemented(details={"cause": f"{msg.action} is not handled by this central system."})
        if msg.action not in ALLOWED_BEFORE_ACCEPTED and self.registration_status != "Accepted":
            raise SecurityError(
                details={"cause": f"Charge point is {self.registration_status}; send BootNotification."}
            )
        checked = check_call(msg.action, msg.payload, lenient=self.handshake.lenient)
        warnings.extend(checked.warnings)
        return handlers["_on_action"], camel_to_snake_case(checked.payload)

    async def _handle(
        self, msg: Call, handler: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]
    ) -> tuple[str, str]:
        try:
            response = await handler(**kwargs)
        except OCPPError:
            raise
        except ApplicationError as error:
            raise GenericError(details={"cause": error.message, "code": error.code}) from None
        except Exception:
            logger.exception("%s: %s handler failed", self.id, msg.action)
            raise InternalError(details={"cause": "The central system could not process this message."}) from None
        payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        return msg.create_call_result(payload).to_json(), str(payload.get("status", "")) or str(
            payload.get("idTagInfo", {}).get("status", "")
        )

    # ------------------------------------------------------------------ server-initiated CALLs
    async def send_call(
        self, action: str, payload: dict[str, Any], *, timeout: float, log_payload: Any = None
    ) -> dict[str, Any]:
        """One CALL to the charger (they queue on the package's call lock); its CALLRESULT payload, or raises
        CallErrorAnswer / TimeoutError."""
        call = Call(unique_id=str(uuid.uuid4()), action=action, payload=payload)
        async with self._call_lock:
            self._outstanding = (call.unique_id, action, time.perf_counter())
            self._log(
                "out",
                2,
                action=action,
                unique_id=call.unique_id,
                payload=log_payload if log_payload is not None else _redact(action, payload),
            )
            try:
                await self._send(call.to_json())
                response = await self._get_specific_response(call.unique_id, timeout)
            finally:
                self._outstanding = None
        if response.message_type_id == MessageType.CallError:
            raise CallErrorAnswer(response.error_code, response.error_description, response.error_details)
        return response.payload if isinstance(response.payload, dict) else {}

    # ------------------------------------------------------------------ Core profile
    @on(Action.boot_notification)
    async def on_boot_notification(self, **info: Any) -> call_result.BootNotification:
        if not boots.admit():
            # admission control: the process is recording as many boots as it may; this charger comes back
            # after the interval (jittered, so that a fleet does not return at one instant). Nothing is
            # recorded and its registration state is unchanged: the next BootNotification is the real one.
            low, high = settings.OCPP_BOOT_RETRY_SECONDS
            return call_result.BootNotification(
                current_time=format_datetime(timezone.now()),
                interval=random.randint(low, high),  # noqa: S311 (jitter, not a secret)
                status="Pending",
            )
        try:
            result = await run_db(_boot, charge_point_id=self.handshake.charge_point_id, info=info)
        finally:
            boots.release()
        self.registration_status = result.status
        return call_result.BootNotification(
            current_time=format_datetime(result.current_time), interval=result.interval, status=result.status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        if not self._heartbeat_written:  # the first of a connection at once, later ones batched (heartbeats.py)
            now = await run_db(station_services.charge_point_heartbeat, charge_point_id=self.handshake.charge_point_id)
            self._heartbeat_written = True
        else:
            now = timezone.now()
            heartbeats.batch.add(self.handshake.charge_point_id, now)
        return call_result.Heartbeat(current_time=format_datetime(now))

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **extra: Any
    ) -> call_result.StatusNotification:
        await run_db(
            _status,
            charge_point_id=self.handshake.charge_point_id,
            connector_id=connector_id,
            status=status,
            error_code=error_code,
            info=extra.get("info") or "",
            vendor_error_code=extra.get("vendor_error_code") or "",
            timestamp=parse_datetime(extra["timestamp"]) if extra.get("timestamp") else None,
        )
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        info = await run_db(
            session_services.id_tag_authorize_at, charge_point_id=self.handshake.charge_point_id, id_tag=id_tag
        )
        return call_result.Authorize(id_tag_info=_id_tag_info(info))

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **extra: Any
    ) -> call_result.StartTransaction:
        session, info = await run_db(
            session_services.session_start,
            charge_point_id=self.handshake.charge_point_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=parse_datetime(timestamp),
            reservation_id=extra.get("reservation_id"),
        )
        return call_result.StartTransaction(transaction_id=session.pk, id_tag_info=_id_tag_info(info))

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **extra: Any
    ) -> call_result.MeterValues:
        for entry in meter_value:
            entry["timestamp"] = parse_datetime(entry.get("timestamp"), "meterValue.timestamp")
        await run_db(
            session_services.session_add_meter_values,
            charge_point_id=self.handshake.charge_point_id,
            connector_id=connector_id,
            transaction_id=extra.get("transaction_id"),
            meter_value=meter_value,
        )
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **extra: Any
    ) -> call_result.StopTransaction:
        data = extra.get("transaction_data") or []
        for entry in data:
            entry["timestamp"] = parse_datetime(entry.get("timestamp"), "transactionData.timestamp")
        _, info = await run_db(
            session_services.session_stop,
            charge_point_id=self.handshake.charge_point_id,
            transaction_id=transaction_id,
            meter_stop=meter_stop,
            timestamp=parse_datetime(timestamp),
            reason=extra.get("reason") or session_services.DEFAULT_STOP_REASON,  # 1.6: omitted means Local
            id_tag=extra.get("id_tag") or "",
            transaction_data=data,
        )
        return call_result.StopTransaction(id_tag_info=_id_tag_info(info))

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **extra: Any) -> call_result.DataTransfer:
        message_id, data = extra.get("message_id"), extra.get("data")
        handler = DATA_TRANSFER_HANDLERS.get((vendor_id, message_id)) or DATA_TRANSFER_HANDLERS.get((vendor_id, None))
        if handler is None:
            known_vendor = any(vendor == vendor_id for vendor, _ in DATA_TRANSFER_HANDLERS)
            return call_result.DataTransfer(status="UnknownMessageId" if known_vendor else "UnknownVendorId")
        status, answer = await handler(self.handshake, message_id, data)
        return call_result.DataTransfer(status=status, data=answer)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ Firmware management
    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(self, status: str, **_: Any) -> call_result.FirmwareStatusNotification:
        await run_db(
            station_services.firmware_status_record, charge_point_id=self.handshake.charge_point_id, status=status
        )
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(
        self, status: str, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        await run_db(
            station_services.diagnostics_status_record, charge_point_id=self.handshake.charge_point_id, status=status
        )
        return call_result.DiagnosticsStatusNotification()

    # ------------------------------------------------------------------ Security extension (whitepaper edition 3)
    @on(Action.security_event_notification)
    async def on_security_event_notification(self, **fields: Any) -> call_result.SecurityEventNotification:
        await run_db(
            security_services.security_event_record,
            charge_point_id=self.handshake.charge_point_id,
            type=fields["type"],
            timestamp=parse_datetime(fields["timestamp"]),
            tech_info=fields.get("tech_info") or "",
        )
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **_: Any) -> call_result.SignCertificate:
        """Accepted when the CSR is valid and names this charger (CN = charge point id); the tenant's CA then
        signs it and CertificateSigned follows, after this answer, through `send_command`."""
        request = await run_db(
            security_services.signing_request_record, charge_point_id=self.handshake.charge_point_id, csr=csr
        )
        if request.status != request.Status.RECEIVED:
            return call_result.SignCertificate(status="Rejected")  # type: ignore[arg-type]
        self._after_answer.append(lambda: security_services.signing_request_fulfil_async(request_id=request.pk))
        return call_result.SignCertificate(status="Accepted")  # type: ignore[arg-type]

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status_notification(
        self, status: str, **extra: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        await run_db(
            security_services.signed_firmware_status_record,
            charge_point_id=self.handshake.charge_point_id,
            status=status,
            request_id=extra.get("request_id"),
        )
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(self, status: str, **extra: Any) -> call_result.LogStatusNotification:
        await run_db(
            security_services.log_status_record,
            charge_point_id=self.handshake.charge_point_id,
            status=status,
            request_id=extra.get("request_id"),
        )
        return call_result.LogStatusNotification()
