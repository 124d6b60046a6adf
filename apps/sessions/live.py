"""Live session updates: one channel-layer group per session (`charging.session.<id>`), fed after commit."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def group_name(session_id: int) -> str:
    return f"charging.session.{session_id}"


def push(session_id: int, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group_name(session_id), {"type": "session.update", "data": data})
    except Exception:  # a live view: a lost message is repaired by the next one
        logger.exception("live push for session %s failed", session_id)
