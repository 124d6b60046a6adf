"""Analytics test support: a real OCPP WebSocket server (uvicorn in the test's loop) with raw OCPP-J chargers,
a local HTTP webhook receiver on 127.0.0.1 that can be down and come back, and eager Celery."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import websockets

from evplatform.celery import app as celery_app
from tests.asgi_server import free_port, serve_asgi


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run in the caller (after commit), as a worker would run them."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


# --------------------------------------------------------------------------- webhook receiver


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """An enterprise customer's endpoint on 127.0.0.1: records every request; `start`/`stop` make it go up and down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/evp"
        self.received: list[Received] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(Received(dict(self.headers.items()), self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, prefix: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("EVP-Event-Type", "").startswith(prefix)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    instance.start()
    yield instance
    instance.stop()


# --------------------------------------------------------------------------- OCPP server and chargers


@pytest.fixture
async def ocpp_server(transactional_db: None) -> AsyncIterator[str]:
    async with serve_asgi() as url:
        yield url


@dataclass
class SimCharger:
    """A raw OCPP 1.6-J charger: sends CALLs, answers the server's CALLs from `answers[action]`
    (a payload; None = never answer)."""

    ws: Any
    answers: dict[str, Any] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _pending: dict[str, asyncio.Future[list[Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame[0] == 2:
                answer = self.answers.get(frame[2], {})
                if answer is not None:
                    await self.ws.send(json.dumps([3, frame[1], answer]))
            else:
                future = self._pending.pop(frame[1], None)
                if future is not None and not future.done():
                    future.set_result(frame)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        unique_id = f"m{next(self._ids)}"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        frame = await asyncio.wait_for(future, 10)
        assert frame[0] == 3, frame
        return frame[2]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


async def open_charger(base_url: str, identity: str, password: str) -> SimCharger:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    ws = await websockets.connect(
        f"{base_url}/ocpp/{identity}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
        open_timeout=10,
    )
    charger = SimCharger(ws)
    charger.start()
    return charger


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def history(db: None, django_capture_on_commit_callbacks: Any) -> tuple[Any, Any]:
    """A generated day of KPI history for two tenants (see tests/analytics/kpi_history.py)."""
    from tests.analytics.kpi_history import kpi_history

    return kpi_history(django_capture_on_commit_callbacks)
