"""Formatting for invoice documents in the active language (the recipient's, apps/billing/documents.py): money,
kWh from Wh, durations, VAT rates, and the priced components' labels and texts."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils.formats import number_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy

register = template.Library()


def _number(value: Decimal, places: int | None) -> str:
    """Grouped and with the decimal separator of the active language: 1,234.50 / 1.234,50 / 1 234,50."""
    return number_format(value, places, use_l10n=True, force_grouping=True)


@register.filter
def money(value: Any) -> str:
    return _number(Decimal(str(value)), 2)


@register.filter
def kwh(value: Any) -> str:
    return _number(Decimal(int(value or 0)) / 1000, 3)


@register.filter
def percent(value: Any) -> str:
    """A VAT rate without trailing zeros: 19, 5.5 (5,5 in German and French)."""
    rate = Decimal(str(value)).normalize()
    return _number(rate, _places(rate) or 0)


@register.filter
def duration(seconds: Any) -> str:
    total = int(seconds or 0)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


DIMENSIONS = {
    "ENERGY": gettext_lazy("Energy"),
    "TIME": pgettext_lazy("tariff dimension", "Charging time"),
    "PARKING_TIME": gettext_lazy("Parking time"),
    "FLAT": gettext_lazy("Session fee"),
    "MONTHLY_FEE": gettext_lazy("Monthly fee"),
    "PRICE_LIMIT": gettext_lazy("Price adjustment"),
}


@register.filter
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


# The pricing engine stores each priced part's text in English (apps/tariffs/pricing.py `PricedLine.description`,
# apps/billing/costing.py for monthly fees); a document prints it in its language. A text of another shape (an
# older engine's) is printed as stored.
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


@register.filter
def component_text(value: Any) -> str:
    """A priced component's stored text ("12.5 kWh at 0.39/kWh; 1 h 5 min at 1.20/h") in the active language."""
    return "; ".join(_component_part(part) for part in str(value).split("; "))


@register.filter
def css_string(value: Any) -> str:
    """Text for a CSS string literal ("..."): backslash, quote and line breaks as CSS escapes."""
    text = str(value)
    escaped = "".join(f"\\{ord(ch):x} " if ch in "\\\"<>&'" or ord(ch) < 32 else ch for ch in text)
    return mark_safe(escaped)  # noqa: S308 - every character that could end the string or the <style> is escaped
