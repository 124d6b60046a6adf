"""Compile the translation catalogs: every locale/<lang>/LC_MESSAGES/*.po to its .mo, with polib (pure Python, pinned
in requirements/base.txt) so a machine without GNU gettext's msgfmt builds them too. Run by `make` before `run`,
`test` and `api-fuzz` (only catalogs newer than their .mo) and by the Docker build; the .mo files are not committed
(built from the reviewed .po, they cannot drift from it). Fuzzy and untranslated entries are left out, as msgfmt
does. Usage: python scripts/compile_messages.py [file.po ...] (default: every catalog under locale/)."""

from __future__ import annotations

import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent


def compile_catalog(po_path: Path) -> Path:
    mo_path = po_path.with_suffix(".mo")
    catalog = polib.pofile(str(po_path))
    tmp = mo_path.with_suffix(".mo.tmp")
    catalog.save_as_mofile(str(tmp))
    tmp.replace(mo_path)  # a reader never sees half a file
    return mo_path


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((ROOT / "locale").glob("*/LC_MESSAGES/*.po"))
    for po_path in paths:
        mo_path = compile_catalog(po_path)
        print(f"[messages] {po_path.relative_to(ROOT) if po_path.is_absolute() else po_path} -> {mo_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
