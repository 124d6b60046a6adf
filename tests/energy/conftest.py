"""The simulated-charger fixtures of tests/ocpp (a real server and the `station` charger) for the control loop."""

from tests.ocpp.conftest import connect, server, station  # noqa: F401
