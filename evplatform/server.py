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
An option given on the command line still wins.
"""

from __future__ import annotations

import daphne.server  # noqa: F401  # isort: skip - installs Twisted's asyncio reactor before anything else can

import os
import sys
from typing import Any

from daphne.cli import CommandLineInterface

CLOSE_MARGIN = 10  # seconds to record a disconnect after the drain (gate, Redis, one UPDATE)


def server_options() -> dict[str, int]:
    """daphne `Server` keyword arguments taken from the settings."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evplatform.settings.dev")
    from django.conf import settings

    return {
        "websocket_connect_timeout": settings.OCPP_HANDSHAKE_TIMEOUT,
        "websocket_handshake_timeout": settings.OCPP_HANDSHAKE_TIMEOUT,
        "application_close_timeout": settings.OCPP_CLOSE_DRAIN_SECONDS + CLOSE_MARGIN,
    }


class CommandLine(CommandLineInterface):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = server_options()
        self.parser.set_defaults(
            websocket_connect_timeout=options["websocket_connect_timeout"],
            application_close_timeout=options["application_close_timeout"],
        )


def main(argv: list[str] | None = None) -> None:
    CommandLine().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
