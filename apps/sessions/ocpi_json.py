"""JSON for OCPI documents stored in the database: Decimal written as a JSON number, digit for digit.

OCPI 2.2.1 types money, volumes and tariff prices as `number`. `DjangoJSONEncoder` writes a Decimal as a
string and `float` would round it, so `DecimalNumberEncoder` writes `format(value, "f")` as the number's
text: PostgreSQL's jsonb keeps it as an exact numeric. `DecimalNumberDecoder` reads numbers with a
fraction back as Decimal (`parse_float=Decimal`), so an amount survives a round trip exactly.
Everything else (datetimes as ISO 8601 with Z, UUIDs, ...) is written as `DjangoJSONEncoder` writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder


def _encode(value: Any, default: Any) -> Iterator[str]:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        yield format(value, "f")
    elif isinstance(value, str | int | float | bool) or value is None:
        yield json.dumps(value)
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            yield (", " if index else "") + json.dumps(key) + ": "
            yield from _encode(item, default)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ", "
            yield from _encode(item, default)
        yield "]"
    else:
        yield from _encode(default(value), default)


class DecimalNumberEncoder(DjangoJSONEncoder):
    """Decimal -> JSON number (exact); the rest as DjangoJSONEncoder. Compact, keys in insertion order."""

    def encode(self, o: Any) -> str:
        return "".join(_encode(o, self.default))

    def iterencode(self, o: Any, _one_shot: bool = False) -> Iterator[str]:
        return _encode(o, self.default)


class DecimalNumberDecoder(json.JSONDecoder):
    """JSON numbers with a fraction or exponent -> Decimal (integers stay int)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parse_float", Decimal)
        super().__init__(*args, **kwargs)


def dumps(value: Any) -> str:
    return json.dumps(value, cls=DecimalNumberEncoder)


def loads(text: str) -> Any:
    return json.loads(text, cls=DecimalNumberDecoder)
