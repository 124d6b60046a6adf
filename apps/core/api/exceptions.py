"""The DRF exception handler that gives every API error the one shape `{code, message, fields}`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError


def error_body(code: str, message: str, fields: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "fields": fields or {}}


def _validation_fields(detail: Any) -> dict[str, Any]:
    if isinstance(detail, Mapping):
        return dict(detail)
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def _first_message(fields: Mapping[str, Any]) -> str:
    for name, messages in fields.items():
        first = messages
        while isinstance(first, (list, dict)) and first:
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        if isinstance(first, str):
            return first if name == "non_field_errors" else f"{name}: {first}"
    return "Invalid input."


VALIDATION_CODE = "validation_error"  # the one code of every refused input, whoever refused it


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        code = VALIDATION_CODE if exc.code == "invalid" else exc.code
        return Response(error_body(code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        from apps.core.api.middleware import body_limit

        limit = body_limit(context["request"].META.get("CONTENT_TYPE", "")) if context.get("request") else 0
        return Response(error_body("request_too_large", f"The request body is larger than {limit} bytes."), status=413)
    if isinstance(exc, RecursionError):  # a parser other than ours (e.g. multipart values) nesting too deep
        return Response(error_body("parse_error", "The request is nested too deeply."), status=400)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ProtectedError):
        return Response(
            error_body("protected", "This object is still referenced by other objects and cannot be deleted."),
            status=409,
        )
    elif isinstance(exc, IntegrityError):
        return Response(error_body("conflict", "This change conflicts with existing data."), status=409)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _validation_fields(exc.detail)
        response.data = error_body(VALIDATION_CODE, _first_message(fields), fields)
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = error_body(str(code), str(exc.detail))
    return response
