"""What daphne 4.2.3 lacks for telling a charger why it is refused; installed from the app config, a no-op when
daphne is not installed.

- The `reason` of an ASGI `websocket.close`: daphne calls `sendClose(code)` only. OCPP needs it in the close frame
  (why a charger was refused or replaced), so it is passed through.
- The ASGI "WebSocket Denial Response" extension (`websocket.http.response.start` / `.body`): daphne can only
  refuse a handshake with a bare `403 Access denied`. With the extension the application answers the handshake
  with its own status, headers and body (401 with `WWW-Authenticate`, 404 naming the expected URL, 503 with
  `Retry-After` ...). Scopes of WebSocket connections announce it in `extensions`, as the ASGI spec says.
- A graceful stop: on SIGTERM/SIGINT daphne cancels every application at once, so a charger's frames received
  but not yet processed, and the frame log's buffer, were lost at every restart. Now the open sockets are closed
  first (1000, "The central system is restarting: reconnect"), each consumer drains and records its close as at
  any close, and only what is still running after daphne's application close timeout is cancelled. The
  listening ports close first: a charger reconnecting at once must reach the next process, not this one. This part
  patches `daphne.server.Server`, so it is installed only where daphne's server is loaded (importing it installs
  a Twisted reactor): the daphne process (`evplatform.server` imports it first) and the tests' server.
- autobahn formats its whole configuration with `pprint.pformat` for a debug log line at every TCP connection
  (`WebSocketProtocol._connectionMade`), whether debug logging is on or not: 0.16 ms each on an idle machine, 7 % of
  the event loop's samples in a reconnect storm of 10,000 chargers (py-spy). Its `pformat` is replaced by a lazy
  one: the text is made only if the line is ever written.
- Writes go to the socket at once: Twisted buffers every write and has the reactor watch the socket for writing
  until the next loop turn sends it (epoll's modify twice per frame and a callback). Each of those system calls let
  a DB thread take the interpreter from the event loop (`evplatform/server.py`, the switch interval): py-spy of
  10,000 chargers found epoll's modify in 7.5-16.6 % of the event loop's busy samples. A TCP connection with nothing
  buffered now sends what it is given; only what the kernel does not take is buffered, as before. In the storm after
  it modify was gone from the samples and all 10,000 were back within 52.0 s (55.2 and 58.8 s without it: within
  the runs' spread; benchmarks/ocpp_bench.py --storm --warm, 2026-12-07).
- TLS for security profiles 2 and 3 (`apps.ocpp.tls`): the `ocpptls:` endpoint (asks for client certificates) and,
  on its connections, the ASGI TLS extension (`client_cert_chain`) and `scheme` "wss" in WebSocket scopes.
"""

from __future__ import annotations

import http
import logging
import pprint
import sys
import time
from collections.abc import Callable
from typing import Any

from apps.ocpp import tls

logger = logging.getLogger(__name__)

DENIAL = "websocket.http.response"

# A WebSocket handshake's path -> the (status, headers, body) to refuse it with before daphne makes its application,
# or None; set by `apps.ocpp.consumers` (the handshake gate's refusal when it is full)
refuse_before_application: Callable[[str], tuple[int, list[tuple[bytes, bytes]], bytes] | None] | None = None


def _denial_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Refused"
    lines = [f"HTTP/1.1 {status} {phrase}".encode()]
    for name, value in headers:
        if name.lower() not in (b"content-length", b"connection"):
            lines.append(name + b": " + value)
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close", b"", b""]
    return b"\r\n".join(lines) + body


class LazyFormat:
    """`pprint.pformat(obj)` made when the text is asked for (a log line formatted), not when the line is logged."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return pprint.pformat(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


def install() -> None:
    try:
        from autobahn.websocket.types import ConnectionDeny
        from daphne.ws_protocol import WebSocketProtocol  # not daphne.server: importing it installs a reactor
    except ImportError:  # pragma: no cover - another ASGI server
        return
    if "daphne.server" in sys.modules:
        install_graceful_stop()
        install_immediate_writes()
        tls.install()
    if getattr(WebSocketProtocol, "_evp_patched", False):
        return
    from autobahn.websocket import protocol as autobahn_protocol

    # its debug lines take pformat(obj) as a formatting argument; Timings.__str__ (off unless trackTimings) needs text
    autobahn_protocol.pformat = LazyFormat  # type: ignore[assignment]
    autobahn_protocol.Timings.__str__ = lambda self: pprint.pformat(self._timings)  # type: ignore[method-assign]
    original_reply = WebSocketProtocol.handle_reply
    original_error_response = WebSocketProtocol.sendHttpErrorResponse
    original_connect = WebSocketProtocol.onConnect
    original_close = WebSocketProtocol.onClose

    def handle_reply(self: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "websocket.close" and message.get("reason") and self.state != self.STATE_CONNECTING:
            code = message.get("code") or 1000
            self.sendClose(code=code, reason=str(message["reason"])[:120])
            return
        if kind == f"{DENIAL}.start" and self.state == self.STATE_CONNECTING:
            self._evp_denial = (int(message["status"]), list(message.get("headers") or []), [])
            return
        if kind == f"{DENIAL}.body" and getattr(self, "_evp_denial", None) is not None:
            self._evp_denial[2].append(bytes(message.get("body") or b""))
            if not message.get("more_body") and hasattr(self, "handshake_deferred"):
                # as daphne's own serverReject, with our status: autobahn then writes the response (below)
                self.handshake_deferred.errback(ConnectionDeny(code=self._evp_denial[0]))
                del self.handshake_deferred
                self.server.protocol_disconnected(self)
            return
        original_reply(self, message)

    def send_http_error_response(self: Any, code: int, reason: str, response_headers: Any = None) -> None:
        denial = getattr(self, "_evp_denial", None)
        if denial is None:
            original_error_response(self, code, reason, response_headers)
            return
        status, headers, chunks = denial
        self.sendData(_denial_response(status, headers, b"".join(chunks)))

    def on_connect(self: Any, request: Any) -> Any:
        server = self.factory.server_class  # daphne's Server instance: announce the extension in its scopes
        if not getattr(server, "_evp_denial", False):
            create = server.create_application

            def create_application(protocol: Any, scope: dict[str, Any]) -> Any:
                scope["extensions"] = {**(scope.get("extensions") or {}), DENIAL: {}}
                if scope.get("type") == "websocket":  # served by the `ocpptls:` endpoint: the ASGI TLS extension
                    tls_extension = tls.scope_extension(getattr(protocol, "transport", None))
                    if tls_extension is not None:
                        scope["extensions"]["tls"] = tls_extension
                        scope["scheme"] = "wss"
                return create(protocol, scope)

            server.create_application = create_application
            server._evp_denial = True
        refusal = refuse_before_application(request.path) if refuse_before_application is not None else None
        if refusal is not None:  # written by send_http_error_response; daphne never sees the socket
            status, headers, body = refusal
            self._evp_refused_early = True
            self._evp_denial = (status, headers, [body])
            raise ConnectionDeny(code=status)
        return original_connect(self, request)

    def on_close(self: Any, was_clean: bool, code: int | None, reason: str | None) -> None:
        if getattr(self, "_evp_refused_early", False):  # neither in daphne's connections nor with an application
            return
        original_close(self, was_clean, code, reason)

    WebSocketProtocol.handle_reply = handle_reply
    WebSocketProtocol.sendHttpErrorResponse = send_http_error_response
    WebSocketProtocol.onConnect = on_connect
    WebSocketProtocol.onClose = on_close
    WebSocketProtocol._evp_patched = True


RESTARTING = "The central system is restarting: reconnect"


def install_graceful_stop() -> None:
    """Close the sockets and let the consumers finish before daphne cancels them (see the module doc)."""
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketProtocol

    if getattr(Server, "_evp_graceful", False):
        return
    original_kill = Server.kill_all_applications
    original_listen_success = Server.listen_success

    def listen_success(self: Any, port: Any) -> None:
        self.__dict__.setdefault("_evp_ports", []).append(port)
        original_listen_success(self, port)

    def close_open_sockets(self: Any) -> None:
        for protocol in list(self.connections):
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
                protocol.sendClose(code=1000, reason=RESTARTING)

    def kill_all_applications(self: Any) -> Any:
        from twisted.internet import defer
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor

        # no new connections while stopping: a charger reconnecting at once was accepted by the stopping
        # process, spoke, and was cancelled with it (its frames lost); refused now, it retries the next process
        for port in self.__dict__.get("_evp_ports", []):
            port.stopListening()
        started = time.monotonic()
        sockets = len(self.connections)
        logger.info("stopping: closing %d connections", sockets)
        close_open_sockets(self)
        deadline = time.monotonic() + self.application_close_timeout
        finished: defer.Deferred[None] = defer.Deferred()

        def running() -> bool:
            for details in list(self.connections.values()):
                instance = details.get("application_instance")
                if instance is not None and not instance.done():
                    return True
            return False

        closed_at = [time.monotonic()]

        def check() -> None:
            # handshakes that were under way when the stop began; every 0.5 s, not at each check: a pass over
            # 10,000 sockets was 3.6 % of the stopping process's samples (py-spy, a storm of 10,000 chargers)
            if time.monotonic() - closed_at[0] >= 0.5:
                close_open_sockets(self)
                closed_at[0] = time.monotonic()
            if running() and time.monotonic() < deadline:
                reactor.callLater(0.05, check)
            else:
                logger.info(
                    "stopping: the applications of %d connections finished in %.1f s%s",
                    sockets,
                    time.monotonic() - started,
                    "" if time.monotonic() < deadline else " (the rest cancelled at the close timeout)",
                )
                finished.callback(None)

        check()
        finished.addCallback(lambda _: original_kill(self))
        return finished

    Server.listen_success = listen_success
    Server.kill_all_applications = kill_all_applications
    Server._evp_graceful = True


def install_immediate_writes() -> None:
    """A TCP connection with nothing buffered sends a write at once (see the module doc)."""
    from twisted.internet import abstract, tcp

    if getattr(abstract.FileDescriptor, "_evp_immediate", False):
        return
    buffered_write = abstract.FileDescriptor.write

    def write(self: Any, data: bytes) -> None:
        if (
            data
            and isinstance(self, tcp.Connection)
            and isinstance(data, bytes)
            and self.connected
            and not self._writeDisconnected
            and not self._tempDataLen
            and self.offset == len(self.dataBuffer)
        ):
            sent = self.writeSomeData(data)  # bytes the kernel took, or the connection's loss (left to doWrite)
            if isinstance(sent, int):
                if sent == len(data):
                    return
                data = data[sent:]
        buffered_write(self, data)

    abstract.FileDescriptor.write = write  # type: ignore[method-assign]
    abstract.FileDescriptor._evp_immediate = True  # type: ignore[attr-defined]
