"""A small CPO speaking OCPI 2.2.1 over HTTP: the other side for our eMSP role in tests and the demo.

Like `partner_sim.PartnerSimulator` (whose transport, credentials handshake in both directions, token checks and
recording of every request it reuses), it is written against the spec and imports nothing of the platform. It plays
the CPO: its credentials name the role CPO, its version details list the CPO's interfaces under
`/ocpi/cpo/2.2.1/<module>` (locations, tariffs, sessions, cdrs as SENDER; tokens, commands as RECEIVER).

Each functional module is a method `_cpo_<module>(handler, method, rest, body)`, where `rest` is the path after the
module name (e.g. "/NL/SIM/LOC1" or ""); a module without its method answers 404 like an unknown endpoint. What the
CPO holds is kept in plain dicts (`cpo_locations`, `cpo_tariffs`, ... by object key) for tests to set and look at,
and the Sender side pushes to the eMSP's Receivers with `push(module, path, body, method)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from apps.roaming.partner_sim import PartnerSimulator


@dataclass
class CpoSimulator(PartnerSimulator):
    role = "CPO"
    prefix = "cpo"
    sender_modules: tuple[str, ...] = ("credentials", "locations", "tariffs", "sessions", "cdrs")
    country_code: str = "NL"
    party_id: str = "CPO"
    name: str = "Simulated CPO"
    endpoint_ids: list[str] = field(
        default_factory=lambda: ["credentials", "locations", "tariffs", "sessions", "cdrs", "tokens", "commands"]
    )
    # what this CPO holds, by object key ("CC/PID/ID" or a module's own key)
    cpo_locations: dict[str, Any] = field(default_factory=dict)
    cpo_tariffs: dict[str, Any] = field(default_factory=dict)
    cpo_sessions: dict[str, Any] = field(default_factory=dict)
    cpo_cdrs: dict[str, Any] = field(default_factory=dict)
    cpo_tokens: dict[str, Any] = field(default_factory=dict)

    def _functional(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> bool:
        base = f"/ocpi/{self.prefix}/2.2.1/"
        if not path.startswith(base):
            return False
        module, _, rest = path.removeprefix(base).partition("/")
        serve = getattr(self, f"_cpo_{module}", None)
        if serve is None:
            return False
        serve(handler, method, "/" + rest if rest else "", body)
        return True

    def push(self, module: str, path: str, body: Any, method: str = "PUT") -> dict[str, Any]:
        """Sender side: `method` `body` to the eMSP's Receiver of `module` at `path` (e.g. "/NL/CPO/LOC1/EVSE1");
        the answer with its HTTP status."""
        response = self.call(method, f"{self.peer_endpoint(module, 'RECEIVER')}{path}", body)
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {"raw": response.text}
        return {"http_status": response.status_code, **answer}
