"""Finds every API route and admin page, so the isolation and bad-input tests cover routes added later."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver

from apps.tenants.scoping import TenantScopedAdmin, TenantScopedGenericViewSet


@dataclass(frozen=True)
class Route:
    name: str  # URL name, e.g. "tenant-detail"
    viewset: type[TenantScopedGenericViewSet]
    actions: dict[str, str]  # HTTP method -> viewset action
    detail: bool
    serializer_class: Any = None  # an @action's own input serializer (`@action(serializer_class=...)`), if any

    @property
    def model(self) -> type[models.Model]:
        return self.viewset.queryset.model  # type: ignore[union-attr,no-any-return]

    def __str__(self) -> str:
        return self.name


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), pattern))
    return found


def api_routes() -> list[Route]:
    routes = []
    for path, pattern in _walk(get_resolver().url_patterns):
        cls = getattr(pattern.callback, "cls", None)
        actions = getattr(pattern.callback, "actions", None)
        if not path.startswith("api/v1/") or cls is None or actions is None:
            continue
        assert issubclass(cls, TenantScopedGenericViewSet), f"{path}: API viewsets must build on TenantScopedViewSet"
        assert pattern.name is not None
        serializer_class = getattr(pattern.callback, "initkwargs", {}).get("serializer_class")
        routes.append(Route(pattern.name, cls, dict(actions), detail="<pk>" in path, serializer_class=serializer_class))
    assert routes, "no API routes found"
    return routes


def scoped_admins() -> list[tuple[type[models.Model], TenantScopedAdmin]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantScopedAdmin)
    ]


@dataclass(frozen=True)
class Endpoint:
    """Any URL under /api/v1/ (viewset routes and plain API views alike), with the HTTP methods it answers."""

    name: str
    path: str  # e.g. "api/v1/invoices/<int:pk>/pdf"
    methods: tuple[str, ...]
    model: type[models.Model] | None
    view_scope_area: str | None = None

    @property
    def params(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.path)

    def __str__(self) -> str:
        return self.name


def api_endpoints() -> list[Endpoint]:
    """Every API endpoint, not only the viewsets: the people walker must leave no route out."""
    endpoints = []
    for path, pattern in _walk(get_resolver().url_patterns):
        if not path.startswith("api/v1/") or pattern.name is None:
            continue
        callback: Any = pattern.callback
        actions = getattr(callback, "actions", None)
        cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if actions is not None:
            methods = tuple(m for m in actions if m not in ("head", "options"))
        elif cls is not None:
            methods = tuple(m for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m))
        else:
            methods = ("get",)
        queryset = getattr(cls, "queryset", None)
        model = queryset.model if queryset is not None else None
        endpoints.append(Endpoint(pattern.name, path, methods, model, getattr(cls, "scope_area", None)))
    assert endpoints, "no API endpoints found"
    return endpoints


def registered_admins() -> list[tuple[type[models.Model], admin.ModelAdmin[Any]]]:
    """Every admin page, scoped or not (the platform-wide ones must refuse tenant staff)."""
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
