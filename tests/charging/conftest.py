from __future__ import annotations

from tests.ocpp.conftest import connect, server, station  # noqa: F401 (fixtures: a real WebSocket server and charger)
