"""The project's ASGI application served by daphne, as in production: one daphne `Server` per test process, with
the options of `evplatform.server` (the production command line), its Twisted asyncio reactor running in a
thread of its own on a free loopback port.

In process, so what a test sets (settings, eager Celery, monkeypatches) and what it wrote (transactional_db) is
what the server sees; started once, so a test pays only for its own sockets. Between tests the server is made
quiet: every socket still open is dropped, every consumer has finished (its disconnect drain and cleanup
included), the frame log is flushed and the DB threads are idle, so the test database can be flushed without
racing a late write.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaphneThread:
    def __init__(self) -> None:
        import daphne.server  # first: installs Twisted's asyncio reactor

        from evplatform.asgi import application
        from evplatform.server import server_options

        self.server = daphne.server.Server(
            application,
            endpoints=["tcp:port=0:interface=127.0.0.1"],
            signal_handlers=False,
            verbosity=0,
            **server_options(),
        )
        self.thread = threading.Thread(target=self.server.run, name="daphne", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.listening_addresses:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("daphne did not start")
            time.sleep(0.01)
        self.port = self.server.listening_addresses[0][1]
        from twisted.internet import reactor

        self.reactor: Any = reactor
        self.loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def run(self, func: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's event loop (where the consumers and the frame log live)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(func(), self.loop))  # type: ignore[arg-type]

    def _busy(self) -> bool:
        for details in list(self.server.connections.values()):
            instance = details.get("application_instance")
            if instance is not None and not instance.done():
                return True
        return False

    async def _quiesce(self, timeout: float) -> None:
        from autobahn.websocket.protocol import WebSocketProtocol

        for protocol in list(self.server.connections):
            if isinstance(protocol, WebSocketProtocol) and protocol.state != WebSocketProtocol.STATE_CLOSED:
                protocol.dropConnection(abort=True)
        deadline = time.monotonic() + timeout
        while self._busy():
            if time.monotonic() > deadline:
                raise RuntimeError("a consumer did not finish after its socket closed")
            await asyncio.sleep(0.01)

    async def quiesce(self, timeout: float = 30) -> None:
        from apps.ocpp import dbcall, heartbeats
        from apps.ocpp.logbuffer import buffer

        await self.run(lambda: self._quiesce(timeout))
        await self.run(heartbeats.batch.flush)
        await self.run(buffer.flush)
        await asyncio.get_running_loop().run_in_executor(None, dbcall.drain)

    def stop(self) -> None:
        self.reactor.callFromThread(self.reactor.stop)
        self.thread.join(10)


_daphne: DaphneThread | None = None
_lock = threading.Lock()


def daphne_server() -> DaphneThread:
    """This test process's daphne (started at the first use)."""
    global _daphne
    with _lock:
        if _daphne is None:
            _daphne = DaphneThread()
        return _daphne


def stop_daphne() -> None:
    if _daphne is not None:
        _daphne.stop()


async def flush_frame_log() -> None:
    """Write the frame log's buffer now (on the server's loop, where frames are added)."""
    from apps.ocpp.logbuffer import buffer

    await daphne_server().run(buffer.flush)


@asynccontextmanager
async def serve_asgi() -> AsyncIterator[str]:
    """Yield `ws://127.0.0.1:<port>` of the process's daphne; on exit make it quiet (see the module doc)."""
    server = daphne_server()
    try:
        yield server.url
    finally:
        await server.quiesce()
