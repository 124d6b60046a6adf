"""Field rules of OCPI 2.2.1 objects we receive (types.asciidoc): every check raises OCPI 2001 with a message that
names the field (`token.uid: ...`), so a partner sees what to fix and nothing is stored.

- CiString(n): case-insensitive, printable ASCII only, at most n characters;
- string(n): printable UTF-8 (no control characters), at most n characters;
- DateTime: RFC 3339, UTC when no zone is given; URL: an absolute http(s) URL of at most 255 characters;
- enums by their exact (case-sensitive) values; int and boolean by JSON type (true is not 1, "1" is not 1).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from apps.roaming.ocpi.transport import INVALID_PARAMETERS, OcpiError, parse_ocpi_datetime

_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def invalid(name: str, message: str) -> OcpiError:
    return OcpiError(INVALID_PARAMETERS, f"{name}: {message}")


def as_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(name, f"must be a JSON object, not {_kind(value)}.")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _present(obj: dict[str, Any], key: str, name: str, required: bool) -> bool:
    if key not in obj or obj[key] is None:
        if required:
            raise invalid(name, "is required.")
        return False
    return True


def cistring(obj: dict[str, Any], key: str, prefix: str, max_length: int, *, required: bool = True) -> str | None:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise invalid(name, f"must be a string (CiString({max_length})), not {_kind(value)}.")
    if not _PRINTABLE_ASCII.match(value):
        raise invalid(name, "may contain printable ASCII characters only (CiString).")
    if len(value) > max_length:
        raise invalid(name, f"is {len(value)} characters long; at most {max_length} (CiString({max_length})).")
    if required and value == "":
        raise invalid(name, "must not be empty.")
    return value


def string(obj: dict[str, Any], key: str, prefix: str, max_length: int | None, *, required: bool = True) -> str | None:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise invalid(name, f"must be a string, not {_kind(value)}.")
    if _CONTROL.search(value):
        raise invalid(name, "may not contain control characters (line breaks, tabs).")
    if max_length is not None and len(value) > max_length:
        raise invalid(name, f"is {len(value)} characters long; at most {max_length} (string({max_length})).")
    return value


def enum(obj: dict[str, Any], key: str, prefix: str, values: Iterable[str], *, required: bool = True) -> str | None:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    allowed = list(values)
    if not isinstance(value, str) or value not in allowed:
        raise invalid(name, f"{value!r} is not one of {', '.join(allowed)}.")
    return value


def boolean(obj: dict[str, Any], key: str, prefix: str, *, required: bool = True) -> bool | None:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    if not isinstance(value, bool):
        raise invalid(name, f"must be true or false, not {_kind(value)}.")
    return value


def integer(
    obj: dict[str, Any], key: str, prefix: str, *, required: bool = True, minimum: int | None = None
) -> int | None:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"must be an integer, not {_kind(value)}.")
    if minimum is not None and value < minimum:
        raise invalid(name, f"must be at least {minimum}.")
    return value


def number(obj: dict[str, Any], key: str, prefix: str, *, required: bool = True, minimum: float | None = None) -> Any:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise invalid(name, f"must be a number, not {_kind(value)}.")
    if value != value or value in (float("inf"), float("-inf")):
        raise invalid(name, "must be a finite number.")
    if minimum is not None and value < minimum:
        raise invalid(name, f"must be at least {minimum}.")
    return value


def datetime(obj: dict[str, Any], key: str, prefix: str, *, required: bool = True) -> dt.datetime | None:
    name = f"{prefix}.{key}"
    if not _present(obj, key, name, required):
        return None
    value = obj[key]
    try:
        return parse_ocpi_datetime(value)
    except (ValueError, TypeError):
        raise invalid(name, f"{value!r} is not an RFC 3339 DateTime such as 2015-06-29T20:39:09Z.") from None


def url(obj: dict[str, Any], key: str, prefix: str, *, required: bool = True) -> str | None:
    name = f"{prefix}.{key}"
    value = string(obj, key, prefix, 255, required=required)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise invalid(name, f"{value!r} is not an absolute http(s) URL.")
    return value


def display_texts(obj: dict[str, Any], key: str, prefix: str) -> list[dict[str, str]]:
    """A list of DisplayText (language string(2), text string(512)); absent means empty."""
    name = f"{prefix}.{key}"
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(name, f"must be a list of DisplayText, not {_kind(value)}.")
    texts = []
    for n, item in enumerate(value):
        item = as_object(item, f"{name}[{n}]")
        language = string(item, "language", f"{name}[{n}]", 2)
        text = string(item, "text", f"{name}[{n}]", 512)
        assert language is not None
        assert text is not None
        texts.append({"language": language, "text": text})
    return texts


def segment(value: str, name: str, max_length: int) -> str:
    """A CiString URL segment (country code, party id, uid, ids)."""
    if not value or len(value) > max_length or not _PRINTABLE_ASCII.match(value):
        raise invalid(name, f"{value!r} is not a CiString({max_length}).")
    return value
