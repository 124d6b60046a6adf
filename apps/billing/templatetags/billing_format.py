"""Formatting for invoice documents: money, kWh from Wh, durations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def money(value: Any) -> str:
    return f"{Decimal(value):,.2f}"


@register.filter
def kwh(value: Any) -> str:
    return f"{Decimal(int(value or 0)) / 1000:,.3f}"


@register.filter
def duration(seconds: Any) -> str:
    total = int(seconds or 0)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


@register.filter
def css_string(value: Any) -> str:
    """Text for a CSS string literal ("..."): backslash, quote and line breaks as CSS escapes."""
    text = str(value)
    escaped = "".join(f"\\{ord(ch):x} " if ch in "\\\"<>&'" or ord(ch) < 32 else ch for ch in text)
    return mark_safe(escaped)  # noqa: S308 - every character that could end the string or the <style> is escaped
