"""The languages we ship (settings.LANGUAGES) and the choice among a recipient's wishes.

A document or e-mail is written in its recipient's language: the first of the wishes passed (customer or driver,
then the tenant's default) that we ship, else `settings.LANGUAGE_CODE`. A wish is an ISO 639-1 code or a
browser-style tag ("de-AT", "fr_CH"); a language we do not ship is skipped, never an error."""

from __future__ import annotations

from django.conf import settings


def shipped() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def supported(wish: str | None) -> str | None:
    """The shipped language a wish names, or None."""
    if not wish:
        return None
    code = wish.strip().replace("_", "-").lower().split("-")[0]
    return code if code in shipped() else None


def pick(*wishes: str | None) -> str:
    for wish in wishes:
        code = supported(wish)
        if code:
            return code
    return str(settings.LANGUAGE_CODE)
