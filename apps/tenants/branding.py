"""White label in the console: a tenant's staff see its logo, name and colours in the admin header.

Staff whose memberships all point to one tenant get that tenant's branding (a context processor for `/admin/`
pages); platform superusers and people working for several tenants keep the platform's look. Text on a brand
colour is black or white, whichever contrasts more (WCAG relative luminance), so any colour stays readable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.tenants.access import access_for
from apps.tenants.models import Tenant


@dataclass(frozen=True)
class Brand:
    name: str
    primary: str
    secondary: str
    primary_fg: str
    secondary_fg: str
    logo_url: str


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def text_on(colour: str) -> str:
    """Black or white text, whichever contrasts more with `colour` (#RRGGBB)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)
    return "#000000" if (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) else "#ffffff"


def brand_for(request: HttpRequest) -> Brand | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return None
    ids = access_for(request).tenant_ids
    if not ids or len(ids) != 1:
        return None  # the platform's own people, and people of several tenants
    tenant = Tenant.objects.filter(pk=next(iter(ids))).first()
    if tenant is None:
        return None
    return Brand(
        name=tenant.name,
        primary=tenant.primary_colour,
        secondary=tenant.secondary_colour,
        primary_fg=text_on(tenant.primary_colour),
        secondary_fg=text_on(tenant.secondary_colour),
        logo_url=reverse("admin:tenants_tenant_logo", args=[tenant.pk]) if tenant.logo else "",
    )


def console_branding(request: HttpRequest) -> dict[str, Any]:
    """Context processor: `console_brand` on admin pages."""
    if not request.path.startswith("/admin/"):
        return {}
    return {"console_brand": brand_for(request)}
