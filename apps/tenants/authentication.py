"""API-key authentication for white-label integrations: `Authorization: Api-Key <key>` or `X-Api-Key: <key>`."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.tenants.models import ApiKey
from apps.tenants.selectors import api_key_lookup
from apps.tenants.services import api_key_touch

KEYWORD = "Api-Key"


class ApiKeyUser(AnonymousUser):
    """The principal behind an API key: authenticated, never staff, bound to one tenant."""

    def __init__(self, api_key: ApiKey) -> None:
        super().__init__()
        self.api_key = api_key
        self.username = f"api-key:{api_key.prefix}"  # type: ignore[assignment]

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False

    def __str__(self) -> str:
        return self.username


def raw_key_from_request(request: Request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        keyword, _, value = header.partition(" ")
        if keyword.lower() == KEYWORD.lower():
            return value.strip()
        return None
    value = request.META.get("HTTP_X_API_KEY", "")
    return value.strip() or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        raw = raw_key_from_request(request)
        if raw is None:
            return None
        key = api_key_lookup(raw_key=raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.", code="invalid_api_key")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.", code="api_key_revoked")
        if key.expires_at is not None and key.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("This API key has expired.", code="api_key_expired")
        if not key.tenant.is_active:
            raise exceptions.AuthenticationFailed("This tenant is disabled.", code="tenant_inactive")
        api_key_touch(api_key=key)
        return ApiKeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
