"""A small eMSP speaking OCPI 2.2.1 over HTTP: the other side for tests and the demo (`manage.py ocpi_partner`).

It is written against the spec, not against our code (it imports nothing of the platform): its own versions and
details, its credentials module as Receiver (a CPO registers with the token A it issued) and as Sender (it
registers with a CPO given a versions URL and token A), the update and unregistration, and a locations Receiver
that stores what it is sent. Towards a CPO's Receivers: a tokens Sender (`push_token`) with a real-time authorize
endpoint (answers from `authorizations`), a commands Sender (`send_command`) and a charging profiles Sender
(`charging_profile`) whose asynchronous results arrive at their response URLs (`wait_result`). Every request it gets
is recorded (`received`) for tests to look at. Faults can be set: `versions` (what it offers), `details_status` (an
HTTP status for its details), `endpoint_ids`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import requests


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class PartnerSimulator:
    # the role this simulator plays, and its modules' interface roles (for its version details)
    role = "EMSP"
    prefix = "emsp"
    sender_modules: tuple[str, ...] = ("credentials", "tokens", "commands", "chargingprofiles")
    country_code: str = "NL"
    party_id: str = "SIM"
    name: str = "Simulated eMSP"
    host: str = "127.0.0.1"
    port: int = 0
    encode_tokens: bool = True  # False: a 2.1.1-style partner sending raw tokens
    versions: list[str] = field(default_factory=lambda: ["2.1.1", "2.2.1"])
    endpoint_ids: list[str] = field(default_factory=lambda: ["credentials", "locations", "tokens"])
    details_status: int = 200
    # the token a CPO must use to call us: a token A we issued, then the one from the handshake
    server_token: str = field(default_factory=lambda: "sim-token-a-" + secrets.token_hex(8))
    server_token_is_a: bool = True
    # the token we use to call the CPO, and what we know of it
    client_token: str = ""
    peer_versions_url: str = ""
    peer_endpoints: list[dict[str, Any]] = field(default_factory=list)
    peer_roles: list[dict[str, Any]] = field(default_factory=list)
    registered: bool = False
    received: list[Received] = field(default_factory=list)
    locations: dict[str, Any] = field(default_factory=dict)
    # receivers of the CPO Sender pushes (sessions, tariffs, cdrs), by "CC/PID/ID"; `fail_status`: an HTTP status
    # every functional module answers with while set (a partner that is down)
    sessions: dict[str, Any] = field(default_factory=dict)
    tariffs: dict[str, Any] = field(default_factory=dict)
    cdrs: dict[str, Any] = field(default_factory=dict)
    fail_status: int | None = None
    # CPO Receiver side: the tokens this eMSP knows for real-time authorization (uid -> AuthorizationInfo) and the
    # asynchronous results a CPO POSTed to our response URLs (path -> body)
    authorizations: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    # a slow eMSP: while `authorize_hold` is set to an unset Event, a real-time authorization waits for it (at most
    # 30 s) before answering; `authorize_waiting` is set once one waits
    authorize_hold: threading.Event | None = None
    authorize_waiting: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                sim._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    def start(self) -> PartnerSimulator:
        self.thread = threading.Thread(target=self.server.serve_forever, name="ocpi-partner-sim", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ wire helpers

    def auth_header(self, token: str) -> str:
        if not self.encode_tokens:
            return f"Token {token}"
        return "Token " + base64.b64encode(token.encode()).decode()

    def credentials(self, token: str) -> dict[str, Any]:
        return {
            "token": token,
            "url": self.versions_url,
            "roles": [
                {
                    "role": self.role,
                    "party_id": self.party_id,
                    "country_code": self.country_code,
                    "business_details": {"name": self.name},
                }
            ],
        }

    def call(self, method: str, url: str, body: Any = None, token: str | None = None) -> requests.Response:
        headers = {
            "Authorization": self.auth_header(token if token is not None else self.client_token),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
        }
        return requests.request(method, url, json=body, headers=headers, timeout=15)

    def peer_endpoint(self, identifier: str, role: str | None = None) -> str:
        for endpoint in self.peer_endpoints:
            if endpoint["identifier"] == identifier and role in (None, endpoint.get("role")):
                return str(endpoint["url"])
        raise LookupError(f"the CPO lists no {identifier} endpoint")

    def _fetch_peer(self, versions_url: str, token: str) -> None:
        versions = self.call("GET", versions_url, token=token).json()["data"]
        details_url = next(v["url"] for v in versions if v["version"] == "2.2.1")
        self.peer_endpoints = self.call("GET", details_url, token=token).json()["data"]["endpoints"]
        self.peer_versions_url = versions_url

    # ------------------------------------------------------------------ we as Sender of credentials

    def register_with(self, versions_url: str, token_a: str) -> dict[str, Any]:
        """Register with a CPO: versions and details with its token A, POST our credentials (token B), keep C."""
        self._fetch_peer(versions_url, token_a)
        token_b = "sim-b-" + secrets.token_hex(12)
        with self.lock:
            self.server_token, self.server_token_is_a = token_b, False
        response = self.call("POST", self.peer_endpoint("credentials"), self.credentials(token_b), token=token_a)
        answer: dict[str, Any] = response.json()
        if response.status_code == 200 and answer.get("status_code") == 1000:
            self.client_token = answer["data"]["token"]
            self.peer_roles = answer["data"]["roles"]
            self.registered = True
        return {"http_status": response.status_code, **answer}

    def update_credentials(self) -> dict[str, Any]:
        new = "sim-b-" + secrets.token_hex(12)
        old = self.server_token
        with self.lock:
            self.server_token = new
        response = self.call("PUT", self.peer_endpoint("credentials"), self.credentials(new))
        answer: dict[str, Any] = response.json()
        if response.status_code == 200 and answer.get("status_code") == 1000:
            self.client_token = answer["data"]["token"]
        else:
            with self.lock:
                self.server_token = old
        return {"http_status": response.status_code, **answer}

    def unregister(self) -> dict[str, Any]:
        response = self.call("DELETE", self.peer_endpoint("credentials"))
        answer: dict[str, Any] = response.json()
        if response.status_code == 200 and answer.get("status_code") == 1000:
            self.registered = False
            self.client_token = ""
        return {"http_status": response.status_code, **answer}

    # ------------------------------------------------------------------ we as server

    def _token_of(self, handler: BaseHTTPRequestHandler) -> str | None:
        header = handler.headers.get("Authorization", "")
        if not header.startswith("Token "):
            return None
        value = header[6:].strip()
        if not self.encode_tokens:
            return value
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None

    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        http_status: int,
        data: Any = None,
        status_code: int = 1000,
        message: str = "Success",
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(
            {"data": data, "status_code": status_code, "status_message": message, "timestamp": _now()}
        ).encode()
        handler.send_response(http_status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for name in ("X-Request-ID", "X-Correlation-ID"):
            handler.send_header(name, handler.headers.get(name) or str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._reply(handler, 400, None, 2001, "invalid JSON")
            return
        path = handler.path.split("?")[0].rstrip("/")
        method = handler.command
        with self.lock:
            self.received.append(Received(method, handler.path, dict(handler.headers.items()), body))
            server_token, token_is_a = self.server_token, self.server_token_is_a
        token = self._token_of(handler)
        if token is None or token != server_token:
            self._reply(handler, 401, None, 2000, "unknown token")
            return
        if path == "/ocpi/versions" and method == "GET":
            self._reply(handler, 200, [{"version": v, "url": f"{self.base_url}/ocpi/{v}"} for v in self.versions])
        elif path in ("/ocpi/2.2.1", "/ocpi/2.1.1") and method == "GET":
            if self.details_status != 200:
                self._reply(handler, self.details_status, None, 3000, "details unavailable")
                return
            endpoints = [
                {
                    "identifier": i,
                    "role": "SENDER" if i in self.sender_modules else "RECEIVER",
                    "url": f"{self.base_url}/ocpi/{self.prefix}/2.2.1/{i}",
                }
                for i in self.endpoint_ids
            ]
            self._reply(handler, 200, {"version": "2.2.1", "endpoints": endpoints})
        elif path == f"/ocpi/{self.prefix}/2.2.1/credentials":
            self._credentials(handler, method, body, token_is_a)
        elif path.startswith(f"/ocpi/{self.prefix}/2.2.1/") and not token_is_a and self.fail_status is not None:
            self._reply(handler, self.fail_status, None, 3000, "down")
        elif token_is_a or not self._functional(handler, method, path, body):
            self._reply(handler, 404, None, 2000, "unknown endpoint")

    def _functional(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> bool:
        """The functional modules (with a registered token); False: no such endpoint."""
        if path.startswith("/ocpi/emsp/2.2.1/locations"):
            self._locations(handler, method, path, body)
        elif path.startswith(("/ocpi/emsp/2.2.1/sessions", "/ocpi/emsp/2.2.1/tariffs")):
            self._store(handler, method, path, body)
        elif path.startswith("/ocpi/emsp/2.2.1/cdrs"):
            self._cdrs(handler, method, path, body)
        elif path.startswith("/ocpi/emsp/2.2.1/tokens/") and path.endswith("/authorize"):
            self._authorize(handler, method, path, body)
        elif path.startswith("/ocpi/emsp/2.2.1/results/") and method == "POST":
            with self.lock:
                self.results[path] = body
            self._reply(handler, 200, None)
        else:
            return False
        return True

    def _credentials(self, handler: BaseHTTPRequestHandler, method: str, body: Any, token_is_a: bool) -> None:
        if method == "GET":
            self._reply(handler, 200, self.credentials(self.server_token))
            return
        if method == "DELETE":
            if not self.registered:
                self._reply(handler, 405, None, 2000, "not registered")
                return
            with self.lock:
                self.registered, self.client_token = False, ""
                self.server_token, self.server_token_is_a = "sim-token-a-" + secrets.token_hex(8), True
            self._reply(handler, 200, None)
            return
        if method not in ("POST", "PUT"):
            self._reply(handler, 405, None, 2000, "method not allowed")
            return
        if (method == "POST") == self.registered:
            self._reply(handler, 405, None, 2000, "already registered" if self.registered else "not registered")
            return
        if not isinstance(body, dict) or not isinstance(body.get("token"), str) or not body.get("url"):
            self._reply(handler, 200, None, 2001, "invalid credentials")
            return
        try:
            self._fetch_peer(body["url"], body["token"])
        except (requests.RequestException, LookupError, StopIteration, ValueError, TypeError) as exc:
            self._reply(handler, 200, None, 3001, f"cannot use your API: {exc}")
            return
        new = "sim-c-" + secrets.token_hex(12)
        with self.lock:
            self.client_token = body["token"]
            self.peer_roles = body.get("roles", [])
            self.server_token, self.server_token_is_a = new, False
            self.registered = True
        self._reply(handler, 200, self.credentials(new))

    def _locations(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        match = re.fullmatch(r"/ocpi/emsp/2\.2\.1/locations/([A-Z]{2})/([A-Z0-9]{3})/([^/]+)", path)
        if match is None:
            self._evse(handler, method, path, body)
            return
        key = "/".join(match.groups())
        if method == "GET":
            if key in self.locations:
                self._reply(handler, 200, self.locations[key])
            else:
                self._reply(handler, 404, None, 2003, "unknown location")
        elif method == "PUT":
            with self.lock:
                self.locations[key] = body
            self._reply(handler, 200, None)
        elif method == "PATCH" and key in self.locations:
            with self.lock:
                self.locations[key] = {**self.locations[key], **(body or {})}
            self._reply(handler, 200, None)
        else:
            self._reply(handler, 405, None, 2000, "method not allowed")

    def _evse(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        """PUT/PATCH of one EVSE of a location (mod_locations Receiver); a PATCH of an EVSE never PUT is stored as
        it comes (the CPO's status reached us before the location did: we keep it and GET the rest later)."""
        match = re.fullmatch(r"/ocpi/emsp/2\.2\.1/locations/([A-Z]{2})/([A-Z0-9]{3})/([^/]+)/([^/]+)", path)
        if match is None or method not in ("PUT", "PATCH") or not isinstance(body, dict):
            self._reply(handler, 404 if match is None else 405, None, 2000, "unknown endpoint or method")
            return
        key, uid = "/".join(match.groups()[:3]), match.group(4)
        with self.lock:
            location = self.locations.setdefault(key, {"evses": []})
            evses = location.setdefault("evses", [])
            found = next((e for e in evses if e.get("uid") == uid), None)
            if found is None or method == "PUT":
                evses[:] = [e for e in evses if e.get("uid") != uid] + [{"uid": uid, **body}]
            else:
                found.update(body)
        self._reply(handler, 200, None)

    def _store(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        """Sessions and tariffs Receivers: PUT stores, PATCH merges, GET answers what we have, by CC/PID/ID."""
        match = re.fullmatch(r"/ocpi/emsp/2\.2\.1/(sessions|tariffs)/([A-Z]{2})/([A-Z0-9]{3})/([^/]+)", path)
        if match is None:
            self._reply(handler, 404, None, 2000, "unknown endpoint")
            return
        store = self.sessions if match.group(1) == "sessions" else self.tariffs
        key = "/".join(match.groups()[1:])
        with self.lock:
            if method == "PUT" and isinstance(body, dict):
                store[key] = body
            elif method == "PATCH" and key in store and isinstance(body, dict):
                store[key] = {**store[key], **body}
            elif method == "DELETE" and key in store:
                del store[key]
            elif method != "GET" or key not in store:
                self._reply(handler, 404 if method in ("GET", "PATCH", "DELETE") else 405, None, 2000, "no such")
                return
            answer = store.get(key) if method == "GET" else None
        self._reply(handler, 200, answer)

    def _cdrs(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        """CDRs Receiver: POST stores the CDR and answers its URL in the Location header; GET of that URL."""
        if method == "POST" and path == "/ocpi/emsp/2.2.1/cdrs" and isinstance(body, dict):
            key = f"{body.get('country_code')}/{body.get('party_id')}/{body.get('id')}"
            with self.lock:
                duplicate = key in self.cdrs
                self.cdrs.setdefault(key, body)
            if duplicate:
                self._reply(handler, 200, None, 2001, "CDR already received")  # CDRs are immutable
                return
            self._reply(handler, 200, None, headers={"Location": f"{self.base_url}/ocpi/emsp/2.2.1/cdrs/{key}"})
            return
        key = path.removeprefix("/ocpi/emsp/2.2.1/cdrs/")
        if method == "GET" and key in self.cdrs:
            self._reply(handler, 200, self.cdrs[key])
        else:
            self._reply(handler, 404, None, 2000, "unknown CDR")

    # ------------------------------------------------------------------ we as eMSP towards a CPO's Receivers

    def _authorize(self, handler: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        """Real-time authorization (mod_tokens POST): the AuthorizationInfo set for the uid, 404/2004 otherwise."""
        match = re.fullmatch(r"/ocpi/emsp/2\.2\.1/tokens/([^/]+)/authorize", path)
        if method != "POST" or match is None:
            self._reply(handler, 405, None, 2000, "method not allowed")
            return
        uid = unquote(match.group(1))
        info = self.authorizations.get(uid)
        if info is None:
            self._reply(handler, 404, None, 2004, "unknown token")
            return
        hold = self.authorize_hold
        if hold is not None:
            self.authorize_waiting.set()
            hold.wait(30)
        answer = dict(info)
        if isinstance(body, dict) and body.get("location_id") and answer.get("allowed") == "ALLOWED":
            answer["location"] = body
        self._reply(handler, 200, answer)

    def token_object(self, uid: str, **fields: Any) -> dict[str, Any]:
        """A Token of this eMSP (mod_tokens Token object)."""
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": uid,
            "type": "RFID",
            "contract_id": f"{self.country_code}{self.party_id}C{uid[:8]}".upper(),
            "issuer": self.name,
            "valid": True,
            "whitelist": "ALLOWED",
            "last_updated": _now(),
            **fields,
        }

    def push_token(
        self, token: Any, method: str = "PUT", uid: str | None = None, type: str | None = None
    ) -> dict[str, Any]:
        """Tokens Sender: PUT (or PATCH, or GET) a token at the CPO's tokens Receiver; the answer, HTTP status too."""
        uid = uid if uid is not None else str(token.get("uid") or "")
        url = f"{self.peer_endpoint('tokens')}/{self.country_code}/{self.party_id}/{quote(uid, safe='')}"
        if type:
            url += f"?type={type}"
        response = self.call(method, url, token)
        return {"http_status": response.status_code, **response.json()}

    def response_url(self, kind: str) -> str:
        return f"{self.base_url}/ocpi/emsp/2.2.1/results/{kind}/{uuid.uuid4().hex}"

    def send_command(self, command: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Commands Sender: POST {commands}/{command} with a fresh response_url; the CPO's answer and that URL."""
        response_url = self.response_url(command)
        response = self.call(
            "POST", f"{self.peer_endpoint('commands')}/{command}", {"response_url": response_url, **body}
        )
        return {"http_status": response.status_code, **response.json()}, response_url

    def charging_profile(
        self, method: str, session_id: str, body: dict[str, Any] | None = None, duration: int | None = None
    ) -> tuple[dict[str, Any], str]:
        """Charging profiles Sender (SCSP): PUT a profile, GET the active profile, DELETE the profile of a session."""
        response_url = self.response_url(f"chargingprofiles-{method.lower()}")
        url = f"{self.peer_endpoint('chargingprofiles')}/{quote(session_id, safe='')}"
        if method == "PUT":
            response = self.call("PUT", url, {**(body or {}), "response_url": response_url})
        else:
            query = {"response_url": response_url}
            if duration is not None:
                query["duration"] = str(duration)
            response = self.call(method, f"{url}?{urlencode(query)}")
        return {"http_status": response.status_code, **response.json()}, response_url

    def result_path(self, response_url: str) -> str:
        return urlsplit(response_url).path

    def wait_result(self, response_url: str, timeout: float = 60) -> Any:
        """The body a CPO POSTed to `response_url` (waits for it); TimeoutError when none came."""
        deadline = time.monotonic() + timeout
        path = self.result_path(response_url)
        while time.monotonic() < deadline:
            with self.lock:
                if path in self.results:
                    return self.results[path]
            time.sleep(0.05)
        raise TimeoutError(f"no result at {path} within {timeout} s")
