"""A local stand-in for Fiserv's payments-gateway v2, speaking its wire format over real HTTP on 127.0.0.1.

It checks every request's headers and Message-Signature with the shared API secret (401 otherwise), keeps
transactions in memory (pre-auth -> AUTHORIZED, PostAuth -> CAPTURED, Void -> VOIDED, Return -> RETURNED),
and can be told to misbehave for the next request: answer a decline, a 4xx error, a 5xx, or take longer than
the client's timeout (after or before it applied the transaction).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_KEY = "test-api-key"
API_SECRET = "test-api-secret"
PREFIX = "/payments-gateway/v2"


@dataclass
class Behaviour:
    """What to do with the next matching request."""

    kind: str  # decline | error400 | error500 | slow_after | slow_before
    delay: float = 0.0
    request_type: str | None = None  # only for requests of this requestType (None: any)


@dataclass
class FakeFiserv:
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    behaviours: list[Behaviour] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def count(self, request_type: str) -> int:
        return sum(1 for r in self.requests if r.get("body", {}).get("requestType") == request_type and r["ok"])

    def take(self, request_type: str | None) -> Behaviour | None:
        with self.lock:
            for index, behaviour in enumerate(self.behaviours):
                if behaviour.request_type in (None, request_type):
                    return self.behaviours.pop(index)
        return None


def _sign(request_id: str, timestamp: str, body: str) -> str:
    message = f"{API_KEY}{request_id}{timestamp}{body}".encode()
    return base64.b64encode(hmac.new(API_SECRET.encode(), message, hashlib.sha256).digest()).decode()


def _handler(fake: FakeFiserv) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def _error(self, status: int, code: str, message: str) -> None:
            self._answer(status, {"error": {"code": code, "message": message, "details": []}})

        def _verify(self, body: str) -> str | None:
            headers = self.headers
            for name in ("Api-Key", "Client-Request-Id", "Timestamp", "Message-Signature"):
                if not headers.get(name):
                    return f"missing header {name}"
            if headers.get("Content-Type") != "application/json":
                return "Content-Type must be application/json"
            if headers["Api-Key"] != API_KEY:
                return "unknown Api-Key"
            expected = _sign(headers["Client-Request-Id"], headers["Timestamp"], body)
            if not hmac.compare_digest(expected, headers["Message-Signature"]):
                return "bad Message-Signature"
            if abs(time.time() * 1000 - int(headers["Timestamp"])) > 300_000:
                return "stale Timestamp"
            return None

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            problem = self._verify(body)
            payload = json.loads(body) if body else {}
            record = {
                "method": method,
                "path": self.path,
                "body": payload,
                "ok": False,
                "request_id": self.headers.get("Client-Request-Id"),
            }
            fake.requests.append(record)
            if problem:
                self._error(401, "401", problem)
                return
            if not self.path.startswith(PREFIX + "/payments"):
                self._error(404, "404", "no such path")
                return
            behaviour = fake.take(payload.get("requestType")) if method == "POST" else None
            if behaviour is not None:
                if behaviour.kind == "error500":
                    self._error(500, "500", "internal error")
                    return
                if behaviour.kind == "error400":
                    self._error(400, "VALIDATION", "transactionAmount.total is invalid")
                    return
                if behaviour.kind == "slow_before":
                    time.sleep(behaviour.delay)  # the client times out; nothing was applied
                    self._error(503, "503", "try again")
                    return
            answer = self._apply(method, payload, declined=behaviour is not None and behaviour.kind == "decline")
            record["ok"] = (answer[0] < 400 and answer[1].get("transactionStatus") == "APPROVED") or method == "GET"
            if behaviour is not None and behaviour.kind == "slow_after":
                time.sleep(behaviour.delay)  # applied, but the answer comes after the client's timeout
            self._answer(*answer)

        def _apply(self, method: str, payload: dict[str, Any], declined: bool) -> tuple[int, dict[str, Any]]:
            parts = self.path[len(PREFIX) :].strip("/").split("/")
            request_id = self.headers["Client-Request-Id"]
            if method == "GET":
                if len(parts) != 2 or parts[1] not in fake.transactions:
                    return 404, {"error": {"code": "404", "message": "unknown transaction", "details": []}}
                return 200, {**fake.transactions[parts[1]], "clientRequestId": request_id}
            request_type = payload.get("requestType", "")
            amount = payload.get("transactionAmount", {})
            if declined:
                return 201, {
                    "clientRequestId": request_id,
                    "ipgTransactionId": uuid.uuid4().hex[:12],
                    "transactionType": request_type,
                    "transactionStatus": "DECLINED",
                    "transactionState": "DECLINED",
                }
            with fake.lock:
                if len(parts) == 1:  # primary
                    if "PreAuth" not in request_type and "Sale" not in request_type:
                        return 400, {"error": {"code": "VALIDATION", "message": "bad requestType", "details": []}}
                    ipg_id = uuid.uuid4().hex[:12]
                    state = "AUTHORIZED" if "PreAuth" in request_type else "CAPTURED"
                    fake.transactions[ipg_id] = {
                        "ipgTransactionId": ipg_id,
                        "transactionType": request_type,
                        "transactionStatus": "APPROVED",
                        "transactionState": state,
                        "approvalCode": "Y:123456:0001:PPXX:000001",
                        "approvedAmount": amount,
                        "merchantTransactionId": payload.get("merchantTransactionId"),
                    }
                    return 201, {**fake.transactions[ipg_id], "clientRequestId": request_id}
                original = fake.transactions.get(parts[1])
                if original is None:
                    return 404, {"error": {"code": "404", "message": "unknown transaction", "details": []}}
                if request_type == "PostAuthTransaction":
                    if original["transactionState"] != "AUTHORIZED":
                        return 400, {"error": {"code": "STATE", "message": "not authorised", "details": []}}
                    if Decimal(amount["total"]) > Decimal(original["approvedAmount"]["total"]):
                        return 400, {"error": {"code": "AMOUNT", "message": "exceeds pre-authorisation", "details": []}}
                    original["transactionState"] = "CAPTURED"
                    original["approvedAmount"] = amount
                elif request_type == "VoidTransaction":
                    original["transactionState"] = "VOIDED"
                elif request_type == "ReturnTransaction":
                    original["transactionState"] = "RETURNED"
                else:
                    return 400, {"error": {"code": "VALIDATION", "message": "bad requestType", "details": []}}
                return 201, {
                    "clientRequestId": request_id,
                    "ipgTransactionId": uuid.uuid4().hex[:12],
                    "transactionType": request_type,
                    "transactionStatus": "APPROVED",
                    "transactionState": original["transactionState"],
                    "approvedAmount": amount or original["approvedAmount"],
                }

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@contextmanager
def fake_fiserv() -> Iterator[FakeFiserv]:
    fake = FakeFiserv()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
