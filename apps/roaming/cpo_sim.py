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

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import requests

from apps.roaming.partner_sim import PartnerSimulator, _now


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
    # commands Receiver: how it answers each CommandType (see `_cpo_commands`), what it got, and what our POSTs of
    # CommandResults were answered
    command_plans: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpo_commands: list[dict[str, Any]] = field(default_factory=list)
    result_answers: list[dict[str, Any]] = field(default_factory=list)
    # Sender side: at most this many objects a page (X-Limit); `page_calls` counts the GETs of each module's list
    page_limit: int = 50
    page_calls: dict[str, int] = field(default_factory=dict)

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

    # ------------------------------------------------------------------ commands Receiver

    def command_plan(self, command: str) -> dict[str, Any]:
        """How a command is answered: `response` (the CommandResponse result, ACCEPTED by default), `timeout`,
        `result` (the CommandResult POSTed afterwards, ACCEPTED by default; None: never), `message`, `delay` (seconds
        before the result), `session` (START_SESSION: make a session of it in `cpo_sessions`, status PENDING)."""
        return {
            "response": "ACCEPTED",
            "timeout": 30,
            "result": "ACCEPTED",
            "message": "",
            "delay": 0.2,
            "session": True,
            **self.command_plans.get(command, {}),
        }

    def _cpo_commands(self, handler: BaseHTTPRequestHandler, method: str, rest: str, body: Any) -> None:
        """POST {commands}/{command}: answers the plan's CommandResponse at once, then (ACCEPTED) POSTs the plan's
        CommandResult to the body's response_url from a thread of its own."""
        command = rest.strip("/")
        if method != "POST":
            self._reply(handler, 405, None, 2000, "method not allowed")
            return
        if command not in ("START_SESSION", "STOP_SESSION", "RESERVE_NOW", "CANCEL_RESERVATION", "UNLOCK_CONNECTOR"):
            self._reply(handler, 404, None, 2000, "unknown command")
            return
        if not isinstance(body, dict) or not isinstance(body.get("response_url"), str):
            self._reply(handler, 200, None, 2001, "response_url missing")
            return
        plan = self.command_plan(command)
        with self.lock:
            self.cpo_commands.append({"command": command, "body": body})
        answer: dict[str, Any] = {"result": plan["response"], "timeout": plan["timeout"]}
        if plan["message"] and plan["response"] != "ACCEPTED":
            answer["message"] = [{"language": "en", "text": plan["message"]}]
        if plan["response"] == "ACCEPTED" and command == "START_SESSION" and plan["session"]:
            self._session_of(body)
        self._reply(handler, 200, answer)
        if plan["response"] == "ACCEPTED" and plan["result"] is not None:
            result: dict[str, Any] = {"result": plan["result"]}
            if plan["message"]:
                result["message"] = [{"language": "en", "text": plan["message"]}]
            threading.Thread(
                target=self._post_result, args=(body["response_url"], result, plan["delay"]), daemon=True
            ).start()

    def _post_result(self, url: str, result: dict[str, Any], delay: float) -> None:
        time.sleep(delay)
        try:
            response = self.call("POST", url, result)
            answer = {"http_status": response.status_code, **response.json()}
        except (requests.RequestException, ValueError) as exc:  # recorded for the test to see
            answer = {"error": repr(exc)}
        with self.lock:
            self.result_answers.append({"url": url, "body": result, "answer": answer})

    def _session_of(self, start: dict[str, Any]) -> dict[str, Any]:
        """A Session (mod_sessions) for an accepted StartSession, kept in `cpo_sessions` for tests to push."""
        token = start.get("token") or {}
        session_id = "S" + uuid.uuid4().hex[:12].upper()
        session = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "id": session_id,
            "start_date_time": _now(),
            "kwh": 0,
            "cdr_token": {
                "country_code": token.get("country_code"),
                "party_id": token.get("party_id"),
                "uid": token.get("uid"),
                "type": token.get("type"),
                "contract_id": token.get("contract_id"),
            },
            "auth_method": "COMMAND",
            "authorization_reference": start.get("authorization_reference"),
            "location_id": start.get("location_id"),
            "evse_uid": start.get("evse_uid"),
            "connector_id": start.get("connector_id") or "1",
            "currency": "EUR",
            "status": "PENDING",
            "last_updated": _now(),
        }
        with self.lock:
            self.cpo_sessions[f"{self.country_code}/{self.party_id}/{session_id}"] = session
        return session

    # ------------------------------------------------------------------ Sender interfaces (GET lists, paginated)

    @staticmethod
    def _moment(value: str) -> dt.datetime:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))

    def _sender_list(
        self, handler: BaseHTTPRequestHandler, module: str, method: str, rest: str, store: dict[str, Any]
    ) -> None:
        """GET {module}?date_from&date_to&offset&limit (transport_and_format pagination): the objects of `store`
        whose last_updated is in [date_from, date_to), by last_updated then key, with Link / X-Total-Count /
        X-Limit. Only the list (a Sender's GET of one object is not needed by our eMSP)."""
        if method != "GET" or rest not in ("", "/"):
            self._reply(handler, 405 if method != "GET" else 404, None, 2000, "only GET of the list")
            return
        query = {k: v[-1] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        try:
            offset = int(query.get("offset", "0"))
            limit = min(int(query.get("limit", str(self.page_limit))), self.page_limit)
            date_from = self._moment(query["date_from"]) if "date_from" in query else None
            date_to = self._moment(query["date_to"]) if "date_to" in query else None
        except ValueError:
            self._reply(handler, 200, None, 2001, "bad query parameters")
            return
        with self.lock:
            self.page_calls[module] = self.page_calls.get(module, 0) + 1
            objects = sorted(store.items(), key=lambda kv: (self._moment(kv[1]["last_updated"]), kv[0]))
        selected = [
            obj
            for _, obj in objects
            if (date_from is None or self._moment(obj["last_updated"]) >= date_from)
            and (date_to is None or self._moment(obj["last_updated"]) < date_to)
        ]
        page = selected[offset : offset + limit]
        headers = {"X-Total-Count": str(len(selected)), "X-Limit": str(limit)}
        if offset + len(page) < len(selected):
            filters = {k: v for k, v in query.items() if k in ("date_from", "date_to")}
            next_query = urlencode({**filters, "offset": offset + len(page), "limit": limit})
            headers["Link"] = f'<{self.base_url}/ocpi/{self.prefix}/2.2.1/{module}?{next_query}>; rel="next"'
        self._reply(handler, 200, page, headers=headers)

    def _cpo_locations(self, handler: BaseHTTPRequestHandler, method: str, rest: str, body: Any) -> None:
        self._sender_list(handler, "locations", method, rest, self.cpo_locations)

    def _cpo_tariffs(self, handler: BaseHTTPRequestHandler, method: str, rest: str, body: Any) -> None:
        self._sender_list(handler, "tariffs", method, rest, self.cpo_tariffs)

    def _cpo_sessions(self, handler: BaseHTTPRequestHandler, method: str, rest: str, body: Any) -> None:
        self._sender_list(handler, "sessions", method, rest, self.cpo_sessions)

    def _cpo_cdrs(self, handler: BaseHTTPRequestHandler, method: str, rest: str, body: Any) -> None:
        self._sender_list(handler, "cdrs", method, rest, self.cpo_cdrs)

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
