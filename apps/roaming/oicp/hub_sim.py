"""A local Hubject (HBS) speaking OICP 2.3 over HTTPS with mutual TLS: the other side for tests and the demo.

It is written against Hubject's OpenAPI files, not against our code: it imports nothing of the platform but the
schema validator (`schema.py`). What it does, as Hubject documents it:

- **Mutual TLS.** The server requires a client certificate issued by its CA (`LocalCA` makes one at test time
  with `cryptography`: a CA, a server certificate for 127.0.0.1, client certificates). The certificate's
  common name names the partner (`Party`: its OperatorID as CPO, ProviderID as EMP, and the endpoint the hub
  calls it at). A handshake without a valid certificate is refused at TLS level (`refused`); an OperatorID or
  ProviderID in the path or body that is not the certificate's gets StatusCode 017 "Unauthorized Access".
- **Validation.** Every request is checked against the sender's file (a CPO's against the CPO file, an EMP's
  against the EMP file), lengths included; an invalid one gets an eRoamingAcknowledgment with Result false and
  StatusCode 022 "Data error." (the issues with their JSON paths in AdditionalInfo), HTTP 400, and changes
  nothing. Every answer the hub gives and every request it forwards is checked against the receiver's file too
  (a failure there is a bug of this simulator, kept in `errors`, and answered 001 "Hubject system error.").
- **EVSE data and status** (PushEvseData / PushEvseStatus: fullLoad replaces the operator's records,
  insert/update/delete change them, an EvseID outside the operator's gets 018 and changes nothing;
  PullEvseData with LastCall answers the changes since then with `deltaType`, paged with `?page=&size=`
  (default 20); PullEvseStatus, ById and ByOperatorID).
- **Authorization**: AuthorizeStart from a CPO is answered from the EMPs' PushAuthenticationData or routed to
  the EMP the EvcoID names (or asked of every EMP with an endpoint, for a bare RFID UID); the hub assigns the
  SessionID. AuthorizeStop goes to the session's EMP. AuthorizeRemoteStart/Stop and AuthorizeRemoteReservationStart/Stop
  from an EMP go to the CPO that operates the EVSE.
- **CDRs and notifications**: a CPO's ChargeDetailRecord and ChargingNotifications go to the session's EMP; CDRs
  are kept for GetChargeDetailRecords (paged). Dynamic pricing pushes are kept per operator.

Every request is recorded (`received`) for tests to look at.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import math
import re
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apps.roaming.oicp import schema

STATUS_TEXT = {
    "000": "Success.",
    "001": "Hubject system error.",
    "009": "Data transaction error.",
    "017": "Unauthorized Access.",
    "018": "Inconsistent EvseID.",
    "019": "Inconsistent EvcoID.",
    "022": "Data error.",
    "102": "RFID Authentication failed – invalid UID.",  # noqa: RUF001 (Hubject's text)
    "106": "No positive authentication response.",
    "300": "Partner not found.",
    "310": "Partner did not respond.",
    "320": "Service not available.",
    "400": "Session is invalid.",
    "603": "Unknown EVSE ID.",
}
MAX_BODY = 8 * 1024 * 1024
PARTNER_TIMEOUT = 10.0  # Hubject's budget for a partner's answer


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


def normalized(party_id: str) -> str:
    """An OperatorID/ProviderID/EvseID/EvcoID without its optional separators: DE*ABC, DEABC -> DEABC."""
    return re.sub(r"[*\-]", "", party_id).upper()


def status_code(code: str, info: str = "") -> dict[str, str]:
    found = {"Code": code, "Description": STATUS_TEXT.get(code, "")}
    if info:
        found["AdditionalInfo"] = info[:1000]
    return found


def acknowledgment(code: str = "000", info: str = "", **extra: Any) -> dict[str, Any]:
    return {"Result": code == "000", "StatusCode": status_code(code, info), **{k: v for k, v in extra.items() if v}}


# --------------------------------------------------------------------------- a CA for tests and the demo


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path

    def as_requests(self) -> tuple[str, str]:
        return (str(self.cert), str(self.key))


class LocalCA:
    """A throwaway certificate authority in `directory`: `ca_file`, and certificates it issues (EC P-256, one day)."""

    def __init__(self, directory: Path | str, name: str = "Local Hubject test CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False),  # sign, cert + CRL sign
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = self.directory / "ca.pem"
        self.ca_file.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, common_name: str, *, server: bool = False, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    ) -> CertPair:
        """A client certificate (common name = the partner) or, with `server`, one for `hosts`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if server:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", common_name)
        pair = CertPair(self.directory / f"{stem}.crt", self.directory / f"{stem}.key")
        pair.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        pair.key.chmod(0o600)
        return pair


# --------------------------------------------------------------------------- what the hub keeps


@dataclass
class Party:
    """A partner, known by its client certificate's common name."""

    name: str
    operator_id: str | None = None  # as CPO
    provider_id: str | None = None  # as EMP
    endpoint: str | None = None  # where the hub calls it (its OICP base URL), None: it offers nothing


@dataclass
class Received:
    method: str
    path: str
    operation: str  # Hubject's name (PushEvseData), "" when the path is none of the files'
    party: str  # the certificate's common name
    body: Any
    status: int = 0
    answer: Any = None


@dataclass
class Forwarded:
    party: str
    url: str
    body: Any
    status: int | None
    answer: Any


@dataclass
class StoredEvse:
    operator_id: str
    operator_name: str
    record: dict[str, Any]
    inserted: dt.datetime
    updated: dt.datetime
    deleted: dt.datetime | None = None


@dataclass
class HubSession:
    session_id: str
    operator_id: str
    provider_id: str
    evse_id: str | None
    offline: bool = False  # authorized from PushAuthenticationData, no EMP call
    cpo_partner_session_id: str | None = None
    emp_partner_session_id: str | None = None
    stopped: bool = False


@dataclass
class StoredCdr:
    provider_id: str
    operator_id: str
    received: dt.datetime
    cdr: dict[str, Any]
    forwarded: bool = False


class Refusal(Exception):
    """An OICP answer other than success: StatusCode `code`, HTTP `http_status`."""

    def __init__(self, code: str, info: str = "", http_status: int = 200) -> None:
        super().__init__(f"{code} {info}")
        self.code = code
        self.info = info
        self.http_status = http_status


# the operations the hub serves: name -> the role of the sender
SERVED = {
    "PushEvseData": "cpo",
    "PushEvseStatus": "cpo",
    "AuthorizeStart": "cpo",
    "AuthorizeStop": "cpo",
    "ChargeDetailRecord": "cpo",
    "ChargingNotifications": "cpo",
    "PushPricingProductData": "cpo",
    "PushEVSEPricing": "cpo",
    "PullEvseData": "emp",
    "PullEvseStatus": "emp",
    "AuthorizeRemoteStart": "emp",
    "AuthorizeRemoteStop": "emp",
    "AuthorizeRemoteReservationStart": "emp",
    "AuthorizeRemoteReservationStop": "emp",
    "PushAuthenticationData": "emp",
    "GetChargeDetailRecords": "emp",
}


def _identification_key(identification: dict[str, Any]) -> set[str]:
    """The ids a token is known by: RFID UIDs and EvcoIDs, normalized."""
    keys = set()
    for value in identification.values():
        if isinstance(value, dict):
            for name in ("UID", "EvcoID"):
                if isinstance(value.get(name), str):
                    keys.add(f"{name}:{normalized(value[name])}")
    return keys


def _evco_ids(identification: dict[str, Any]) -> list[str]:
    return [value["EvcoID"] for value in identification.values() if isinstance(value, dict) and "EvcoID" in value]


def _coordinates(geo: dict[str, Any]) -> tuple[float, float] | None:
    """(latitude, longitude) from any of OICP's three forms."""
    try:
        if "Google" in geo:
            latitude, longitude = re.split(r"[\s,]+", geo["Google"]["Coordinates"].strip())
            return float(latitude), float(longitude)
        if "DecimalDegree" in geo:
            return float(geo["DecimalDegree"]["Latitude"]), float(geo["DecimalDegree"]["Longitude"])
        if "DegreeMinuteSeconds" in geo:
            return _from_dms(geo["DegreeMinuteSeconds"]["Latitude"]), _from_dms(geo["DegreeMinuteSeconds"]["Longitude"])
    except (KeyError, ValueError, TypeError):
        return None
    return None


def _from_dms(text: str) -> float:
    match = re.match(r"^(-?)(\d{1,3})°\s?(\d{1,2})'\s?(\d{1,2}(?:\.\d+)?)''$", text)
    if not match:
        raise ValueError(text)
    sign, degrees, minutes, seconds = match.groups()
    value = int(degrees) + int(minutes) / 60 + float(seconds) / 3600
    return -value if sign else value


def _to_dms(value: float) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return f"{sign}{degrees}°{minutes}'{seconds:.2f}''"


def geo_in(form: str, latitude: float, longitude: float) -> dict[str, Any]:
    if form == "DecimalDegree":
        return {"DecimalDegree": {"Latitude": f"{latitude:.6f}", "Longitude": f"{longitude:.6f}"}}
    if form == "DegreeMinuteSeconds":
        return {"DegreeMinuteSeconds": {"Latitude": _to_dms(latitude), "Longitude": _to_dms(longitude)}}
    return {"Google": {"Coordinates": f"{latitude:.6f} {longitude:.6f}"}}


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _page(items: list[Any], query: dict[str, list[str]]) -> tuple[list[Any], dict[str, Any]]:
    """Spring-style paging (`?page=0&size=20`), as Hubject's REST API does."""
    try:
        page = int(query.get("page", ["0"])[0])
        size = int(query.get("size", ["20"])[0])
    except ValueError as error:
        raise Refusal("022", "page and size must be integers", 400) from error
    if page < 0 or not 1 <= size <= 2000:
        raise Refusal("022", "page >= 0 and 1 <= size <= 2000", 400)
    total_pages = max(1, math.ceil(len(items) / size))
    content = items[page * size : (page + 1) * size]
    return content, {
        "number": page,
        "size": size,
        "totalElements": len(items),
        "totalPages": total_pages,
        "numberOfElements": len(content),
        "first": page == 0,
        "last": page >= total_pages - 1,
    }


# --------------------------------------------------------------------------- the hub


@dataclass
class HubSimulator:
    """`HubSimulator(ca_file, server_pair).start()`; `add_party(...)` for each partner; `url` is the base URL
    partners call (…/api/oicp). `client_pair`: the certificate the hub presents when it calls partners;
    `partner_verify`: the CA file it checks their servers with (or False)."""

    ca_file: Path
    server: CertPair
    client_pair: CertPair | None = None
    partner_verify: str | bool = True
    host: str = "127.0.0.1"
    port: int = 0
    base_path: str = "/api/oicp"
    parties: dict[str, Party] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # TLS handshakes refused (no or bad client certificate)
    errors: list[str] = field(default_factory=list)  # answers or forwards of the hub that broke the files (bugs)
    evses: dict[str, StoredEvse] = field(default_factory=dict)  # by normalized EvseID, tombstones kept
    statuses: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # normalized EvseID -> (op, EvseID, status)
    auth_data: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # ProviderID -> records
    sessions: dict[str, HubSession] = field(default_factory=dict)
    cdrs: list[StoredCdr] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    pricing_products: dict[str, dict[str, Any]] = field(default_factory=dict)  # OperatorID -> PricingProductData
    evse_pricing: dict[str, dict[str, Any]] = field(default_factory=dict)  # OperatorID -> EvseID -> record
    partner_timeout: float = PARTNER_TIMEOUT  # how long the hub waits for a partner's answer (then 310)
    # headers on every call to a partner: what a partner's TLS-terminating proxy adds once it verified the hub's
    # client certificate (tests reach the partner's server behind such a proxy without running one)
    partner_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._http = requests.Session()

    # ------------------------------------------------------------------ lifecycle

    def add_party(
        self, name: str, *, operator_id: str | None = None, provider_id: str | None = None, endpoint: str | None = None
    ) -> Party:
        party = Party(name, operator_id, provider_id, endpoint.rstrip("/") if endpoint else None)
        self.parties[name] = party
        return party

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}{self.base_path}"

    def start(self) -> HubSimulator:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(str(self.server.cert), str(self.server.key))
        hub = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                # the handshake runs in the connection's thread: a client that never completes it holds only that
                request.settimeout(15)
                try:
                    tls = context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as error:
                    hub.refused.append(f"{client_address[0]}: {error}")
                    return
                try:
                    self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
                finally:
                    with contextlib.suppress(OSError):
                        tls.close()

        self._httpd = Server((self.host, self.port), self._handler())
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oicp-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._http.close()

    def __enter__(self) -> HubSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def calls(self, operation: str) -> list[Received]:
        return [call for call in self.received if call.operation == operation]

    # ------------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                hub._serve(self)

            def do_GET(self) -> None:
                hub._serve(self)

            def do_PUT(self) -> None:
                hub._serve(self)

            def do_DELETE(self) -> None:
                hub._serve(self)

        return Handler

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        peer = handler.connection.getpeercert() if isinstance(handler.connection, ssl.SSLSocket) else None
        common_name = ""
        subject: Any = (peer or {}).get("subject", ())
        for rdn in subject:
            for key, value in rdn:
                if key == "commonName":
                    common_name = str(value)
        url = urlsplit(handler.path)
        path = url.path
        record = Received(handler.command, path, "", common_name, None)
        with self._lock:
            self.received.append(record)
        try:
            status, answer = self._dispatch(handler, record, path, parse_qs(url.query))
        except Refusal as refusal:
            status, answer = refusal.http_status, acknowledgment(refusal.code, refusal.info)
        except Exception as error:  # noqa: BLE001 (a bug of the simulator: answer as Hubject would, keep it)
            self.errors.append(f"{record.operation or path}: {error!r}")
            status, answer = 500, acknowledgment("001", repr(error))
        record.status, record.answer = status, answer
        self._reply(handler, status, answer)

    def _dispatch(
        self, handler: BaseHTTPRequestHandler, record: Received, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise Refusal("022", f"body larger than {MAX_BODY} bytes", 413)
        raw = handler.rfile.read(length) if length else b""
        if not path.startswith(self.base_path + "/"):
            raise Refusal("320", f"no OICP service at {path}", 404)
        relative = path.removeprefix(self.base_path)
        found = None
        for side in schema.SIDES:
            with contextlib.suppress(schema.UnknownOperation):
                candidate = schema.operation(side, handler.command, relative)
                if SERVED.get(candidate.name) == side:
                    found = candidate
        if found is None:
            raise Refusal("320", f"the local Hubject does not serve {handler.command} {relative}", 404)
        record.operation = found.name
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Refusal("022", f"body is not JSON: {error}", 400) from error
        record.body = body
        issues = found.request_issues(body)
        if issues:
            raise Refusal("022", "; ".join(str(issue) for issue in issues), 400)
        party = self.parties.get(record.party)
        if party is None:
            raise Refusal("017", f"no partner with certificate {record.party!r}", 403)
        params = found.parameters(relative)
        self._check_ids(found, party, params, body)
        answer = getattr(self, f"_op_{found.name}")(party, body, query, params)
        self._check_answer(found, answer)
        return 200, answer

    def _check_answer(self, operation: schema.Operation, answer: Any) -> None:
        issues = operation.response_issues(answer)
        if issues:
            self.errors.append(f"{operation.name} answer: {'; '.join(map(str, issues))}")
            raise Refusal("001", "the hub's answer broke the OpenAPI file", 500)

    def _check_ids(self, operation: schema.Operation, party: Party, params: dict[str, str], body: Any) -> None:
        """Hubject compares the Operator/ProviderID of the request with the client certificate's (017)."""
        sender = SERVED[operation.name]
        own = party.operator_id if sender == "cpo" else party.provider_id
        if not own:
            raise Refusal("017", f"{party.name} is not registered as {sender.upper()}", 403)
        claimed = [params[key] for key in ("operatorID", "providerID") if key in params]
        for container in (body, *(value for value in body.values() if isinstance(value, dict))):
            for key in ("OperatorID", "ProviderID"):
                # the EMP's ProviderID in a CPO's request (and the other way round) is the partner's, not the sender's
                if key == ("OperatorID" if sender == "cpo" else "ProviderID") and isinstance(container.get(key), str):
                    claimed.append(container[key])
        for value in claimed:
            if normalized(value) != normalized(own):
                raise Refusal("017", f"{value} is not the id of certificate {party.name}", 403)

    # ------------------------------------------------------------------ calling partners

    def _party_by(self, *, operator_id: str | None = None, provider_id: str | None = None) -> Party | None:
        for party in self.parties.values():
            if operator_id and party.operator_id and normalized(party.operator_id) == normalized(operator_id):
                return party
            if provider_id and party.provider_id and normalized(party.provider_id) == normalized(provider_id):
                return party
        return None

    def _call(self, party: Party, side: schema.Side, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an OICP request to a partner's endpoint; its answer checked against the partner's file.
        Raises Refusal 300 (no endpoint), 310 (no answer in time), 022 (an answer that breaks the file)."""
        if not party.endpoint:
            raise Refusal("300", f"{party.name} offers no endpoint")
        operation = schema.operation(side, "POST", path)
        issues = operation.request_issues(body)
        if issues:
            self.errors.append(f"forward {operation.name}: {'; '.join(map(str, issues))}")
            raise Refusal("001", "the hub's request broke the OpenAPI file", 500)
        url = party.endpoint + path
        status: int | None = None
        answer: Any = None
        try:
            response = self._http.post(
                url,
                json=body,
                headers=self.partner_headers or None,
                timeout=self.partner_timeout,
                cert=self.client_pair.as_requests() if self.client_pair else None,
                verify=self.partner_verify,
            )
            status = response.status_code
            answer = response.json()
        except requests.RequestException as error:
            self.forwarded.append(Forwarded(party.name, url, body, status, repr(error)))
            raise Refusal("310", f"{party.name}: {error.__class__.__name__}") from error
        except ValueError as error:
            self.forwarded.append(Forwarded(party.name, url, body, status, None))
            raise Refusal("022", f"{party.name} answered HTTP {status} without JSON") from error
        self.forwarded.append(Forwarded(party.name, url, body, status, answer))
        issues = operation.response_issues(answer)
        if issues:
            raise Refusal("022", f"{party.name} answered: {'; '.join(map(str, issues))}")
        return answer  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ EVSE data and status (CPO pushes)

    def _own_evses(self, operator_id: str, evse_ids: list[str]) -> None:
        prefix = normalized(operator_id)
        wrong = [evse_id for evse_id in evse_ids if not normalized(evse_id).startswith(prefix)]
        if wrong:
            raise Refusal("018", f"EvseIDs not of operator {operator_id}: {', '.join(wrong[:10])}")

    def _op_PushEvseData(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        action = body["ActionType"]
        data = body["OperatorEvseData"]
        operator_id, name = data["OperatorID"], data["OperatorName"]
        records = data["EvseDataRecord"]
        self._own_evses(operator_id, [record["EvseID"] for record in records])
        now = _now()
        with self._lock:
            current = {
                key: stored
                for key, stored in self.evses.items()
                if stored.deleted is None and normalized(stored.operator_id) == normalized(operator_id)
            }
            given = {normalized(record["EvseID"]): record for record in records}
            if len(given) != len(records):
                raise Refusal("009", "an EvseID appears twice")
            if action == "insert" and (clash := [given[key]["EvseID"] for key in given if key in current]):
                raise Refusal("009", f"insert of existing EvseIDs: {', '.join(clash[:10])}")
            if action in ("update", "delete") and (
                unknown := [given[key]["EvseID"] for key in given if key not in current]
            ):
                raise Refusal("009", f"{action} of unknown EvseIDs: {', '.join(unknown[:10])}")
            if action == "fullLoad":
                for key, stored in current.items():
                    if key not in given:
                        stored.deleted = stored.updated = now
            for key, record in given.items():
                if action == "delete":
                    current[key].deleted = current[key].updated = now
                    continue
                previous = self.evses.get(key)
                alive = previous is not None and previous.deleted is None
                inserted = previous.inserted if alive and previous else now
                self.evses[key] = StoredEvse(operator_id, name, record, inserted, now)
        return acknowledgment()

    def _op_PushEvseStatus(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        action = body["ActionType"]
        data = body["OperatorEvseStatus"]
        operator_id = data["OperatorID"]
        records = data["EvseStatusRecord"]
        self._own_evses(operator_id, [record["EvseID"] for record in records])
        with self._lock:
            if action == "fullLoad":
                for key in [
                    key for key, (op, _, _) in self.statuses.items() if normalized(op) == normalized(operator_id)
                ]:
                    del self.statuses[key]
            for record in records:
                key = normalized(record["EvseID"])
                if action == "delete":
                    self.statuses.pop(key, None)
                else:
                    self.statuses[key] = (operator_id, record["EvseID"], record["EvseStatus"])
        return acknowledgment()

    def _pricing_push(
        self, store: dict[str, dict[str, Any]], operator_id: str, action: str, records: dict[str, Any]
    ) -> None:
        with self._lock:
            mine = store.setdefault(normalized(operator_id), {})
            if action == "fullLoad":
                mine.clear()
            for key, record in records.items():
                if action == "delete":
                    mine.pop(key, None)
                else:
                    mine[key] = record

    def _op_PushPricingProductData(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        data = body["PricingProductData"]
        records = {record["ProductID"]: record for record in data.get("PricingProductDataRecords", [])}
        self._pricing_push(self.pricing_products, data["OperatorID"], body["ActionType"], records)
        return acknowledgment()

    def _op_PushEVSEPricing(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        records = {record["EvseID"]: record for record in body["EVSEPricing"]}
        self._own_evses(party.operator_id or "", list(records))
        self._pricing_push(self.evse_pricing, party.operator_id or "", body["ActionType"], records)
        return acknowledgment()

    # ------------------------------------------------------------------ EVSE data and status (EMP pulls)

    def _pull_record(self, stored: StoredEvse, form: str, delta: str | None) -> dict[str, Any]:
        record = {key: value for key, value in stored.record.items() if key not in ("deltaType", "lastUpdate")}
        if "ChargingStationID" in record:  # the CPO file spells it ID, the EMP file Id
            record["ChargingStationId"] = record.pop("ChargingStationID")
        for key in ("GeoCoordinates", "GeoChargingPointEntrance"):
            if isinstance(record.get(key), dict) and (point := _coordinates(record[key])):
                record[key] = geo_in(form, *point)
        record["OperatorID"] = stored.operator_id
        record["OperatorName"] = stored.operator_name
        record["lastUpdate"] = _stamp(stored.updated)
        if delta:
            record["deltaType"] = delta
        return record

    def _op_PullEvseData(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        if "LastCall" in body and "SearchCenter" in body:
            raise Refusal("022", "LastCall and SearchCenter exclude each other", 400)
        last_call = _parse_time(body["LastCall"]) if "LastCall" in body else None
        operators = {normalized(op) for op in body.get("OperatorIds", [])}
        countries = {country.upper() for country in body.get("CountryCodes", [])}
        center = body.get("SearchCenter")
        origin = _coordinates(center["GeoCoordinates"]) if center else None
        form = body["GeoCoordinatesResponseFormat"]
        found: list[dict[str, Any]] = []
        with self._lock:
            stored_all = sorted(self.evses.values(), key=lambda stored: (stored.operator_id, stored.record["EvseID"]))
        for stored in stored_all:
            if operators and normalized(stored.operator_id) not in operators:
                continue
            if countries and str(stored.record.get("Address", {}).get("Country", "")).upper() not in countries:
                continue
            if center:
                point = _coordinates(stored.record.get("GeoCoordinates", {}))
                if origin is None or point is None or _distance_km(origin, point) > float(center["Radius"]):
                    continue
            if last_call is None:
                if stored.deleted is None:
                    found.append(self._pull_record(stored, form, None))
                continue
            if stored.updated <= last_call:
                continue
            if stored.deleted is not None:
                if stored.inserted <= last_call:
                    found.append(self._pull_record(stored, form, "delete"))
            else:
                found.append(self._pull_record(stored, form, "insert" if stored.inserted > last_call else "update"))
        content, page = _page(found, query)
        return {"content": content, **page, "StatusCode": status_code("000")}

    def _op_PullEvseStatus(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        with self._lock:
            statuses = dict(self.statuses)
        if "EvseID" in body:
            records = []
            for evse_id in body["EvseID"]:
                known = statuses.get(normalized(evse_id))
                records.append({"EvseID": evse_id, "EvseStatus": known[2] if known else "EvseNotFound"})
            return {"EVSEStatusRecords": {"EvseStatusRecord": records}, "StatusCode": status_code("000")}
        operators = {normalized(op) for op in body.get("OperatorID", [])}
        wanted = body.get("EVSEStatus") or body.get("EvseStatus")
        center = body.get("SearchCenter")
        origin = _coordinates(center["GeoCoordinates"]) if center else None
        grouped: dict[str, list[dict[str, str]]] = {}
        for key, (operator_id, evse_id, status) in sorted(statuses.items()):
            if operators and normalized(operator_id) not in operators:
                continue
            if wanted and status != wanted:
                continue
            if center:
                stored = self.evses.get(key)
                point = _coordinates(stored.record.get("GeoCoordinates", {})) if stored else None
                if origin is None or point is None or _distance_km(origin, point) > float(center["Radius"]):
                    continue
            grouped.setdefault(operator_id, []).append({"EvseID": evse_id, "EvseStatus": status})
        return {
            "EvseStatuses": {
                "OperatorEvseStatus": [
                    {"OperatorID": operator_id, "EvseStatusRecord": records} for operator_id, records in grouped.items()
                ]
            },
            "StatusCode": status_code("000"),
        }

    # ------------------------------------------------------------------ authorization

    def _op_PushAuthenticationData(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        data = body["ProviderAuthenticationData"]
        provider = normalized(data["ProviderID"])
        action = body["ActionType"]
        given = data["AuthenticationDataRecord"]
        with self._lock:
            records = [] if action == "fullLoad" else list(self.auth_data.get(provider, []))
            # each given record replaces (or deletes) the kept ones that share an id with it, in order; indexed by id
            # (an offline EMP's fullLoad has hundreds of thousands of records: one pass, not one per record)
            alive = [True] * len(records)
            index = {key: at for at, kept in enumerate(records) for key in _identification_key(kept["Identification"])}
            for record in given:
                keys = _identification_key(record["Identification"])
                for key in keys:
                    at = index.pop(key, None)
                    if at is not None:
                        alive[at] = False
                if action != "delete":
                    records.append(record)
                    alive.append(True)
                    index.update(dict.fromkeys(keys, len(records) - 1))
            self.auth_data[provider] = [kept for kept, live in zip(records, alive, strict=True) if live]
        return acknowledgment()

    def _offline_provider(self, identification: dict[str, Any]) -> str | None:
        keys = _identification_key(identification)
        with self._lock:
            for provider, records in self.auth_data.items():
                if any(_identification_key(record["Identification"]) & keys for record in records):
                    return provider
        return None

    def _op_AuthorizeStart(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        operator_id = body["OperatorID"]
        if "EvseID" in body:
            self._own_evses(operator_id, [body["EvseID"]])
        session_id = body.get("SessionID") or str(uuid.uuid4())
        cpo_session = body.get("CPOPartnerSessionID")

        def answer(status: str, code: str, info: str = "", **extra: Any) -> dict[str, Any]:
            found = {
                "SessionID": session_id,
                "CPOPartnerSessionID": cpo_session,
                "AuthorizationStatus": status,
                "StatusCode": status_code(code, info),
                **extra,
            }
            return {key: value for key, value in found.items() if value is not None}

        offline = self._offline_provider(body["Identification"])
        candidates: list[Party] = []
        if offline:
            emp = self._party_by(provider_id=offline)
            provider_id = emp.provider_id if emp and emp.provider_id else offline
            self._open_session(session_id, body, provider_id, offline=True)
            return answer("Authorized", "000", ProviderID=provider_id)
        evco = _evco_ids(body["Identification"])
        if evco:
            emp = self._party_by(provider_id=normalized(evco[0])[:5])
            if emp is None:
                return answer("NotAuthorized", "300", f"no EMP for {evco[0]}")
            candidates = [emp]
        else:
            candidates = [p for p in self.parties.values() if p.provider_id and p.endpoint]
        last_code, last_info = "106", "no EMP authorized the identification"
        for emp in candidates:
            request = {**body, "SessionID": session_id}
            try:
                reply = self._call(emp, "emp", f"/charging/v21/operators/{operator_id}/authorize/start", request)
            except Refusal as refusal:
                last_code, last_info = refusal.code, refusal.info
                continue
            if reply.get("AuthorizationStatus") == "Authorized":
                self._open_session(
                    session_id, body, emp.provider_id or "", emp_session=reply.get("EMPPartnerSessionID")
                )
                extra = {
                    key: reply[key]
                    for key in ("EMPPartnerSessionID", "AuthorizationStopIdentifications")
                    if key in reply
                }
                return answer("Authorized", "000", ProviderID=emp.provider_id, **extra)
            last_code = reply.get("StatusCode", {}).get("Code", "106")
            last_info = reply.get("StatusCode", {}).get("AdditionalInfo", "")
        return answer("NotAuthorized", last_code, last_info)

    def _open_session(
        self,
        session_id: str,
        body: dict[str, Any],
        provider_id: str,
        *,
        offline: bool = False,
        emp_session: str | None = None,
    ) -> None:
        with self._lock:
            self.sessions[session_id] = HubSession(
                session_id=session_id,
                operator_id=body["OperatorID"],
                provider_id=provider_id,
                evse_id=body.get("EvseID"),
                offline=offline,
                cpo_partner_session_id=body.get("CPOPartnerSessionID"),
                emp_partner_session_id=emp_session or body.get("EMPPartnerSessionID"),
            )

    def _session(
        self, session_id: str, *, operator_id: str | None = None, provider_id: str | None = None
    ) -> HubSession:
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise Refusal("400", f"unknown SessionID {session_id}")
        if operator_id and normalized(session.operator_id) != normalized(operator_id):
            raise Refusal("400", f"session {session_id} is not of operator {operator_id}")
        if provider_id and normalized(session.provider_id) != normalized(provider_id):
            raise Refusal("400", f"session {session_id} is not of provider {provider_id}")
        return session

    def _op_AuthorizeStop(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        session = self._session(body["SessionID"], operator_id=body["OperatorID"])

        def answer(status: str, code: str, info: str = "", **extra: Any) -> dict[str, Any]:
            found = {
                "SessionID": session.session_id,
                "AuthorizationStatus": status,
                "StatusCode": status_code(code, info),
            }
            found.update({key: value for key, value in extra.items() if value})
            return found

        emp = self._party_by(provider_id=session.provider_id)
        if session.offline or emp is None or not emp.endpoint:
            session.stopped = True
            return answer("Authorized", "000", ProviderID=session.provider_id)
        try:
            reply = self._call(emp, "emp", f"/charging/v21/operators/{body['OperatorID']}/authorize/stop", body)
        except Refusal as refusal:
            return answer("NotAuthorized", refusal.code, refusal.info)
        if reply.get("AuthorizationStatus") == "Authorized":
            session.stopped = True
        return answer(
            reply["AuthorizationStatus"],
            reply["StatusCode"]["Code"],
            reply["StatusCode"].get("AdditionalInfo", ""),
            ProviderID=emp.provider_id,
            CPOPartnerSessionID=body.get("CPOPartnerSessionID"),
            EMPPartnerSessionID=reply.get("EMPPartnerSessionID"),
        )

    def _op_AuthorizeRemoteStart(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        evse_id = body["EvseID"]
        with self._lock:
            stored = self.evses.get(normalized(evse_id))
            if body["SessionID"] in self.sessions:
                raise Refusal("400", f"SessionID {body['SessionID']} is in use")
        if stored is None or stored.deleted is not None:
            return acknowledgment("603", f"{evse_id} is not in the EVSE data", SessionID=body["SessionID"])
        cpo = self._party_by(operator_id=stored.operator_id)
        if cpo is None:
            return acknowledgment("300", f"no CPO for {stored.operator_id}", SessionID=body["SessionID"])
        try:
            reply = self._call(cpo, "cpo", f"/charging/v21/providers/{body['ProviderID']}/authorize-remote/start", body)
        except Refusal as refusal:
            return acknowledgment(refusal.code, refusal.info, SessionID=body["SessionID"])
        if reply.get("Result"):
            self._open_session(
                body["SessionID"],
                {**body, "OperatorID": stored.operator_id},
                body["ProviderID"],
                emp_session=body.get("EMPPartnerSessionID"),
            )
            with self._lock:
                self.sessions[body["SessionID"]].cpo_partner_session_id = reply.get("CPOPartnerSessionID")
        return {**reply, "SessionID": body["SessionID"]}

    def _op_AuthorizeRemoteStop(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        session = self._session(body["SessionID"], provider_id=body["ProviderID"])
        cpo = self._party_by(operator_id=session.operator_id)
        if cpo is None:
            return acknowledgment("300", f"no CPO for {session.operator_id}", SessionID=session.session_id)
        try:
            reply = self._call(cpo, "cpo", f"/charging/v21/providers/{body['ProviderID']}/authorize-remote/stop", body)
        except Refusal as refusal:
            return acknowledgment(refusal.code, refusal.info, SessionID=session.session_id)
        if reply.get("Result"):
            session.stopped = True
        return {**reply, "SessionID": session.session_id}

    def _reservation_forward(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        """AuthorizeRemoteReservationStart/Stop from an EMP, to the CPO operating the EVSE (the SessionID is the
        EMP's, or the hub's when it gives none)."""
        session_id = body.get("SessionID") or str(uuid.uuid4())
        with self._lock:
            stored = self.evses.get(normalized(body["EvseID"]))
        if stored is None or stored.deleted is not None:
            return acknowledgment("603", f"{body['EvseID']} is not in the EVSE data", SessionID=session_id)
        cpo = self._party_by(operator_id=stored.operator_id)
        if cpo is None:
            return acknowledgment("300", f"no CPO for {stored.operator_id}", SessionID=session_id)
        path = f"/reservation/v11/providers/{body['ProviderID']}/reservation-{kind}-request"
        try:
            reply = self._call(cpo, "cpo", path, {**body, "SessionID": session_id})
        except Refusal as refusal:
            return acknowledgment(refusal.code, refusal.info, SessionID=session_id)
        return {**reply, "SessionID": session_id}

    def _op_AuthorizeRemoteReservationStart(
        self, party: Party, body: dict[str, Any], query: Any, params: Any
    ) -> dict[str, Any]:
        return self._reservation_forward(body, "start")

    def _op_AuthorizeRemoteReservationStop(
        self, party: Party, body: dict[str, Any], query: Any, params: Any
    ) -> dict[str, Any]:
        return self._reservation_forward(body, "stop")

    # ------------------------------------------------------------------ CDRs and notifications

    def _op_ChargeDetailRecord(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        operator_id = params["operatorID"]
        self._own_evses(operator_id, [body["EvseID"]])
        session = self._session(body["SessionID"], operator_id=operator_id)
        with self._lock:
            if any(kept.cdr["SessionID"] == body["SessionID"] for kept in self.cdrs):
                raise Refusal("009", f"a CDR for session {body['SessionID']} exists already")
            stored = StoredCdr(session.provider_id, operator_id, _now(), body)
            self.cdrs.append(stored)
        emp = self._party_by(provider_id=session.provider_id)
        if emp is not None and emp.endpoint:
            forward = dict(body)
            if "HubProviderID" in forward:  # the CPO file spells it ID, the EMP file Id
                forward["HubProviderId"] = forward.pop("HubProviderID")
            try:
                reply = self._call(emp, "emp", f"/cdrmgmt/v22/operators/{operator_id}/charge-detail-record", forward)
                stored.forwarded = bool(reply.get("Result"))
            except Refusal:
                stored.forwarded = False  # kept for GetChargeDetailRecords
        return acknowledgment(
            SessionID=body["SessionID"],
            CPOPartnerSessionID=body.get("CPOPartnerSessionID"),
            EMPPartnerSessionID=body.get("EMPPartnerSessionID"),
        )

    def _op_GetChargeDetailRecords(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        start, end = _parse_time(body["From"]), _parse_time(body["To"])
        sessions = set(body.get("SessionID") or [])
        operator = normalized(body["OperatorID"]) if body.get("OperatorID") else None
        with self._lock:
            found = [
                kept.cdr
                for kept in self.cdrs
                if normalized(kept.provider_id) == normalized(body["ProviderID"])
                and start <= kept.received <= end
                and (not sessions or kept.cdr["SessionID"] in sessions)
                and (operator is None or normalized(kept.operator_id) == operator)
            ]
        content = []
        for cdr in found:
            cdr = dict(cdr)
            if "HubProviderID" in cdr:
                cdr["HubProviderId"] = cdr.pop("HubProviderID")
            content.append(cdr)
        content, page = _page(content, query)
        return {"content": content, **page, "StatusCode": status_code("000")}

    def _op_ChargingNotifications(self, party: Party, body: dict[str, Any], query: Any, params: Any) -> dict[str, Any]:
        self._own_evses(body["OperatorID"], [body["EvseID"]])
        session = self._session(body["SessionID"], operator_id=body["OperatorID"])
        with self._lock:
            self.notifications.append(body)
        emp = self._party_by(provider_id=session.provider_id)
        if emp is None or not emp.endpoint:
            return acknowledgment(SessionID=session.session_id)
        try:
            reply = self._call(emp, "emp", "/notificationmgmt/v11/charging-notifications", body)
        except Refusal as refusal:
            return acknowledgment(refusal.code, refusal.info, SessionID=session.session_id)
        return {**reply, "SessionID": session.session_id}


# --------------------------------------------------------------------------- a partner endpoint for tests


Route = Callable[[str, Any], tuple[int, Any]]


@dataclass
class PartnerEndpoint:
    """A CPO's or EMP's OICP endpoint for the hub to call (HTTPS with the CA's server certificate, a client
    certificate optional): `routes` maps a path after the base URL to a function (path, body) -> (status, answer);
    what it receives is in `received`."""

    server: CertPair
    ca_file: Path | None = None  # require the hub's client certificate when set
    routes: dict[str, Route] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    received: list[tuple[str, Any]] = field(default_factory=list)

    def start(self) -> PartnerEndpoint:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.server.cert), str(self.server.key))
        if self.ca_file:
            context.load_verify_locations(str(self.ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"null")
                endpoint.received.append((self.path, body))
                route = endpoint.routes.get(self.path)
                status, answer = route(self.path, body) if route else (404, {"message": "no route"})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oicp-partner", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
