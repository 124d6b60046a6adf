"""`/ws/dashboard/[?tenant=<id>]`: live updates for the ops dashboard, authenticated by the admin session.

Staff see their tenants' groups (one tenant when `tenant` is given and readable); superusers see every tenant.
The consumer only fans out: messages are published by the analytics event subscribers (`live.push`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.analytics.live import group_name
from apps.tenants.access import access_for_user
from apps.tenants.models import Tenant


def _tenant_ids(user: Any, wanted: str) -> list[int]:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return []
    access = access_for_user(user)
    visible = access.tenant_ids
    if visible is None:
        visible = set(Tenant.objects.values_list("pk", flat=True))
    if wanted:
        return [int(wanted)] if wanted.isdigit() and int(wanted) in visible else []
    return sorted(visible)


class DashboardConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        wanted = (query.get("tenant") or [""])[0]
        self.groups_joined: list[str] = []
        tenant_ids = await database_sync_to_async(_tenant_ids)(self.scope.get("user"), wanted)
        if not tenant_ids:
            await self.close(code=4403)
            return
        for tenant_id in tenant_ids:
            group = group_name(tenant_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        return  # nothing to say to the server

    async def dashboard_update(self, event: dict[str, Any]) -> None:
        await self.send_json(event["data"])
