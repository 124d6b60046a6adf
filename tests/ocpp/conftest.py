"""The project's ASGI application served by daphne as in production (tests/asgi_server.py), and a raw OCPP-J
test charger on the `websockets` client: every test speaks real frames over TCP.

The server runs on threads of its own, so these tests use `transactional_db`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import websockets
from asgiref.sync import sync_to_async

from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Connector
from apps.tenants.models import Tenant
from tests.asgi_server import DaphneThread, serve_asgi
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory


@pytest.fixture
async def server(transactional_db: None, daphne: DaphneThread) -> AsyncIterator[str]:
    async with serve_asgi() as url:
        yield url


@dataclass
class Station:
    tenant: Tenant
    charge_point: ChargePoint
    password: str
    connectors: list[Connector]


@pytest.fixture
def station(transactional_db: None) -> Station:
    tenant = TenantFactory(slug="ocpp-test")
    location = LocationFactory(tenant=tenant)
    charge_point, password = station_services.charge_point_register(
        tenant=tenant, identity="CP-TEST-1", location=location, heartbeat_interval=60
    )
    assert password is not None
    connectors = [
        ConnectorFactory(evse=EvseFactory(charge_point=charge_point, connector_id=n, evse_uid=f"DE*TST*E1*{n}"))
        for n in (1, 2)
    ]
    return Station(tenant, charge_point, password, connectors)


def auth_header(identity: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{identity}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Charger:
    """A raw OCPP-J charger: sends any frame, answers server CALLs with `answers[action]` (payload or callable)."""

    ws: Any
    answers: dict[str, Any] = field(default_factory=dict)
    received_calls: list[list[Any]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _pending: dict[str, asyncio.Future[list[Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame[0] == 2:
                self.received_calls.append(frame)
                answer = self.answers.get(frame[2], {})
                if callable(answer):
                    answer = answer(frame[3])
                if isinstance(answer, Exception):
                    await self.ws.send(json.dumps([4, frame[1], "NotSupported", str(answer), {}]))
                elif answer is not None:
                    await self.ws.send(json.dumps([3, frame[1], answer]))
            else:
                future = self._pending.pop(frame[1], None)
                if future is not None and not future.done():
                    future.set_result(frame)

    async def send_raw(self, text: str, unique_id: str) -> list[Any]:
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        await self.ws.send(text)
        return await asyncio.wait_for(future, 10)

    async def call(self, action: str, payload: Any, unique_id: str | None = None) -> list[Any]:
        unique_id = unique_id or f"m{next(self._ids)}"
        return await self.send_raw(json.dumps([2, unique_id, action, payload]), unique_id)

    async def ok(self, action: str, payload: Any) -> dict[str, Any]:
        frame = await self.call(action, payload)
        assert frame[0] == 3, frame
        return frame[2]  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


ConnectCharger = Callable[..., Awaitable[Charger]]


async def open_charger(
    base_url: str, identity: str, password: str | None, *, subprotocols: tuple[str, ...] = ("ocpp1.6",)
) -> Charger:
    headers = auth_header(identity, password) if password is not None else {}
    ws = await websockets.connect(
        f"{base_url}/ocpp/{identity}",
        subprotocols=list(subprotocols),  # type: ignore[arg-type]
        additional_headers=headers,
        open_timeout=10,
    )
    charger = Charger(ws)
    charger.start()
    return charger


@pytest.fixture
async def connect(server: str) -> AsyncIterator[ConnectCharger]:
    opened: list[Charger] = []

    async def connect_charger(
        identity: str, password: str | None, *, subprotocols: tuple[str, ...] = ("ocpp1.6",)
    ) -> Charger:
        charger = await open_charger(server, identity, password, subprotocols=subprotocols)
        opened.append(charger)
        return charger

    yield connect_charger
    for charger in opened:
        await charger.close()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def db(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    return sync_to_async(func, thread_sensitive=True)
