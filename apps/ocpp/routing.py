"""WebSocket routes of the OCPP endpoint (included by evplatform/routing.py), and the answer to a WebSocket path
nobody serves: a charger configured with a wrong URL (`/ocpp`, `/ocpp/1.6/<id>`, `/ocpp16/<id>` ...) gets an
HTTP 404 at its handshake naming the URL it should use, instead of a 500."""

import logging
from typing import Any

from django.urls import URLPattern, re_path

from apps.ocpp.consumers import SUBPROTOCOL, OcppConsumer, deny

logger = logging.getLogger(__name__)

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"^ocpp/(?P<identity>[^/]+)/?$", OcppConsumer.as_asgi()),
]


async def wrong_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI app for a WebSocket handshake on a path no route takes."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    path = scope["path"]
    headers = dict(scope.get("headers") or [])
    host = headers.get(b"host", b"<host>").decode("latin-1")
    scheme = scope.get("scheme") or "ws"
    reason = (
        f"No WebSocket endpoint at {path}. Chargers connect to {scheme}://{host}/ocpp/<charge point id> "
        f"(the id as the one path segment after /ocpp/) with the subprotocol {SUBPROTOCOL}."
    )
    guess = next((part for part in reversed(path.split("/")) if part), "")
    logger.warning("ocpp path %s refused (HTTP 404) for charger %r (its last part): %s", path, guess, reason)
    await deny(scope, send, 404, reason)
