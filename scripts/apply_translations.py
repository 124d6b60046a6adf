"""Apply pending translations to the catalogs: `python scripts/apply_translations.py locale/new/*.json`.

Branches that add translatable strings put their translations in `locale/new/<name>.json`
({"msgid": {"de": "...", "fr": "..."}}) instead of editing the .po files (parallel branches editing the
catalogs conflict on every line). After `make makemessages`, this fills the untranslated or fuzzy entries it
knows, clears their fuzzy flags, saves the catalogs, and deletes the applied files with `--delete`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polib

LANGUAGES = ("de", "fr")


def main(argv: list[str]) -> int:
    delete = "--delete" in argv
    files = [Path(a) for a in argv if a != "--delete"]
    known: dict[str, dict[str, str]] = {}
    for path in files:
        known.update(json.loads(path.read_text(encoding="utf-8")))
    missing = 0
    for lang in LANGUAGES:
        catalog = Path(f"locale/{lang}/LC_MESSAGES/django.po")
        po = polib.pofile(str(catalog))
        for entry in po:
            if entry.obsolete or (entry.translated() and "fuzzy" not in entry.flags):
                continue
            text = known.get(entry.msgid, {}).get(lang)
            if entry.msgid_plural:  # ngettext: the singular's and the plural's translations, both needed
                plural = known.get(entry.msgid_plural, {}).get(lang)
                if text and plural:
                    entry.msgstr_plural = {0: text, 1: plural}
                    if "fuzzy" in entry.flags:
                        entry.flags.remove("fuzzy")
                continue
            if text:
                entry.msgstr = text
                if "fuzzy" in entry.flags:
                    entry.flags.remove("fuzzy")
                entry.previous_msgid = None
                entry.previous_msgctxt = None
                entry.previous_msgid_plural = None
        left = [e.msgid for e in po if not e.obsolete and not e.translated()]
        missing += len(left)
        for msgid in left:
            print(f"{lang}: untranslated: {msgid!r}")
        po.save(str(catalog))
    if delete and not missing:
        for path in files:
            path.unlink()
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
