"""`ws(s)://<host>/ocpp/<identity>`: one consumer per charger socket.

The handshake says clearly why a charger is refused (README "Chargers"), logged with the charger id:
- HTTP 404 (unknown charge point id), 401 (password missing or wrong, or a Basic user that is not the id), 403 (an
  id that cannot be auto-registered), 503 + Retry-After (the process is busy or its database unreachable), with a
  text body saying what to fix (the ASGI WebSocket Denial Response; `daphne_patch` adds it to daphne);
- a connection below the charger's security profile (no TLS for profile 2; no valid client certificate of the
  tenant's CA naming the charger for profile 3; `apps.ocpp.tls` says what the transport proves): HTTP 403;
- a subprotocol other than `ocpp1.6`: accepted without a subprotocol, then closed with 4406 and a reason (as OCPP
  2.0.1 prescribes; daphne's WebSocket library refuses 1002).
Wrong paths (`/ocpp`, `/ocpp/1.6/<id>`, `/ocpp16/<id>`) get a 404 naming the expected URL (`routing.wrong_path`).

Frames go into an asyncio.Queue read by this socket's own task, so a CALL to the charger (commands, run in their
own task, one at a time) never waits behind the charger's own messages. When the socket closes, every frame
received before the close is still applied in order and logged (answers to the closed socket are dropped quietly),
within OCPP_CLOSE_DRAIN_SECONDS and OCPP_CLOSE_DRAIN_FRAMES; then the frame log is flushed.

A reconnect with the same identity replaces the older socket, wherever it is (the newest wins).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import logging
import math
import time
import uuid
from typing import Any
from urllib.parse import unquote

from autobahn.exception import Disconnected as SocketGone  # daphne serves WebSockets with autobahn
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.core.errors import ApplicationError
from apps.ocpp import connections, daphne_patch, tls
from apps.ocpp.central import CallErrorAnswer, CentralChargePoint
from apps.ocpp.dbcall import run_db, run_handshake_db
from apps.ocpp.logbuffer import buffer as frame_log
from apps.stations import dispatch
from apps.stations import services as station_services
from apps.stations.models import CommandStatus
from apps.stations.services import Handshake

logger = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
CLOSE_UNSUPPORTED_SUBPROTOCOL = 4406  # 4000 + HTTP 406 Not Acceptable
DENIAL = "websocket.http.response"
_CLOSED = None  # the inbox's end marker: the socket closed, nothing follows


class _Registry:
    """Sockets held by this process; keeps their presence entries alive in Redis."""

    def __init__(self) -> None:
        self.consumers: dict[str, OcppConsumer] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, consumer: OcppConsumer) -> None:
        self.consumers[consumer.connection_id] = consumer
        if self._task is None or self._task.done() or self._task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.get_running_loop().create_task(self._refresh())

    def remove(self, consumer: OcppConsumer) -> None:
        self.consumers.pop(getattr(consumer, "connection_id", ""), None)

    async def _refresh(self) -> None:
        while self.consumers:
            await asyncio.sleep(dispatch.PRESENCE_REFRESH)
            live = {c.handshake.identity: c.presence for c in list(self.consumers.values()) if not c.closing}
            try:
                await dispatch.presence_set(live)
                await run_db(
                    station_services.charge_point_touch,
                    charge_point_ids=[c.handshake.charge_point_id for c in self.consumers.values()],
                )
            except Exception:
                logger.exception("presence refresh failed")


registry = _Registry()


def basic_auth(headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                user, _, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user, password
    return None


async def deny(
    scope: dict[str, Any], send: Any, status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Refuse a WebSocket handshake with an HTTP status and a text body (ASGI WebSocket Denial Response); a server
    without the extension can only refuse with its own 403."""
    if DENIAL not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1000})
        return
    status, all_headers, body = denial(status, reason, headers)
    await send({"type": f"{DENIAL}.start", "status": status, "headers": all_headers})
    await send({"type": f"{DENIAL}.body", "body": body})


def denial(
    status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers and text body of a refused handshake, as `deny` and daphne's early refusal send them."""
    return status, [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])], (reason + "\n").encode()


class Refused(Exception):
    def __init__(self, status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


tally: collections.Counter[str] = collections.Counter()  # handshakes and frames of this process (stalls.PaceLog)


class Busy(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class Gate:
    """Bounds the handshakes a process runs at once (per event loop): a fleet reconnecting at once after a deploy
    queues here instead of flooding the database threads. Closes are not gated: their Redis round trip waits for
    a connection of the blocking pool (`dispatch.async_client`) and their writes go in batches
    (`apps.ocpp.connections`); gated, the graceful stop of 3,000 sockets wrote them 32 at a time.

    A handshake spends most of its time waiting (a DB thread, Redis), so the bound is set by throughput, not by
    CPU: with 32 at once a storm of 3,000 chargers came back at ~100 handshakes a second while the process held
    the interpreter half of the time, and 1,046 waited so long they were refused; with 128 (the default), all
    were back within 16.5 s of the SIGTERM, none refused (benchmarks/ocpp_bench.py --storm, README).

    Admission: a handshake waits for its slot at most `patience` (half of OCPP_HANDSHAKE_TIMEOUT, the figure
    daphne's connect timeout is set from, evplatform/server.py, so daphne never cuts a handshake that waits its
    turn). One that the queue ahead of it would keep longer is refused at once (503) with a Retry-After that gives
    it a turn of its own: the turns handed out follow one another at the rate the gate lets handshakes through
    (measured over the last `WINDOW` seconds, at least OCPP_HANDSHAKE_RATE), from half of the queue's time on
    (`turn`). Before, every handshake queued and those still waiting after 15 s were refused together, thousands at
    one instant (6,290 in one second) with the same Retry-After (15 s), and came back as one wave: a storm of 10,000
    chargers (3,000 charging) came back per 10 s 2,485, 967, 1,810, 323, 495, 324 ... With the turns: 831, 1,559,
    1,227, 1,424, 1,334, 1,458, 1,587, all 10,000 back, none refused for good; ~140 a second is what the process
    could do next to the traffic of those already back (benchmarks/ocpp_bench.py --storm, README)."""

    WINDOW = 5.0  # seconds over which the rate is measured
    LONGEST = 300  # the longest Retry-After given (s)

    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.waiting = 0
        self.entered: collections.deque[float] = collections.deque()  # when handshakes got a slot (last WINDOW s)
        self.promised = 0.0  # the turn (monotonic) given to the last charger told to come back

    def rate(self, now: float) -> float:
        """Handshakes per second through the gate over the last WINDOW seconds, at least OCPP_HANDSHAKE_RATE.

        Never less: counting on the rate measured while the gate was full, a storm's first seconds (10,000 TCP
        connections accepted at once, the event loop seconds behind, a handful of handshakes through) made it
        1 a second and gave 8,205 chargers a Retry-After of 300 s (benchmarks/ocpp_bench.py --storm). Counting on
        more than the process does costs less: a charger given too early a turn waits its patience at the gate and
        gets the next turn."""
        self._forget(now)
        return max(float(settings.OCPP_HANDSHAKE_RATE), len(self.entered) / self.WINDOW)

    def _forget(self, now: float) -> None:
        while self.entered and self.entered[0] < now - self.WINDOW:
            self.entered.popleft()

    def turn(self, now: float) -> int:
        """The seconds after which a refused charger comes back: its turn after the turns given before it, one per
        1/rate seconds, the first once half of the queue's time at that rate has passed.

        Half: the queue drains faster than the turns come back (its handshakes are parsed and waiting; a returning
        charger connects and is parsed first), and a storm's first turns are given before the gate has measured
        anything. With the turns after the whole queue, a network blip of 10,000 chargers (3,000 charging) drained
        its queue of 3,750 at 375-490 a second while the 6,026 refused had turns from 15 s on at 250 a second: the
        process idled 4-5 s between the two, and all were back within 59.8 s (benchmarks/ocpp_bench.py --blip). A
        turn that comes too early costs a wait at the gate: the queue it finds is at most half of what the gate
        lets wait (the patience), so it is not refused again while the process keeps the rate counted on."""
        rate = self.rate(now)
        self.promised = max(self.promised, now + self.waiting / (2 * rate)) + 1 / rate
        return max(1, min(self.LONGEST, math.ceil(self.promised - now)))

    def refusal(self, patience: float) -> int | None:
        """The seconds after which a handshake arriving now is to come back, if the queue ahead of it would keep it
        longer than `patience`; None if it may wait for its slot."""
        now = time.monotonic()
        if self.slots.locked() and (self.waiting + 1) / self.rate(now) > patience:
            return self.turn(now)
        return None

    async def enter(self, patience: float) -> None:
        """A slot, or `Busy` with the seconds after which to come back."""
        retry_after = self.refusal(patience)
        if retry_after is not None:
            raise Busy(retry_after)
        self.waiting += 1
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=patience)
        except TimeoutError:  # the gate let fewer through than it counted on: a turn after those now waiting
            self.waiting -= 1
            raise Busy(self.turn(time.monotonic())) from None
        else:
            self.waiting -= 1
        now = time.monotonic()
        self.entered.append(now)
        self._forget(now)  # a gate that is never full reads no rate: its record of entries stays WINDOW s long

    def leave(self) -> None:
        self.slots.release()


_gates: dict[int, Gate] = {}


def busy(retry_after: int) -> Refused:
    tally["refused_busy"] += 1
    return Refused(
        503,
        f"The central system is busy with other chargers' handshakes; retry in {retry_after} s.",
        [(b"retry-after", str(retry_after).encode())],
    )


def refuse_before_application(path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """daphne's check of a WebSocket handshake before it makes the application (`daphne_patch`): the HTTP status,
    headers and body of a charger's handshake that the gate refuses at once, else None (the consumer decides).

    The same refusal as the consumer's, made before daphne builds an application instance for the socket (its
    scope, the consumer, a channel and its reader, the denial sent back through daphne and the instance torn down):
    in a reconnect storm of 10,000 chargers 5,000-6,300 handshakes were refused, most of them within 3 s of the
    next process's first, while it held the interpreter 91-100 % of the time (benchmarks/ocpp_bench.py --storm)."""
    if not path.startswith("/ocpp/"):
        return None
    retry_after = gate().refusal(settings.OCPP_HANDSHAKE_TIMEOUT / 2)
    if retry_after is None:
        return None
    tally["handshakes"] += 1
    refused = busy(retry_after)
    logger.warning("ocpp %s refused (HTTP %s): %s", unquote(path[len("/ocpp/") :]), refused.status, refused.reason)
    return denial(refused.status, refused.reason, refused.headers)


daphne_patch.refuse_before_application = refuse_before_application


def gate() -> Gate:
    """This event loop's gate (a test's loop gets its own)."""
    loop_id = id(asyncio.get_running_loop())
    if loop_id not in _gates:
        _gates.clear()
        _gates[loop_id] = Gate(settings.OCPP_HANDSHAKE_CONCURRENCY)
    return _gates[loop_id]


class _Transport:
    def __init__(self, consumer: OcppConsumer) -> None:
        self.consumer = consumer

    async def recv(self) -> str:  # pragma: no cover - the consumer feeds route_message itself
        raise NotImplementedError

    async def send(self, message: str) -> None:
        if self.consumer.gone:  # an answer to a frame drained after the close: nobody to tell
            return
        try:
            await self.consumer.send(text_data=message)
        except SocketGone:  # closed under us, before its disconnect reached the consumer: the frame was applied
            logger.info("ocpp %s: answer not sent, the socket closed", self.consumer.identity)


class OcppConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    handshake: Handshake
    connection_id: str = ""
    closing = False
    gone = False  # the socket is closed (disconnect received)
    serving: asyncio.Task[None] | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels 4.3 runs `close_old_connections` on the ONE thread-sensitive thread before every event; for
        OCPP that is a thread hop per frame, and a stall of every socket whenever that thread is busy. Our DB
        work runs through `run_db`, which cleans connections around each call on its own threads."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        try:
            for group in self.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        except AttributeError:
            pass
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def connect(self) -> None:
        self.identity = unquote(self.scope["url_route"]["kwargs"]["identity"])
        self.tasks: list[asyncio.Task[Any]] = []
        patience = settings.OCPP_HANDSHAKE_TIMEOUT / 2
        tally["handshakes"] += 1
        try:
            try:
                await gate().enter(patience)
            except Busy as full:
                raise busy(full.retry_after) from None
            try:
                await self._connect()
            finally:
                gate().leave()
        except Refused as refused:
            logger.warning("ocpp %s refused (HTTP %s): %s", self.identity, refused.status, refused.reason)
            await deny(self.scope, self.base_send, refused.status, refused.reason, refused.headers)

    async def _connect(self) -> None:
        offered = [p for p in self.scope.get("subprotocols") or [] if p]
        if SUBPROTOCOL not in offered:
            reason = f"Unsupported subprotocol {', '.join(offered) or 'none'}: use {SUBPROTOCOL}"
            logger.warning("ocpp %s refused (close %s): %s", self.identity, CLOSE_UNSUPPORTED_SUBPROTOCOL, reason)
            await self.accept()
            await self.close(code=CLOSE_UNSUPPORTED_SUBPROTOCOL, reason=reason)
            return
        credentials = basic_auth(self.scope.get("headers", []))
        if credentials is not None and credentials[0] != self.identity:
            raise Refused(
                401,
                f"The HTTP Basic user {credentials[0]!r} is not the charge point id {self.identity!r} of the URL: "
                "use the charge point id as the user.",
                [(b"www-authenticate", b'Basic realm="OCPP", charset="UTF-8"')],
            )
        security = tls.transport_security(self.scope)
        try:
            handshake = await run_handshake_db(
                station_services.charge_point_authenticate,
                identity=self.identity,
                password=credentials[1] if credentials else None,
                tls=security.tls,
                client_certificate=security.client_certificate,
            )
        except ApplicationError as error:
            headers = (
                [(b"www-authenticate", b'Basic realm="OCPP", charset="UTF-8"')] if error.status_code == 401 else []
            )
            raise Refused(error.status_code, error.message, headers) from None
        except Exception:
            logger.exception("ocpp %s: handshake failed", self.identity)
            raise Refused(503, "The central system cannot check chargers right now; retry later.") from None
        self.handshake = handshake
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connection_id = uuid.uuid4().hex
        self.presence = dispatch.presence_value(self.connection_id, self.channel_name)
        # the newest wins: this connection takes the presence (commands find its channel there) and tells an older
        # socket of this charger (in any process) to go. A reconnect storm of a whole fleet costs one SET ... GET
        # per charger. A socket that closes from here on releases the presence at its disconnect (the entry names
        # this connection); an entry left otherwise expires (PRESENCE_TTL).
        previous = await connections.takes.submit((self.identity, self.presence))
        if previous is not None and dispatch.presence_connection(previous) != self.connection_id:
            replaced = {"type": "ocpp.replaced", "connection_id": self.connection_id}
            try:  # after a crash every entry names a dead process: telling it is best effort
                if not await dispatch.deliver(self.identity, previous, replaced):
                    logger.warning("ocpp %s: the replaced connection's channel is full", self.identity)
            except Exception:
                logger.warning("ocpp %s: the replaced connection could not be told", self.identity, exc_info=True)
        await self.accept(subprotocol=SUBPROTOCOL)
        tally["accepted"] += 1
        registry.add(self)
        self.cp = CentralChargePoint(handshake, _Transport(self))
        self.serving = asyncio.create_task(self._serve())
        self.tasks = [self.serving, asyncio.create_task(self._run_commands())]

    async def _serve(self) -> None:
        """The connection recorded, then the charger's frames, one after another, until the end marker (the socket
        closed). Recording the connection here rather than in the connect handler frees the consumer at once to
        receive: on a busy machine a charger that spoke and closed while that write waited for a DB thread had
        its frames still in daphne's queue when daphne killed the consumer at its close timeout (lost unlogged)."""
        try:
            await connections.changes.record(
                online=True, charge_point_id=self.handshake.charge_point_id, connection_id=self.connection_id
            )
        except Exception:  # the frames are processed all the same; the next connection or heartbeat records it
            logger.exception("ocpp %s: could not record the connection", self.identity)
        while True:
            raw = await self.inbox.get()
            if raw is _CLOSED:
                return
            try:
                await self.cp.route_message(raw)
            except asyncio.CancelledError:
                raise
            except Exception:  # one frame never ends the socket's processing
                logger.exception("ocpp %s: frame could not be processed", self.identity)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            logger.warning("ocpp %s: binary frame ignored (OCPP-J uses text frames)", self.identity)
            return
        tally["frames"] += 1
        self.inbox.put_nowait(text_data)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self.gone = True
        if not self.connection_id:
            return
        if self.serving is not None:
            try:
                await self._drain()
            except asyncio.CancelledError:  # daphne killed us at its close timeout: what is left is logged
                for frame in self._left():
                    self.cp.log_unprocessed(frame, "not processed: the consumer was stopped")
                raise
        for task in self.tasks:
            task.cancel()
        await frame_log.flush()  # what the socket said is in the log before the charger reads as offline
        await self._cleanup()

    async def _drain(self) -> None:
        """Apply what the charger said before closing: every frame received, in order, within
        OCPP_CLOSE_DRAIN_FRAMES and OCPP_CLOSE_DRAIN_SECONDS; a frame beyond them is logged as not processed."""
        assert self.serving is not None
        received: list[str | None] = []
        while not self.inbox.empty():
            received.append(self.inbox.get_nowait())
        limit = settings.OCPP_CLOSE_DRAIN_FRAMES
        beyond = [frame for frame in received[limit:] if frame is not _CLOSED]
        for frame in received[:limit]:
            self.inbox.put_nowait(frame)
        self.inbox.put_nowait(_CLOSED)
        started = time.monotonic()
        late: list[str] = []
        try:
            await asyncio.wait_for(asyncio.shield(self.serving), timeout=settings.OCPP_CLOSE_DRAIN_SECONDS)
        except TimeoutError:
            self.serving.cancel()  # the frame being processed is logged by CentralChargePoint before its handler
            await asyncio.gather(self.serving, return_exceptions=True)
            late = self._left()
        left = late + beyond
        for frame in left:
            self.cp.log_unprocessed(frame, "not processed: the connection closed")
        if received:
            logger.info(
                "ocpp %s: %d of %d frames received before the close processed after it, in %.0f ms",
                self.identity,
                len(received) - len(left),
                len(received),
                (time.monotonic() - started) * 1000,
            )
        if left:
            logger.warning("ocpp %s: %d frames received before the close not processed", self.identity, len(left))

    def _left(self) -> list[str]:
        left = []
        while not self.inbox.empty():
            frame = self.inbox.get_nowait()
            if frame is not _CLOSED:
                left.append(frame)
        return left

    async def _cleanup(self) -> None:
        registry.remove(self)
        while not self.commands.empty():
            await self._finish(self.commands.get_nowait(), CommandStatus.ERROR, error="Connection closed.")
        try:
            await connections.releases.submit((self.identity, self.presence))
            await connections.changes.record(
                online=False, charge_point_id=self.handshake.charge_point_id, connection_id=self.connection_id
            )
        except Exception:
            logger.exception("ocpp %s: could not record the disconnect", self.identity)

    # ------------------------------------------------------------------ channel-layer events
    async def ocpp_replaced(self, event: dict[str, Any]) -> None:
        if event["connection_id"] != self.connection_id and not self.closing:
            logger.info("ocpp %s: replaced by a newer connection", self.identity)
            self.closing = True
            await self.close(code=1000, reason="Replaced by a newer connection")

    async def ocpp_command(self, event: dict[str, Any]) -> None:
        """Queued, never awaited here: Channels handles one event at a time per consumer."""
        self.commands.put_nowait(event)

    async def _run_commands(self) -> None:
        if self.handshake.password_pending:  # accepted while offline: its own password, then boot into Accepted
            self.tasks.append(
                asyncio.create_task(
                    station_services.charge_point_provision_async(
                        charge_point_id=self.handshake.charge_point_id, delay=PROVISION_DELAY
                    )
                )
            )
        while True:
            event = await self.commands.get()
            remaining = event["deadline"] - time.time()
            if remaining <= 0:
                await self._finish(
                    event, CommandStatus.TIMEOUT, error="Not sent: waited past its timeout in the queue."
                )
                continue
            try:
                await run_db(station_services.command_mark_sent, command_id=event["command_id"])
                response = await self.cp.send_call(
                    event["action"], event["payload"], timeout=remaining, log_payload=event.get("record_payload")
                )
            except CallErrorAnswer as error:
                await self._finish(event, CommandStatus.ERROR, error=str(error), response={"details": error.details})
            except TimeoutError:
                await self._finish(event, CommandStatus.TIMEOUT, error=f"No answer within {remaining:.1f} s.")
            except asyncio.CancelledError:
                await self._finish(event, CommandStatus.ERROR, error="Connection closed.")
                raise
            except Exception as error:  # the socket went away under the send: this command fails, the next may not
                logger.warning("ocpp %s: %s not sent: %r", self.identity, event["action"], error, exc_info=True)
                await self._finish(event, CommandStatus.ERROR, error=f"Not sent: {error!r}"[:500])
            else:
                await self._finish(
                    event, station_services.classify_answer(response, event["action"]), response=response
                )

    async def _finish(
        self, event: dict[str, Any], status: str, *, error: str = "", response: dict[str, Any] | None = None
    ) -> None:
        """Record the result, then answer the caller, in a task of its own: cancelling this consumer (the socket
        closed right after the charger answered) neither loses the result nor answers before it is committed."""
        task = asyncio.ensure_future(_record_and_reply(event, status, error=error, response=response))
        _finishing.add(task)
        task.add_done_callback(_finishing.discard)
        await asyncio.shield(task)


_finishing: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones
PROVISION_DELAY = 1.0  # seconds after the handshake: the charger's own BootNotification goes first


async def _record_and_reply(event: dict[str, Any], status: str, *, error: str, response: dict[str, Any] | None) -> None:
    body = station_services.reply_body(status=status, response=response, error=error)
    try:
        await run_db(
            station_services.command_record_result,
            command_id=event["command_id"],
            status=status,
            response=response,
            error=error,
            request_payload=event["payload"],
        )
    except Exception:  # the caller records the result it is sent (send_command_async), so nothing is lost
        logger.exception("command %s: could not record its result", event["command_id"])
    except asyncio.CancelledError:  # the loop is closing: still answer (the caller records it, after this write)
        await dispatch.reply_push(event["reply_to"], body)
        raise
    try:
        await dispatch.reply_push(event["reply_to"], body)
    except Exception:  # the caller reads the stored result when its wait ends
        logger.exception("command %s: could not answer its caller", event["command_id"])
