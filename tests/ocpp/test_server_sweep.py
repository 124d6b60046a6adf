"""daphne as the project starts it (evplatform/server.py): the ping interval comes from the settings, and the sweep
of every connection's timeouts runs in slices instead of one loop over every socket."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from evplatform import server


class FakeProtocol:
    def __init__(self) -> None:
        self.checked = 0

    def check_timeouts(self) -> None:
        self.checked += 1


class FakeReactor:
    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Any, tuple[Any, ...]]] = []

    def callLater(self, delay: float, func: Any, *args: Any) -> None:
        self.scheduled.append((delay, func, args))

    def run_next(self) -> float:
        delay, func, args = self.scheduled.pop(0)
        func(*args)
        return delay


@pytest.fixture
def reactor(monkeypatch: pytest.MonkeyPatch) -> FakeReactor:
    fake = FakeReactor()
    monkeypatch.setattr("twisted.internet.reactor", fake)
    return fake


def sweeper(count: int) -> Any:
    swept = server.BacklogServer.__new__(server.BacklogServer)  # the sweep needs only the connections
    swept.connections = {FakeProtocol(): {} for _ in range(count)}
    return swept


def test_every_connection_is_checked_once_per_sweep_one_slice_per_loop_turn(reactor: FakeReactor) -> None:
    swept = sweeper(server.TIMEOUT_CHECK_SLICE * 2 + 1)
    protocols = list(swept.connections)

    swept.timeout_checker()
    # the first slice at once, the others each on a later turn of the loop, then the next sweep after the interval
    assert sum(p.checked for p in protocols) == server.TIMEOUT_CHECK_SLICE
    delays = [reactor.run_next(), reactor.run_next()]
    assert delays == [0, 0]
    assert [p.checked for p in protocols] == [1] * len(protocols)
    assert [(delay, func.__name__) for delay, func, _ in reactor.scheduled] == [
        (server.TIMEOUT_CHECK_SECONDS, "timeout_checker")
    ]

    reactor.run_next()  # the next sweep
    assert sum(p.checked for p in protocols) == len(protocols) + server.TIMEOUT_CHECK_SLICE


def test_a_connection_closed_during_the_sweep_is_not_checked(reactor: FakeReactor) -> None:
    swept = sweeper(server.TIMEOUT_CHECK_SLICE + 1)
    last = list(swept.connections)[-1]
    swept.timeout_checker()
    del swept.connections[last]  # closed before its slice's turn
    reactor.run_next()
    assert last.checked == 0


def test_an_idle_server_schedules_its_next_sweep(reactor: FakeReactor) -> None:
    sweeper(0).timeout_checker()
    assert [delay for delay, _, _ in reactor.scheduled] == [server.TIMEOUT_CHECK_SECONDS]


@override_settings(OCPP_WS_PING_INTERVAL=300, OCPP_WS_PING_TIMEOUT=45)
def test_the_ping_interval_and_timeout_come_from_the_settings() -> None:
    options = server.server_options()
    assert (options["ping_interval"], options["ping_timeout"]) == (300, 45)
    parsed = server.CommandLine().parser.parse_args(["evplatform.asgi:application"])
    assert (parsed.ping_interval, parsed.ping_timeout) == (300, 45)


def test_autobahn_formats_its_configuration_only_for_a_debug_line_that_is_written() -> None:
    """autobahn pformat()s its whole configuration at every TCP connection for a debug line; once the project's
    patches are installed (apps.ocpp.daphne_patch, from the app config) that text is made only if asked for."""
    from autobahn.websocket import protocol

    from apps.ocpp import daphne_patch

    daphne_patch.install()
    calls: list[Any] = []

    class Counted:
        def __repr__(self) -> str:
            calls.append(1)
            return "counted"

    lazy = protocol.pformat([("attribute", Counted(), "Factory")])
    assert calls == []
    assert f"{lazy}" == "[('attribute', counted, 'Factory')]"
    assert len(calls) == 1
    assert str(protocol.Timings()) == "{}"  # its __str__ still returns text


def test_daphne_runs_with_the_short_switch_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """The event loop gets the interpreter back within 0.5 ms of asking, not CPython's 5 ms: set before daphne runs,
    in the process that serves the sockets (evplatform/server.py's docstring has the storm it was measured in)."""
    import sys

    from apps.ocpp import stalls

    seen: list[float] = []
    monkeypatch.setattr(server.CommandLine, "run", lambda self, argv: seen.append(sys.getswitchinterval()))
    monkeypatch.setattr(server, "exit_at_once", lambda: None)
    monkeypatch.setattr(stalls, "install", lambda *args: None)
    before = sys.getswitchinterval()
    try:
        server.main(["evplatform.asgi:application"])
    finally:
        sys.setswitchinterval(before)

    assert seen == [server.SWITCH_INTERVAL]
    assert server.SWITCH_INTERVAL == 0.0005 != before


def access_log_of(**overrides: Any) -> str:
    """What daphne's own access log (AccessLogGenerator, as its command line makes it) writes through the project's
    server for a charger's socket, another WebSocket and an HTTP request."""
    import io

    from daphne.access import AccessLogGenerator

    stream = io.StringIO()
    with override_settings(**overrides):
        served = server.BacklogServer(
            application=None, endpoints=["tcp:port=0"], action_logger=AccessLogGenerator(stream)
        )
    client = {"client": "10.0.0.7:4242"}
    for action in ("connecting", "connected", "disconnected", "rejected"):
        served.log_action("websocket", action, {"path": "/ocpp/CP-1", **client})
    served.log_action("websocket", "connected", {"path": "/ws/live", **client})
    served.log_action("http", "complete", {"method": "GET", "path": "/healthz", "status": 200, "size": 2, **client})
    return stream.getvalue()


def test_the_access_log_leaves_out_the_chargers_sockets() -> None:
    """A charger's connect, close and refusal are recorded by the platform (connections, warnings); daphne's three
    lines per charger socket are left out, every other request is logged as daphne does."""
    lines = access_log_of().splitlines()
    assert [line.split('"')[1] for line in lines] == ["WSCONNECT /ws/live", "GET /healthz"]
    assert lines[1].startswith("10.0.0.7:4242 - - [")
    assert lines[1].endswith('"GET /healthz" 200 2')


def test_the_chargers_sockets_are_in_the_access_log_when_asked_for() -> None:
    lines = access_log_of(OCPP_WS_ACCESS_LOG=True).splitlines()
    assert [line.split('"')[1] for line in lines] == [
        "WSCONNECTING /ocpp/CP-1",
        "WSCONNECT /ocpp/CP-1",
        "WSDISCONNECT /ocpp/CP-1",
        "WSREJECT /ocpp/CP-1",
        "WSCONNECT /ws/live",
        "GET /healthz",
    ]
