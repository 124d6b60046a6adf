"""Every answer under /ocpi/ is the OCPI envelope, whatever went wrong and wherever (a URL that resolves to nothing,
Django's own 400/404/405 pages, DEBUG's technical pages, an exception outside a module handler)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.roaming.ocpi import transport

logger = logging.getLogger("django.request")

PREFIX = "/ocpi/"


class OcpiEnvelopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except Exception:
            logger.exception("OCPI %s %s failed", request.method, request.path)
            return transport.server_error(request)
        if str(response.get("Content-Type", "")).split(";")[0].strip().lower() == "application/json":
            return response
        status = response.status_code
        if status < 400 and not 300 <= status < 400:
            return response
        if status >= 500:
            return transport.server_error(request)
        message = "No such endpoint." if status in (301, 302, 404) else f"HTTP {status}."
        return transport.error_response(
            request, transport.OcpiError(transport.CLIENT_ERROR, message, http_status=404 if status < 400 else status)
        )

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith(PREFIX):
            logger.exception("OCPI %s %s failed", request.method, request.path, exc_info=exception)
            return transport.server_error(request)
        return None
