"""Formatting for invoice documents in the active language (the recipient's, apps/billing/documents.py): money,
kWh from Wh, durations, VAT rates, and the priced components' labels and texts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.formats import number_format
from django.utils.safestring import mark_safe

from apps.tariffs import texts

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


@register.filter
def dimension_label(value: Any) -> str:
    return texts.dimension_label(value)


@register.filter
def component_text(value: Any) -> str:
    """A priced component's stored text ("12.5 kWh at 0.39/kWh; 1 h 5 min at 1.20/h") in the active language."""
    return texts.component_text(value)


def _places(value: Decimal) -> int | None:
    """The decimal places a finite Decimal is written with (None for NaN and infinities)."""
    exponent = value.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else None


@register.filter
def meter_text(value: Any) -> str:
    """An invoice line's stored meter-data reference (Eichrecht) in the active language."""
    from apps.billing.lines import meter_verification_text

    return meter_verification_text(str(value))


@register.filter
def css_string(value: Any) -> str:
    """Text for a CSS string literal ("..."): backslash, quote and line breaks as CSS escapes."""
    text = str(value)
    escaped = "".join(f"\\{ord(ch):x} " if ch in "\\\"<>&'" or ord(ch) < 32 else ch for ch in text)
    return mark_safe(escaped)  # noqa: S308 - every character that could end the string or the <style> is escaped
