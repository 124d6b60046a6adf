"""A checker of OCPI 2.2.1 objects against the spec's own field tables (../shared/specs/ocpi-2.2.1/*.asciidoc).

It reads every `[[anchor]]` followed by a `|Property |Type |Card.` table (objects and classes) or a `|Value
|Description` table (enums) and checks a JSON document against it: no unknown fields; every `1`/`+` field present
and not null; `?`/`*` fields, when present, not null; `*`/`+` fields are lists (`+` not empty); string(n) and
CiString(n) at most n characters (CiString: printable ASCII); DateTime in the spec's form
('2015-06-29T20:39:09Z', UTC with Z); int/number/boolean types; enums among the listed values; regexes given in a
field's description (GeoLocation's latitude/longitude) matched whole; a description naming "ISO 3166-1 alpha-3"
(alpha-2) checked against the ISO list (pycountry). It knows nothing of our mappers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pycountry

# the spec next to the checkout (../shared, as the issue says), or OCPI_SPEC_DIR
_CHECKOUT = Path(__file__).resolve().parents[2]
SPEC = next(
    (
        p
        for p in (
            Path(os.environ.get("OCPI_SPEC_DIR", "/nonexistent")),
            _CHECKOUT.parent / "shared" / "specs" / "ocpi-2.2.1",
            _CHECKOUT.parent.parent / "shared" / "specs" / "ocpi-2.2.1",
        )
        if p.is_dir()
    ),
    _CHECKOUT.parent / "shared" / "specs" / "ocpi-2.2.1",
)

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_ANCHOR = re.compile(r"^\[\[(\w+)\]\]\s*$")
_REF = re.compile(r"<<(?:[\w.]+#)?(\w+),\s*([^>]+)>>(?:\((\d+)\))?")
_REGEX_IN_TEXT = re.compile(r"Regex:\s*`([^`]+)`")


@dataclass(frozen=True)
class Field:
    name: str
    type_text: str
    card: str
    description: str


@dataclass(frozen=True)
class Spec:
    objects: dict[str, list[Field]]
    enums: dict[str, set[str]]


def _rows(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """The rows of the table opening after `start` (cells split on '|', continuation lines joined)."""
    i = start
    while i < len(lines) and lines[i].strip() != "|===":
        i += 1
    i += 1
    header = lines[i].strip()
    i += 1
    rows: list[str] = []
    while i < len(lines) and lines[i].strip() != "|===":
        line = lines[i]
        if line.startswith("|"):
            rows.append(line)
        elif rows and line.strip():
            rows[-1] += " " + line.strip()
        i += 1
    return [[header]] + [[c.strip() for c in r.split("|")[1:]] for r in rows], i


@cache
def load() -> Spec:
    """Each table belongs to the closest anchor before it that names an object, class or enum (sections such as
    the CDR object's nest other anchors before their table)."""
    objects: dict[str, list[Field]] = {}
    enums: dict[str, set[str]] = {}
    for path in sorted(SPEC.glob("*.asciidoc")):
        lines = path.read_text(encoding="utf-8").splitlines()
        typed: str | None = None  # the last anchor named ..._object/_class/_enum whose table is still to come
        last: str | None = None  # the last anchor of any name (enums such as mod_tariffs_tariff_type)
        index = 0
        while index < len(lines):
            match = _ANCHOR.match(lines[index])
            if match:
                last = match.group(1)
                if last.endswith(("_object", "_class", "_enum")):
                    typed = last
            if lines[index].strip() == "|===":
                owner = typed or last
                rows, index = _rows(lines, index - 1)
                header = rows[0][0].replace(" ", "")
                if owner is not None and header.startswith("|Property|Type|Card."):
                    objects[owner] = [
                        Field(r[0], r[1], r[2], r[3] if len(r) > 3 else "") for r in rows[1:] if len(r) >= 3
                    ]
                    typed = last = None
                elif owner is not None and header.startswith("|Value|"):
                    enums[owner] = {r[0] for r in rows[1:] if r and r[0]}
                    typed = last = None
            index += 1
    return Spec(objects, enums)


def _check_scalar(spec: Spec, field: Field, value: Any, where: str) -> list[str]:
    errors: list[str] = []
    ref = _REF.search(field.type_text)
    kind = (ref.group(2) if ref else re.sub(r"\(\d+\)$", "", field.type_text)).strip()
    anchor = ref.group(1) if ref else ""
    length = int(ref.group(3)) if ref and ref.group(3) else None
    if ref and anchor in spec.enums:
        if value not in spec.enums[anchor]:
            errors.append(f"{where}: {value!r} is not a {kind} ({sorted(spec.enums[anchor])})")
        return errors
    if ref and anchor in spec.objects:
        if not isinstance(value, dict):
            return [f"{where}: a {kind} object expected, got {value!r}"]
        return check(anchor, value, where)
    lowered = kind.lower()
    if lowered in ("string", "cistring", "url"):
        if not isinstance(value, str):
            return [f"{where}: a string expected, got {value!r}"]
        if length is not None and len(value) > length:
            errors.append(f"{where}: {len(value)} characters, at most {length}")
        if lowered == "cistring" and not all(32 <= ord(c) < 127 for c in value):
            errors.append(f"{where}: CiString must be printable ASCII: {value!r}")
        for pattern in _REGEX_IN_TEXT.findall(field.description):
            if not re.fullmatch(pattern, value):
                errors.append(f"{where}: {value!r} does not match {pattern}")
        iso = "3166" in field.description
        if iso and "alpha-3" in field.description and pycountry.countries.get(alpha_3=value) is None:
            errors.append(f"{where}: {value!r} is not an ISO 3166-1 alpha-3 code")
        if iso and "alpha-2" in field.description and pycountry.countries.get(alpha_2=value) is None:
            errors.append(f"{where}: {value!r} is not an ISO 3166-1 alpha-2 code")
    elif lowered == "datetime":
        if not isinstance(value, str) or not DATETIME.match(value):
            errors.append(f"{where}: {value!r} is not a DateTime in the spec's form (2015-06-29T20:39:09Z)")
    elif lowered == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: a boolean expected, got {value!r}")
    elif lowered == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: an int expected, got {value!r}")
    elif lowered == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            errors.append(f"{where}: a number expected, got {value!r}")
    else:
        errors.append(f"{where}: the checker does not know the type {field.type_text!r}")
    return errors


def check(anchor: str, document: dict[str, Any], where: str = "") -> list[str]:
    """Every rule broken by `document` as the object/class `anchor` (e.g. 'mod_locations_location_object')."""
    spec = load()
    fields = {f.name: f for f in spec.objects[anchor]}
    errors = [f"{where}.{name}: not a field of {anchor}" for name in document if name not in fields]
    for name, field in fields.items():
        at = f"{where}.{name}"
        if name not in document:
            if field.card in ("1", "+"):
                errors.append(f"{at}: required ({field.card})")
            continue
        value = document[name]
        if value is None:
            errors.append(f"{at}: null (leave an optional field out instead)")
            continue
        if field.card in ("*", "+"):
            if not isinstance(value, list):
                errors.append(f"{at}: a list expected ({field.card})")
                continue
            if field.card == "+" and not value:
                errors.append(f"{at}: at least one element (+)")
            for i, item in enumerate(value):
                errors.extend(_check_scalar(spec, field, item, f"{at}[{i}]"))
        else:
            errors.extend(_check_scalar(spec, field, value, at))
    return errors
