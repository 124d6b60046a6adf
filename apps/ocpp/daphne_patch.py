"""daphne 4.2.3 drops the `reason` of an ASGI `websocket.close` (it calls `sendClose(code)` only). OCPP needs
the reason in the close frame (why a charger was refused or replaced), so pass it through. Installed from
the app config; a no-op when daphne is not the server (tests run uvicorn too, which sends reasons)."""

from __future__ import annotations

from typing import Any


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - another ASGI server
        return
    if getattr(WebSocketProtocol, "_evp_close_reason", False):
        return
    original = WebSocketProtocol.handle_reply

    def handle_reply(self: Any, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and message.get("reason") and self.state != self.STATE_CONNECTING:
            code = message.get("code") or 1000
            self.sendClose(code=code, reason=str(message["reason"])[:120])
            return
        original(self, message)

    WebSocketProtocol.handle_reply = handle_reply
    WebSocketProtocol._evp_close_reason = True
