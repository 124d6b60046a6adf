"""The one domain error type. Interfaces map it to their protocol's error (HTTP body, OCPP CallError, ...)."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A domain rule said no. `code` is stable and machine-readable; `message` is for humans."""

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        fields: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        if status_code is not None:
            self.status_code = status_code


class NotFound(ApplicationError):
    status_code = 404

    def __init__(self, message: str = "Not found.", *, code: str = "not_found") -> None:
        super().__init__(message, code=code)


class Conflict(ApplicationError):
    status_code = 409

    def __init__(self, message: str, *, code: str = "conflict", fields: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, fields=fields)
