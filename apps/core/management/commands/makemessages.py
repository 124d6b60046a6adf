"""`manage.py makemessages` with this project's defaults: every shipped language but English (the source), the code
under apps/, evplatform/ and templates/ only (not tests, scripts, benchmarks), no source locations (a moved line
does not change the catalog), obsolete entries dropped, and the console's labels that no source line spells out
(field-name labels, derived model names: `apps.core.admin_display.auto_msgids`). Any option given explicitly
still wins."""

from __future__ import annotations

from typing import Any

import polib
from django.core.management.commands import makemessages

from apps.core import i18n
from apps.core.admin_display import auto_msgids

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

    def build_potfiles(self) -> list[str]:
        potfiles: list[str] = super().build_potfiles()
        for path in potfiles:
            template = polib.pofile(path, wrapwidth=79)
            for text in auto_msgids():
                if template.find(text, msgctxt=None) is None:
                    template.append(polib.POEntry(msgid=text, msgstr="", comment="label derived from a name"))
            template.save(path)
        return potfiles
