"""The console in the user's time zone and language.

Admin pages render datetimes in the zone the person's browser reports (the `evp_tz` cookie, set by the admin's
base template from `Intl.DateTimeFormat().resolvedOptions().timeZone`), else in their tenant's zone when all their
tenants share one, else in `CONSOLE_TIME_ZONE`. Storage and the API stay UTC (CONVENTIONS.md).

They speak the language the person chose with the console's language selector (Django's `django_language`
cookie, set by `/i18n/setlang/`), else the first shipped language their browser asks for (Accept-Language), else
their tenants' default when all their tenants share one, else `LANGUAGE_CODE`. The API stays English."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation.trans_real import parse_accept_lang_header

from apps.core import i18n
from apps.tenants.access import access_for
from apps.tenants.selectors import languages_for_tenants, time_zones_for_tenants

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


CONSOLE_PATHS = ("/admin/", "/invitations/", "/i18n/")


def console_language(request: HttpRequest) -> str:
    chosen = i18n.supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
    if chosen:
        return chosen
    for wish, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        code = i18n.supported(wish)
        if code:
            return code
    access = access_for(request)
    if access.tenant_ids:
        languages = languages_for_tenants(access.tenant_ids)
        if len(languages) == 1:
            return i18n.pick(next(iter(languages)))
    return str(settings.LANGUAGE_CODE)


class ConsoleLanguageMiddleware:
    """Like Django's LocaleMiddleware for the console's pages, with the tenant's default before LANGUAGE_CODE;
    other paths (API, OCPP, OCPI) keep LANGUAGE_CODE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(CONSOLE_PATHS):
            return self.get_response(request)
        language = console_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            translation.deactivate()
        response.headers.setdefault("Content-Language", language)
        vary = response.headers.get("Vary", "")
        if "accept-language" not in vary.lower():
            response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
        return response
