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

import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

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
