"""Finds every API route and admin page, so the isolation and bad-input tests cover routes added later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver

from apps.tenants.scoping import TenantScopedAdmin, TenantScopedViewSet


@dataclass(frozen=True)
class Route:
    name: str  # URL name, e.g. "tenant-detail"
    viewset: type[TenantScopedViewSet]
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
        assert issubclass(cls, TenantScopedViewSet), f"{path}: API viewsets must build on TenantScopedViewSet"
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
