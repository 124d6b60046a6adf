"""Analytics test support: a real OCPP WebSocket server (daphne, tests/asgi_server.py) with raw OCPP-J chargers,
a local HTTP webhook receiver on 127.0.0.1 that can be down and come back, and eager Celery."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from evplatform.celery import app as celery_app
from tests.asgi_server import DaphneThread, free_port, serve_asgi


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
async def ocpp_server(transactional_db: None, daphne: DaphneThread) -> AsyncIterator[str]:
    async with serve_asgi() as url:
        yield url


@pytest.fixture
def history(db: None, django_capture_on_commit_callbacks: Any) -> tuple[Any, Any]:
    """A generated day of KPI history for two tenants (see tests/analytics/kpi_history.py)."""
    from tests.analytics.kpi_history import kpi_history

    return kpi_history(django_capture_on_commit_callbacks)
