"""The shipped catalogs (locale/<lang>/LC_MESSAGES/django.po) are complete for the code as it is: every msgid
translated in every language, nothing fuzzy, placeholders and markup kept, the compiled .mo in step with its .po, and
`makemessages` finds no string that the catalogs lack (or still hold after it went)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polib
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [code for code, _name in settings.LANGUAGES if code != "en"]
# %(name)s, %s, %d, %%, {name}, {0}, and HTML tags: all must come through a translation unchanged
PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[sdfr]|%[sdfr%]|\{[A-Za-z0-9_]*\}|</?[a-z]+[^>]*>")


def catalog(language: str) -> polib.POFile:
    return polib.pofile(str(ROOT / "locale" / language / "LC_MESSAGES" / "django.po"))


def _key(entry: polib.POEntry) -> tuple[str, str]:
    return (entry.msgctxt or "", entry.msgid)


def test_every_language_of_the_settings_has_a_catalog() -> None:
    assert TRANSLATED == ["de", "fr"]
    assert {c: len(catalog(c)) > 0 for c in TRANSLATED} == {"de": True, "fr": True}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_msgid_is_translated_and_not_fuzzy(language: str) -> None:
    entries = [e for e in catalog(language) if not e.obsolete]

    untranslated = [_key(e) for e in entries if not (e.msgstr or (e.msgstr_plural and all(e.msgstr_plural.values())))]
    fuzzy = [_key(e) for e in entries if "fuzzy" in e.flags]
    copied = [
        _key(e)
        for e in entries
        if e.msgstr == e.msgid and len(e.msgid.split()) > 2 and "identical on purpose" not in (e.tcomment or "")
    ]

    assert untranslated == []
    assert fuzzy == []
    assert copied == []  # an English sentence left as its own translation (a name says so in a translator comment)


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_every_placeholder_and_tag(language: str) -> None:
    broken = []
    for entry in catalog(language):
        wanted = Counter(PLACEHOLDER.findall(entry.msgid))
        strings = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in strings:
            if Counter(PLACEHOLDER.findall(text)) != wanted:
                broken.append((entry.msgid, text))
    assert broken == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalog_is_the_po_file(language: str) -> None:
    # `make` compiles locale/*/LC_MESSAGES/django.po to .mo (scripts/compile_messages.py); a stale .mo shows here
    mo_path = ROOT / "locale" / language / "LC_MESSAGES" / "django.mo"
    assert mo_path.exists(), "run `make messages` (make test and make run do it)"
    compiled = {(e.msgctxt or "", e.msgid): e.msgstr or dict(e.msgstr_plural) for e in polib.mofile(str(mo_path))}
    source = {
        _key(e): e.msgstr or {int(k): v for k, v in e.msgstr_plural.items()}
        for e in catalog(language).translated_entries()
    }
    compiled.pop(("", ""), None)  # the header
    assert {k: compiled.get(k) for k in source} == source
    assert set(compiled) == set(source)


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="makemessages needs GNU gettext's xgettext")
def test_makemessages_finds_nothing_the_catalogs_lack(tmp_path: Path) -> None:
    # given a copy of the code and its catalogs (makemessages writes where it runs)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo")
    for folder in ("apps", "evplatform", "templates", "locale"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    shutil.copy2(ROOT / "manage.py", tmp_path / "manage.py")
    before = {c: {_key(e) for e in catalog(c) if not e.obsolete} for c in TRANSLATED}

    # when makemessages runs there with the project's defaults (apps/core/management/commands/makemessages.py)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "evplatform.settings.test"}
    run = subprocess.run(
        [sys.executable, "manage.py", "makemessages"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr

    # then every language's msgids are exactly the ones shipped: none missing, none left over
    after = {
        c: {_key(e) for e in polib.pofile(str(tmp_path / "locale" / c / "LC_MESSAGES" / "django.po")) if not e.obsolete}
        for c in TRANSLATED
    }
    assert {c: sorted(after[c] - before[c]) for c in TRANSLATED} == {c: [] for c in TRANSLATED}
    assert {c: sorted(before[c] - after[c]) for c in TRANSLATED} == {c: [] for c in TRANSLATED}
