"""Template filters of the console's human values (`apps.core.admin_display`): `{{ at|local_datetime }}` (the user's
zone, named) and `{{ amount|money:currency }}`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from apps.core import admin_display

register = template.Library()


@register.filter
def local_datetime(value: dt.datetime | None) -> str:
    return admin_display.local_datetime(value) if value is not None else "-"


@register.filter
def money(value: Any, currency: str = "") -> str:
    if value in (None, ""):
        return "-"
    try:
        return admin_display.money(Decimal(str(value)), currency)
    except InvalidOperation:
        return str(value)
