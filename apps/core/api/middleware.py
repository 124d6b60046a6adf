"""Everything under /api/ answers JSON in the one error shape, whatever went wrong and wherever.

DRF's exception handler (apps.core.api.exceptions) shapes the errors raised inside a view. What happens
outside one is Django's: a URL that resolves to nothing (404), a body over the size limit, an exception in a
middleware, a 500 (HTML pages, and in DEBUG the technical pages). `ApiErrorMiddleware` sits near the top of
MIDDLEWARE and makes those JSON too:

- a request body larger than the limit (`Content-Length`, or Django's own RequestDataTooBig) is a 413
  `request_too_large` before any view reads it (API_MAX_BODY_BYTES for JSON, API_MAX_UPLOAD_BYTES for
  multipart uploads);
- an exception no view handled is logged and answered 500 `server_error` (never the traceback page,
  DEBUG or not);
- any other error answer under /api/ that is not JSON (Django's 404/400/403/405 pages) is replaced by the
  error shape with the same status.

`ApiCommonMiddleware` replaces Django's CommonMiddleware: API paths are never redirected to add a slash
(a redirect is not in the contract, and a POST would lose its body); `/api/v1/things` is a JSON 404 that
says where the slash goes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, resolve

logger = logging.getLogger("django.request")

API_PREFIX = "/api/"

STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("not_authenticated", "Authentication credentials were not provided or are invalid."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This method is not allowed here."),
    406: ("not_acceptable", "The requested response format is not available."),
    409: ("conflict", "This change conflicts with existing data."),
    413: ("request_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type in the request."),
    429: ("throttled", "Too many requests."),
    500: ("server_error", "Internal server error."),
}


def is_api(path: str) -> bool:
    return path.startswith(API_PREFIX)


def error_response(status: int, code: str | None = None, message: str | None = None) -> JsonResponse:
    default_code, default_message = STATUS_CODES.get(status, ("error", "The request failed."))
    return JsonResponse(
        {"code": code or default_code, "message": message or default_message, "fields": {}}, status=status
    )


def body_limit(content_type: str) -> int:
    """The largest body accepted for this content type (multipart uploads may be larger than JSON)."""
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return int(settings.API_MAX_UPLOAD_BYTES)
    return int(settings.API_MAX_BODY_BYTES)


def too_large(limit: int) -> JsonResponse:
    return error_response(413, "request_too_large", f"The request body is larger than {limit} bytes.")


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).split(";")[0].strip().lower() == "application/json"


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api(request.path_info):
            return self.get_response(request)
        limit = body_limit(request.META.get("CONTENT_TYPE", ""))
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        if declared > limit:
            return too_large(limit)
        response = self.get_response(request)
        if response.status_code == 404 and self._slash_missing(request.path_info):
            return error_response(404, message=f"No such endpoint. API paths end with a slash: {request.path_info}/")
        if response.status_code >= 400 and not _is_json(response):
            return self._as_json(response)
        return response

    @staticmethod
    def _slash_missing(path: str) -> bool:
        if path.endswith("/"):
            return False
        try:
            resolve(path + "/")
        except Resolver404:
            return False
        return True

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """An exception a view let through (DRF re-raises what its handler does not map)."""
        if not is_api(request.path_info):
            return None
        if isinstance(exception, RequestDataTooBig):
            return too_large(body_limit(request.META.get("CONTENT_TYPE", "")))
        logger.error("Internal Server Error: %s", request.path, exc_info=exception, extra={"status_code": 500})
        return error_response(500)

    def _as_json(self, response: HttpResponse) -> HttpResponse:
        replacement = error_response(response.status_code)
        for header in ("Allow", "WWW-Authenticate", "Retry-After"):
            if header in response:
                replacement[header] = response[header]
        return replacement


class ApiCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, minus the slash-appending redirect for API paths."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if is_api(request.path_info):
            return False
        return bool(super().should_redirect_with_slash(request))


def error_json(status: int, code: str, message: str) -> bytes:
    return json.dumps({"code": code, "message": message, "fields": {}}).encode()


def _header(scope: dict[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


class ApiBodyLimit:
    """ASGI wrapper: an API request whose body passes the limit is answered 413 without reading the rest.

    Django's ASGI handler reads the whole body (spooled to disk) before any middleware runs; this refuses a
    declared oversize body at once and stops reading an undeclared (chunked) one at the limit."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not is_api(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        limit = body_limit(_header(scope, b"content-type"))
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}  # Django stops reading and sends nothing
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await self._refuse(send, limit)

    async def _refuse(self, send: Any, limit: int) -> None:
        body = error_json(413, "request_too_large", f"The request body is larger than {limit} bytes.")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
