"""The JSON parser of the API: finite numbers only and a bounded nesting depth.

DRF's parser lets `1e999` through as infinity (PostgreSQL then refuses the value: a 500) and lets Python's
recursive decoder overflow on a body nested a few thousand levels deep (RecursionError: a 500). Both are the
client's mistake, so both are a 400 `parse_error` here, before any view code runs.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

DEFAULT_MAX_DEPTH = 32


def max_depth() -> int:
    return int(getattr(settings, "API_MAX_JSON_DEPTH", DEFAULT_MAX_DEPTH))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def depth_of(value: Any, limit: int) -> int:
    """The nesting depth of a decoded JSON value (a scalar is 0), counting no further than `limit` + 1."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads(text: str) -> Any:
    """Decode API JSON: ValueError for NaN/Infinity/out-of-range numbers and for nesting past the limit."""
    limit = max_depth()
    try:
        value = json.loads(text, parse_float=_finite_float, parse_constant=_constant)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {limit} levels") from None
    if depth_of(value, limit) > limit:
        raise ValueError(f"JSON nested deeper than {limit} levels")
    return value


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        try:
            text = codecs.getreader(encoding)(stream).read()
            return loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
