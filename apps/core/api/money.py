"""The API's one money format: an amount is a decimal string ("12.50"), next to the currency of its object.

DRF renders DecimalFields so already; OCPI-shaped documents (tariffs, CDRs) are stored with OCPI's JSON
numbers, and their REST views turn the amounts (`price`, `excl_vat`, `incl_vat`) into decimal strings with
`money_as_strings`. Input takes either. The OCPI wire format (roaming) keeps its numbers: it is written from
the stored documents, not through these views.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MONEY_KEYS = frozenset({"price", "excl_vat", "incl_vat"})


def decimal_string(value: Decimal | int | float) -> str:
    number = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    return format(number, "f")


def money_as_strings(value: Any) -> Any:
    """A copy of a JSON document whose money amounts (MONEY_KEYS, at any depth) are decimal strings."""
    if isinstance(value, dict):
        return {
            key: decimal_string(item)
            if key in MONEY_KEYS and isinstance(item, (Decimal, int, float)) and not isinstance(item, bool)
            else money_as_strings(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [money_as_strings(item) for item in value]
    return value
