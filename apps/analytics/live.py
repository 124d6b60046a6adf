"""Live push to the ops dashboard: one channel-layer group per tenant (`dashboard.t<tenant id>`)."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def group_name(tenant_id: int) -> str:
    return f"dashboard.t{tenant_id}"


def push(tenant_id: int, message: dict[str, Any]) -> None:
    """Send to every open dashboard of the tenant (callers run after commit: event subscribers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group_name(tenant_id), {"type": "dashboard.update", "data": message})
    except Exception:
        logger.exception("dashboard push failed for tenant %s", tenant_id)
