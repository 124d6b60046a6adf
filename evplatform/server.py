"""daphne as every command line of the project starts it (Procfile, docker/, scripts/stack.py, the benchmarks,
and the tests' in-process server): `python -m evplatform.server <daphne's own arguments>`.

The options that must agree with the application come from the settings, so they are set in one place:
- `--websocket_connect_timeout` (daphne also uses it for autobahn's opening-handshake timeout, which aborts the
  TCP connection) = `OCPP_HANDSHAKE_TIMEOUT`: the handshake gate of `apps.ocpp.consumers` admits
  `OCPP_HANDSHAKE_CONCURRENCY` handshakes at a time and refuses (HTTP 503) one still queued at half of it, so
  daphne never cuts a handshake that is waiting its turn (daphne's own default, 5 s, cut 22 of 100 chargers
  reconnecting on a busy machine);
- `--application-close-timeout` (after which daphne kills a consumer whose socket closed) = the drain at close
  (`OCPP_CLOSE_DRAIN_SECONDS`) plus the time to record the disconnect.
- the listen backlog of its TCP and `ocpptls:` endpoints = `OCPP_LISTEN_BACKLOG` (4,096; the kernel caps it at
  `net.core.somaxconn`): Twisted listens with a backlog of 50, and a fleet reconnecting at once after a restart
  overflowed it: the kernel dropped the SYNs (85,481 "SYNs to LISTEN sockets dropped" in `netstat -s` after a few
  storms of 10,000 chargers), so chargers waited out TCP's doubling SYN retries (1, 3, 7, 15, 31 s ...) and some
  timed out before the process even saw them. An endpoint that names its own `backlog` keeps it.
- `--ping-interval` / `--ping-timeout` = `OCPP_WS_PING_INTERVAL` (120 s) / `OCPP_WS_PING_TIMEOUT` (30 s): daphne
  pings a socket silent that long (any frame of the charger counts) and closes it when no pong comes in time.
  daphne's 20 s meant 500 pings and 500 pongs a second for 10,000 chargers, more frames than their OCPP traffic.
An option given on the command line still wins.

The interpreter's switch interval is 0.5 ms instead of CPython's 5 ms (`SWITCH_INTERVAL`). The event loop serves
every socket on one thread and gives up the interpreter at each system call it makes (a socket's send, epoll's
modify when Twisted starts or stops writing to a socket, `os.urandom` in `uuid4`); a DB thread (`apps.ocpp.dbcall`)
then takes it and keeps it until its own next system call or until the loop has waited the switch interval. With
5 ms, py-spy of 10,000 chargers found the event loop 95 % busy in a reconnect storm and a third of that in those
quick calls (epoll's modify 14.6 %, a Redis send 8.8 %, `uuid4` 4.5 %: waiting for the interpreter, not working),
while the DB threads waited for PostgreSQL. With 0.5 ms the loop was 70 % busy at the same point of the storm, the
stopping process exited after 7.3 s (10.4 s), and the fleet was back within 71.2 s (79.9 s)
(benchmarks/ocpp_bench.py --storm --warm, 2026-12-07).

daphne checks every connection's timeouts (connect, ping) every 2 s in one callback: 10,000 sockets made that a
loop of ~10,000 calls holding the event loop at once (`Server.timeout_checker`: 5.7 % of the samples where daphne
held the interpreter, py-spy of 10,000 chargers). `SlicedTimeoutServer` checks every `TIMEOUT_CHECK_SECONDS` in
slices of `TIMEOUT_CHECK_SLICE` connections, one slice per loop turn, so no charger's answer waits behind the sweep.
"""

from __future__ import annotations

import daphne.server  # isort: skip - installs Twisted's asyncio reactor before anything else can

import logging
import os
import sys
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

# how long the event loop waits for the interpreter once it asked for it back (CPython's default: 5 ms); see the
# module's docstring
SWITCH_INTERVAL = 0.0005
CLOSE_MARGIN = 10  # seconds to record a disconnect after the drain (gate, Redis, one UPDATE)
TIMEOUT_CHECK_SECONDS = 5.0  # the connect timeout (30 s) and the ping interval are checked this often
TIMEOUT_CHECK_SLICE = 500  # connections checked per event loop turn


def server_options() -> dict[str, int]:
    """daphne `Server` keyword arguments taken from the settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    from django.conf import settings

    return {
        "websocket_connect_timeout": settings.OCPP_HANDSHAKE_TIMEOUT,
        "websocket_handshake_timeout": settings.OCPP_HANDSHAKE_TIMEOUT,
        "application_close_timeout": settings.OCPP_CLOSE_DRAIN_SECONDS + CLOSE_MARGIN,
        "ping_interval": settings.OCPP_WS_PING_INTERVAL,
        "ping_timeout": settings.OCPP_WS_PING_TIMEOUT,
    }


def with_backlog(endpoints: list[str], backlog: int) -> list[str]:
    """The endpoint description strings with `backlog=` added to the TCP and `ocpptls:` ones that lack it."""
    return [
        f"{endpoint}:backlog={backlog}"
        if endpoint.split(":", 1)[0] in ("tcp", "ocpptls") and ":backlog=" not in endpoint
        else endpoint
        for endpoint in endpoints
    ]


class QuietChargerSockets:
    """daphne's access log (its `action_logger`) without the lines of chargers' WebSockets (`/ocpp/...`): daphne writes
    WSCONNECTING, WSCONNECT, WSDISCONNECT (WSREJECT when refused) for each, and the platform keeps what they say
    already: every connect and close on the charger (`apps.ocpp.connections`), every refusal in a warning that names
    the charger and why. Each line is a write to stdout on the event loop (PYTHONUNBUFFERED in the image): a system
    call that hands the interpreter to a DB thread. A run of 10,000 chargers with a restart wrote 73,180 of them
    (py-spy of the next process in the storm: the log's write 2.3 % of the event loop's samples;
    benchmarks/ocpp_bench.py --storm --handover). Other requests (the API, the admin, /healthz) and other WebSockets
    are logged as daphne does; OCPP_WS_ACCESS_LOG=1 logs the chargers' too."""

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    def __call__(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if protocol == "websocket" and str(details.get("path") or "").startswith("/ocpp/"):
            return
        self.logger(protocol, action, details)


class BacklogServer(Server):  # type: ignore[misc]
    def __init__(self, *args: Any, endpoints: list[str] | None = None, **kwargs: Any) -> None:
        from django.conf import settings

        if kwargs.get("action_logger") is not None and not settings.OCPP_WS_ACCESS_LOG:
            kwargs["action_logger"] = QuietChargerSockets(kwargs["action_logger"])
        super().__init__(*args, endpoints=with_backlog(endpoints or [], settings.OCPP_LISTEN_BACKLOG), **kwargs)

    def timeout_checker(self) -> None:
        """daphne's sweep of every connection's timeouts, in slices (see the module's docstring)."""
        self._check_slice(list(self.connections.keys()), 0)

    def _check_slice(self, protocols: list[Any], start: int) -> None:
        from twisted.internet import reactor as twisted_reactor

        reactor: Any = twisted_reactor  # the installed reactor (its interface's stubs take callLater for a method)
        for protocol in protocols[start : start + TIMEOUT_CHECK_SLICE]:
            if protocol in self.connections:  # closed since the sweep began: nothing to check
                protocol.check_timeouts()
        if start + TIMEOUT_CHECK_SLICE < len(protocols):
            reactor.callLater(0, self._check_slice, protocols, start + TIMEOUT_CHECK_SLICE)
        else:
            reactor.callLater(TIMEOUT_CHECK_SECONDS, self.timeout_checker)


class CommandLine(CommandLineInterface):  # type: ignore[misc]
    server_class = BacklogServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = server_options()
        self.parser.set_defaults(
            websocket_connect_timeout=options["websocket_connect_timeout"],
            application_close_timeout=options["application_close_timeout"],
            ping_interval=options["ping_interval"],
            ping_timeout=options["ping_timeout"],
        )


def main(argv: list[str] | None = None) -> None:
    from apps.ocpp import stalls

    sys.setswitchinterval(SWITCH_INTERVAL)

    # the loop Twisted's asyncio reactor (installed by the daphne.server import above) runs
    stalls.install(
        daphne.server.twisted_loop,
        float(os.environ.get("OCPP_STALL_LOG_MS", "0")),
        float(os.environ.get("OCPP_PACE_LOG_SECONDS", "0")),
    )
    CommandLine().run(sys.argv[1:] if argv is None else argv)
    exit_at_once()


def exit_at_once() -> None:
    """Leave without the interpreter's teardown once daphne has stopped (its graceful stop has closed every socket
    and let every consumer record its close): the DB threads finish what they were given, the logs are flushed,
    and the process ends. Tearing down the objects of 10,000 sockets one by one took ~4 s of a core after the
    last consumer had finished (the applications finished 7.7-8.7 s after the SIGTERM, the process exited at
    12.8 s; py-spy: 44 % of the stopping process's samples held the interpreter with no Python frame), on the
    machine where the next process was booting the fleet (benchmarks/ocpp_bench.py --storm, 2026-12-07)."""
    from apps.ocpp import dbcall

    dbcall.drain()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
