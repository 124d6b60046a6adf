"""Schemathesis hooks of `make api-fuzz` (loaded through SCHEMATHESIS_HOOKS by scripts/api_fuzz.py).

- `json_error_body`: every error answer (4xx/5xx) under /api/ is JSON in the one error shape
  `{"code", "message", "fields"}`, whatever its status (HTML or an empty body fails).
- The fuzz keeps its own access: with a `*` key it would expire, revoke or delete its own key and disable its
  own tenant (PITFALLS.md), after which every operation only answers 401. Cases that write to the fuzzing
  key itself or to its tenant are not sent; everything else (other keys, other rows, the demo data) is
  fair game, and the database is a throwaway one seeded for the run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ERROR_KEYS = {"code", "message", "fields"}


def _own(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


OWN_KEY_ID = _own("EVP_FUZZ_API_KEY_ID")
OWN_TENANT_ID = _own("EVP_FUZZ_TENANT_ID")


def _same_id(value: Any, own: int | None) -> bool:
    """Whether a generated path id reaches the given row: Django reads "01", "+1" and " 1" as 1."""
    if own is None:
        return False
    try:
        return int(str(value).strip()) == own
    except ValueError:
        return False


def writes_own_access(method: str, path: str, path_parameters: dict[str, Any]) -> bool:
    if method.upper() in SAFE_METHODS:
        return False
    ident = path_parameters.get("id")
    if path.startswith("/api/v1/api-keys/{id}"):
        return _same_id(ident, OWN_KEY_ID)
    if path.startswith("/api/v1/tenants/{id}"):
        return _same_id(ident, OWN_TENANT_ID)
    return False


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    return not writes_own_access(case.method, case.operation.path, dict(case.path_parameters or {}))


def error_body_problem(status: int, content_type: str, content: bytes) -> str | None:
    """Why an error answer is not the one error shape (None when it is)."""
    if status < 400:
        return None
    if content_type.split(";")[0].strip().lower() != "application/json":
        return f"error answer {status} is {content_type or 'without a Content-Type'}, not application/json"
    try:
        body = json.loads(content)
    except ValueError:
        return f"error answer {status} is not valid JSON: {content[:200]!r}"
    if not isinstance(body, dict) or set(body) != ERROR_KEYS:
        return f"error answer {status} is not {{code, message, fields}}: {content[:200]!r}"
    if not isinstance(body["code"], str) or not isinstance(body["message"], str):
        return f"error answer {status}: code and message must be strings: {content[:200]!r}"
    if not isinstance(body["fields"], dict):
        return f"error answer {status}: fields must be an object: {content[:200]!r}"
    return None


@schemathesis.check
def json_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx under /api/ is JSON in the one error shape {code, message, fields}."""
    content_type = ""
    for name, values in response.headers.items():
        if name.lower() == "content-type":
            content_type = values[0] if isinstance(values, list) else str(values)
    problem = error_body_problem(response.status_code, content_type, response.content or b"")
    if problem is not None:
        raise AssertionError(problem)
    return None
