"""The console in the user's time zone.

Admin pages render datetimes in the zone the person's browser reports (the `evp_tz` cookie, set by the admin's
base template from `Intl.DateTimeFormat().resolvedOptions().timeZone`), else in their tenant's zone when all their
tenants share one, else in `CONSOLE_TIME_ZONE`. Storage and the API stay UTC (CONVENTIONS.md)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.tenants.access import access_for
from apps.tenants.selectors import time_zones_for_tenants

COOKIE = "evp_tz"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def console_time_zone(request: HttpRequest) -> str:
    wanted = request.COOKIES.get(COOKIE, "")
    if wanted in _known_zones():
        return wanted
    access = access_for(request)
    if access.tenant_ids:
        zones = time_zones_for_tenants(access.tenant_ids)
        if len(zones) == 1:
            zone = next(iter(zones))
            if zone in _known_zones():
                return zone
    return str(getattr(settings, "CONSOLE_TIME_ZONE", settings.TIME_ZONE))


class ConsoleTimeZoneMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/admin/"):
            return self.get_response(request)
        timezone.activate(zoneinfo.ZoneInfo(console_time_zone(request)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
