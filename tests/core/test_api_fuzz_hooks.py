"""The pieces of `make api-fuzz` that decide what fails and what is never sent (scripts/api_fuzz_hooks.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HOOKS = Path(__file__).resolve().parents[2] / "scripts" / "api_fuzz_hooks.py"


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("EVP_FUZZ_API_KEY_ID", "7")
    monkeypatch.setenv("EVP_FUZZ_TENANT_ID", "3")
    spec = importlib.util.spec_from_file_location("evp_api_fuzz_hooks_under_test", HOOKS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("status", "content_type", "content", "problem"),
    [
        (200, "text/html", b"<p>ok</p>", None),
        (404, "application/json", b'{"code": "not_found", "message": "No such endpoint.", "fields": {}}', None),
        (404, "text/html; charset=utf-8", b"<h1>Not Found</h1>", "error answer 404 is text/html"),
        (400, "", b"", "error answer 400 is without a Content-Type"),
        (500, "application/json", b"oops", "error answer 500 is not valid JSON"),
        (409, "application/json", b'{"detail": "x"}', "error answer 409 is not {code, message, fields}"),
        (400, "application/json", b'{"code": 1, "message": "m", "fields": {}}', "code and message must be strings"),
        (400, "application/json", b'{"code": "c", "message": "m", "fields": []}', "fields must be an object"),
    ],
)
def test_the_error_shape_check(
    hooks: ModuleType, status: int, content_type: str, content: bytes, problem: str | None
) -> None:
    found = hooks.error_body_problem(status, content_type, content)

    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found, found


@pytest.mark.parametrize(
    ("method", "path", "ident", "sent"),
    [
        ("DELETE", "/api/v1/api-keys/{id}/", 7, False),
        ("PATCH", "/api/v1/api-keys/{id}/", "07", False),
        ("POST", "/api/v1/api-keys/{id}/revoke/", " 7", False),
        ("PUT", "/api/v1/tenants/{id}/", "+3", False),
        ("DELETE", "/api/v1/tenants/{id}/", 3, False),
        ("GET", "/api/v1/api-keys/{id}/", 7, True),
        ("DELETE", "/api/v1/api-keys/{id}/", 8, True),
        ("PATCH", "/api/v1/tenants/{id}/", 4, True),
        ("DELETE", "/api/v1/locations/{id}/", 7, True),
        ("PATCH", "/api/v1/api-keys/{id}/", "abc", True),
    ],
)
def test_the_fuzz_never_writes_its_own_key_or_tenant(
    hooks: ModuleType, method: str, path: str, ident: object, sent: bool
) -> None:
    assert hooks.writes_own_access(method, path, {"id": ident}) is (not sent)
