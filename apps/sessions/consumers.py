"""`/ws/sessions/<id>`: live updates of one session, for driver apps and the back office.

Authenticated by a tenant API key (`?api_key=` or the `X-Api-Key` / `Authorization: Api-Key` header) or the
admin session cookie; the session must belong to a tenant the caller can read (else close 4403). An API key
caller may name the driver it acts for (`?driver=<id>`): then only that driver's sessions are visible.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from apps.sessions.live import group_name
from apps.sessions.models import ChargingSession
from apps.tenants.access import access_for_user
from apps.tenants.selectors import api_key_lookup


def _raw_key(scope: dict[str, Any]) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode())
    if query.get("api_key"):
        return query["api_key"][0]
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    keyword, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if keyword.lower() == "api-key" and value else None


def _allowed(scope: dict[str, Any], session_id: int) -> bool:
    session = ChargingSession.objects.filter(pk=session_id).values("tenant_id", "driver_id").first()
    if session is None:
        return False
    raw = _raw_key(scope)
    if raw is not None:
        key = api_key_lookup(raw_key=raw)
        now = timezone.now()
        if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
            return False
        if not key.tenant.is_active or key.tenant_id != session["tenant_id"] or not key.allows("driver", write=False):
            return False
        driver = (parse_qs(scope.get("query_string", b"").decode()).get("driver") or [""])[0]
        return not driver or (driver.isdigit() and int(driver) == session["driver_id"])
    user = scope.get("user")
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return access_for_user(user).can_read(session["tenant_id"])


class SessionConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        self.group = ""
        session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        if not await database_sync_to_async(_allowed)(self.scope, session_id):
            await self.close(code=4403)
            return
        self.group = group_name(session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        return

    async def session_update(self, event: dict[str, Any]) -> None:
        await self.send_json(event["data"])
