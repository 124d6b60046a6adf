"""The priced components' labels and texts in the active language.

The pricing engine stores each priced part's text in English (`pricing.PricedLine.description`, and billing's
monthly fees); invoices, receipts and the console's session page print it in their language. A text of another
shape (an older engine's) is printed as stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy


def _number(value: Decimal, places: int | None) -> str:
    """Grouped and with the decimal separator of the active language: 1,234.50 / 1.234,50 / 1 234,50."""
    return number_format(value, places, use_l10n=True, force_grouping=True)


DIMENSIONS = {
    "ENERGY": gettext_lazy("Energy"),
    "TIME": pgettext_lazy("tariff dimension", "Charging time"),
    "PARKING_TIME": gettext_lazy("Parking time"),
    "FLAT": gettext_lazy("Session fee"),
    "MONTHLY_FEE": gettext_lazy("Monthly fee"),
    "PRICE_LIMIT": gettext_lazy("Price adjustment"),
}


def dimension_label(value: Any) -> str:
    label = DIMENSIONS.get(str(value))
    return str(label) if label is not None else str(value).replace("_", " ").capitalize()


def _places(value: Decimal) -> int | None:
    """The decimal places a finite Decimal is written with (None for NaN and infinities)."""
    exponent = value.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else None


def _decimal_text(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return _number(value, _places(value))


_NUMBER = r"\d+(?:\.\d+)?"
_DURATION = r"(?:\d+ h)?(?: ?\d+ min)?(?: ?\d+ s)?"
_COMPONENTS: list[tuple[re.Pattern[str], Callable[[dict[str, str]], str]]] = [
    (
        re.compile(rf"^(?P<kwh>{_NUMBER}) kWh at (?P<price>{_NUMBER})/kWh$"),
        lambda m: (
            gettext("%(kwh)s kWh at %(price)s/kWh")
            % {"kwh": _decimal_text(m["kwh"]), "price": _decimal_text(m["price"])}
        ),
    ),
    (
        re.compile(rf"^(?P<duration>{_DURATION}) at (?P<price>{_NUMBER})/h$"),
        lambda m: (
            gettext("%(duration)s at %(price)s/h")
            % {"duration": m["duration"].strip(), "price": _decimal_text(m["price"])}
        ),
    ),
    (
        re.compile(rf"^fee (?P<price>{_NUMBER})$"),
        lambda m: gettext("fee %(price)s") % {"price": _decimal_text(m["price"])},
    ),
    (
        re.compile(rf"^monthly fee (?P<price>{_NUMBER})$"),
        lambda m: gettext("monthly fee %(price)s") % {"price": _decimal_text(m["price"])},
    ),
    (re.compile(r"^minimum/maximum price adjustment$"), lambda m: gettext("minimum/maximum price adjustment")),
]


def _component_part(text: str) -> str:
    for pattern, render in _COMPONENTS:
        match = pattern.match(text)
        if match:
            return render(match.groupdict())
    return text


def component_text(value: Any) -> str:
    """A priced component's stored text ("12.5 kWh at 0.39/kWh; 1 h 5 min at 1.20/h") in the active language."""
    return "; ".join(_component_part(part) for part in str(value).split("; "))
