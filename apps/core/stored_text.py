"""Fixed English sentences that are stored filled in (alert messages, an invoice line's meter-data reference) and
shown in the reader's language.

A `StoredText` is one sentence with named placeholders, its msgid marked with `gettext_noop` where it is declared so
`makemessages` finds it. Writing stores the English sentence (`text.fill(...)`: the API, webhooks and logs keep
English, as before); showing matches the stored sentence against the known shapes and renders the translated one
with the same values (`translated(stored, shapes)`). A stored text of no known shape (written by older code, or by
hand) is shown as it is, so every existing row stays readable and nothing is migrated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext

_PLACEHOLDER = re.compile(r"%\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)s")


class StoredText:
    """One sentence shape, e.g. StoredText(gettext_noop("Connector %(connector)s faulted: %(code)s"))."""

    def __init__(self, msgid: str) -> None:
        self.msgid = msgid
        pattern = ""
        position = 0
        for match in _PLACEHOLDER.finditer(msgid):
            pattern += re.escape(msgid[position : match.start()]) + f"(?P<{match['name']}>.+?)"
            position = match.end()
        pattern += re.escape(msgid[position:])
        self._pattern = re.compile(pattern, re.DOTALL)

    def fill(self, **values: Any) -> str:
        """The English sentence to store."""
        return self.msgid % {name: str(value) for name, value in values.items()}

    def match(self, text: str) -> dict[str, str] | None:
        found = self._pattern.fullmatch(text)
        return found.groupdict() if found else None

    def __repr__(self) -> str:
        return f"StoredText({self.msgid!r})"


def translated(text: str, shapes: Iterable[StoredText]) -> str:
    """The stored sentence in the active language: the first shape it matches (list longer shapes before shorter
    ones they contain), translated and filled with the stored values; else the text as stored."""
    for shape in shapes:
        values = shape.match(text)
        if values is not None:
            return gettext(shape.msgid) % values
    return text


def translated_parts(text: str, shapes: Iterable[StoredText], separator: str = "; ") -> str:
    """A stored text made of parts joined by `separator`, each part translated on its own."""
    known = list(shapes)
    return separator.join(translated(part, known) for part in text.split(separator))
