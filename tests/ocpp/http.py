"""Real HTTP requests to the API served by the same in-loop server as the chargers' WebSockets (tests/asgi_server):
the request runs the whole production path (middleware, API key, view, serializer, `send_command` over Redis)."""

from __future__ import annotations

from typing import Any

import requests
from asgiref.sync import sync_to_async

from apps.tenants.models import Tenant
from tests.ocpp.conftest import db
from tests.tenants.factories import api_key_for


class Api:
    def __init__(self, server: str, key: str) -> None:
        self.base = server.replace("ws://", "http://", 1) + "/api/v1"
        self.headers = {"Authorization": f"Api-Key {key}"}

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        def call() -> tuple[int, Any]:
            response = requests.request(method, self.base + path, json=body, headers=self.headers, timeout=60)
            return response.status_code, response.json()

        return await sync_to_async(call, thread_sensitive=False)()

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        return await self.request("POST", path, body)

    async def patch(self, path: str, body: Any) -> tuple[int, Any]:
        return await self.request("PATCH", path, body)


async def api_for(server: str, tenant: Tenant) -> Api:
    _, key = await db(api_key_for)(tenant, ["*"])
    return Api(server, key)


def flat(fields: Any, path: str = "") -> dict[str, list[str]]:
    """The API's nested field errors as {dotted path: messages} (DRF nests dicts, and lists for lists of objects)."""
    found: dict[str, list[str]] = {}
    if isinstance(fields, dict):
        for key, value in fields.items():
            found.update(flat(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(fields, list) and all(isinstance(item, str) for item in fields):
        found[path] = list(fields)
    elif isinstance(fields, list):
        for index, value in enumerate(fields):
            found.update(flat(value, f"{path}.{index}" if path else str(index)))
    return found
