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
from urllib.parse import parse_qs, quote, unquote, urlsplit

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

    # ------------------------------------------------------------------ tokens (slice "tokens"): Receiver + authorize

    TOKEN_TYPES = ("AD_HOC_USER", "APP_USER", "OTHER", "RFID")
    TOKEN_REQUIRED = ("country_code", "party_id", "uid", "type", "contract_id", "issuer", "valid", "whitelist")

    def _cpo_tokens(self, handler: BaseHTTPRequestHandler, method: str, rest: str, body: Any) -> None:
        """mod_tokens Receiver: GET/PUT/PATCH `/{country_code}/{party_id}/{uid}[?type=]` (type defaults to RFID),
        kept in `cpo_tokens` by "CC/PID/UID/TYPE". A PUT must be a whole Token of that key; a PATCH needs
        last_updated and a token we have; an unknown token is 404/2004."""
        parts = [unquote(p) for p in rest.strip("/").split("/")] if rest else []
        query = parse_qs(urlsplit(handler.path).query)
        token_type = (query.get("type") or ["RFID"])[0]
        if len(parts) != 3 or token_type not in self.TOKEN_TYPES:
            self._reply(handler, 404 if len(parts) != 3 else 400, None, 2001, "expected /{cc}/{pid}/{uid}[?type=]")
            return
        key = "/".join([*parts, token_type])
        if method == "GET":
            with self.lock:
                found = self.cpo_tokens.get(key)
            if found is None:
                self._reply(handler, 404, None, 2004, "unknown token")
            else:
                self._reply(handler, 200, found)
            return
        if method == "PUT":
            problem = self._token_problem(body, parts, token_type)
            if problem:
                self._reply(handler, 400, None, 2001, problem)
                return
            with self.lock:
                self.cpo_tokens[key] = body
            self._reply(handler, 200, None)
            return
        if method == "PATCH":
            if not isinstance(body, dict) or "last_updated" not in body:
                self._reply(handler, 400, None, 2001, "a PATCH needs last_updated")
                return
            with self.lock:
                if key not in self.cpo_tokens:
                    found = None
                else:
                    found = self.cpo_tokens[key] = {**self.cpo_tokens[key], **body}
            if found is None:
                self._reply(handler, 404, None, 2004, "unknown token")
            else:
                self._reply(handler, 200, None)
            return
        self._reply(handler, 405, None, 2000, "method not allowed")

    def _token_problem(self, body: Any, parts: list[str], token_type: str) -> str:
        if not isinstance(body, dict):
            return "the body must be a Token object"
        missing = [name for name in (*self.TOKEN_REQUIRED, "last_updated") if body.get(name) in (None, "")]
        if missing:
            return f"missing: {', '.join(missing)}"
        if [body["country_code"], body["party_id"], body["uid"]] != parts or body["type"] != token_type:
            return "the Token is not the one of the URL"
        return ""

    def token_key(self, uid: str, country_code: str, party_id: str, type: str = "RFID") -> str:
        return f"{country_code}/{party_id}/{uid}/{type}"

    def authorize(self, uid: str, location: Any = None, type: str | None = None) -> dict[str, Any]:
        """Real-time authorization at the eMSP (mod_tokens Sender POST): `POST {tokens}/{uid}/authorize[?type=]` with
        the LocationReferences `location` (None: no body); the answer with its HTTP status."""
        url = f"{self.peer_endpoint('tokens', 'SENDER').rstrip('/')}/{quote(uid, safe='')}/authorize"
        if type is not None:
            url += f"?type={type}"
        response = self.call("POST", url, location)
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            answer = {"raw": response.text}
        return {"http_status": response.status_code, **answer}
