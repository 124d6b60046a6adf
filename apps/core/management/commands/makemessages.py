"""`manage.py makemessages` with this project's defaults: every shipped language but English (the source), the code
under apps/, evplatform/ and templates/ only (not tests, scripts, benchmarks), no source locations (a moved line
does not change the catalog), obsolete entries dropped. Any option given explicitly still wins."""

from __future__ import annotations

from typing import Any

from django.core.management.commands import makemessages

from apps.core import i18n

IGNORED = ["tests/*", "scripts/*", "benchmarks/*", "docker/*", "static/*", "locale/*", "requirements/*"]


class Command(makemessages.Command):
    def handle(self, *args: Any, **options: Any) -> str | None:
        if not options.get("locale") and not options.get("all") and not options.get("exclude"):
            options["locale"] = [code for code in i18n.shipped() if code != "en"]
        options["ignore_patterns"] = [*(options.get("ignore_patterns") or []), *IGNORED]
        if options.get("add_location") is None:
            options["add_location"] = "never"
        options["no_obsolete"] = True
        options.setdefault("domain", "django")
        return super().handle(*args, **options)
