"""Values and labels in the admin written for a person, in one place for every app's lists and pages.

Django's admin shows a model field as stored: energy "17817" (Wh), latency "23.420004000399786", a duration
"0:00:00.103868", money "6.3100", a cost breakdown as JSON, datetimes without their zone, labels from field
names ("Max power w"). The console keeps storage as it is (Wh, W, Decimal, UTC; CONVENTIONS.md) and renders:

- datetimes in the current time zone (the user's, see `apps.tenants.middleware`) with the zone named;
- `*_wh` as kWh, `*_w` as kW, `*_ms` as rounded milliseconds, `*_pct`/percent and VAT rates with "%";
- durations as h:mm:ss; decimals without trailing zeros past the cents, with thousands separators;
- JSON (cost and VAT breakdowns, payloads, configuration) as tables on a page, compact in a list;
- labels from field names with units and acronyms written out ("Max power (W)", "EVSE UID", "VAT rate").

`install()` (from `CoreConfig.ready`) puts these behind Django's own `display_for_field` / `label_for_field` in
the two admin modules that import them, so every ModelAdmin gets them without listing fields one by one; a field
with an explicit `verbose_name` keeps it. Anything not covered falls through to Django's formatting.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import formats, timezone
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_lazy

ACRONYMS = {
    "id": "ID", "uid": "UID", "evse": "EVSE", "evses": "EVSEs", "ocpi": "OCPI", "ocpp": "OCPP", "oicp": "OICP",
    "vat": "VAT", "cdr": "CDR", "cdrs": "CDRs", "url": "URL", "soc": "SoC", "iccid": "ICCID", "imsi": "IMSI",
    "api": "API", "iban": "IBAN", "bic": "BIC", "emi3": "eMI3", "ac": "AC", "dc": "DC", "pdf": "PDF", "rfid": "RFID",
    "sku": "SKU", "tx": "Tx", "http": "HTTP", "ip": "IP", "pk": "ID", "kwh": "kWh",
}  # fmt: skip
UNITS = {"wh": "Wh", "w": "W", "ms": "ms", "a": "A", "v": "V", "pct": "%", "kwh": "kWh", "kw": "kW", "s": "s"}
DISPLAY_UNITS = {"wh": "", "w": "", "ms": "", "pct": ""}  # units the displayed value names itself
PERCENT_NAMES = ("percent", "vat_rate", "_pct", "rate_pct")


def _words(name: str) -> list[str]:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [part for part in name.split("_") if part]


def _label_parts(name: str) -> tuple[str, str]:
    """The English label of a field name without its unit, and the unit's suffix ("max_power_w" -> "Max power", "w")."""
    words = _words(name)
    suffix = ""
    if len(words) > 1 and words[-1].lower() in UNITS:
        suffix = words.pop().lower()
    text = " ".join(ACRONYMS.get(word.lower(), word.lower()) for word in words)
    return text[:1].upper() + text[1:], suffix


def label_msgid(name: str) -> str:
    """The msgid of a field name's label (what the catalogs translate; see `auto_msgids`)."""
    return _label_parts(name)[0]


def human_label(name: str, *, editable: bool = False) -> str:
    """A label from a field name, in the active language: acronyms and units written out; a unit the displayed
    value already names ("17.82 kWh") is left out of a read-only label."""
    text, suffix = _label_parts(name)
    unit = UNITS[suffix] if suffix and (editable or suffix not in DISPLAY_UNITS) else ""
    text = gettext(text) if text else text
    return f"{text} ({unit})" if unit else text


def auto_msgids() -> list[str]:
    """Strings the console shows that no source line spells out, for `makemessages` to add to the catalogs
    (apps/core/management/commands/makemessages.py): the labels made from field names here, and the names of our
    models that Django derives from their class names (translated at run time by `translate_model_names`)."""
    from django.apps import apps

    found: dict[str, None] = {}
    for model in apps.get_models():
        if not model.__module__.startswith("apps."):
            continue
        for field in model._meta.get_fields():
            if isinstance(field, models.Field) and _auto_named(field):
                found[label_msgid(field.name)] = None
        for option in ("verbose_name", "verbose_name_plural"):
            if option not in model._meta.original_attrs:
                found[str(getattr(model._meta, option))] = None
        for _field, labels in _plain_choices(model):
            for label in labels:
                found[label] = None
    for label in DERIVED_CHOICE_LABELS:  # made lazy by `translate_model_names` at start-up
        found[label] = None
    return [text for text in found if text]


DERIVED_CHOICE_LABELS: list[str] = []


def _plain_choices(model: Any) -> list[tuple[models.Field[Any, Any], list[str]]]:
    """Fields of a model whose choices have labels no source line marks (Django derives a TextChoices member's label
    from its name: "Completed"), with those labels."""
    out = []
    for field in model._meta.fields:
        choices = getattr(field, "choices", None)
        if not choices or any(isinstance(label, list | tuple) for _value, label in choices):
            continue  # none, or grouped
        plain = [label for _value, label in choices if isinstance(label, str) and not isinstance(label, Promise)]
        if plain:
            out.append((field, plain))
    return out


def translate_model_names() -> None:
    """Our models' derived names ("charge point", "charge points") and derived choice labels ("Completed") through
    the catalogs: set on `_meta` only, not in `original_attrs`, so migrations do not see them (an explicit
    Meta.verbose_name or choice label is marked in its source)."""
    from django.apps import apps

    for model in apps.get_models():
        if not model.__module__.startswith("apps."):
            continue
        for option in ("verbose_name", "verbose_name_plural"):
            if option not in model._meta.original_attrs:
                setattr(model._meta, option, gettext_lazy(str(getattr(model._meta, option))))
        for field, labels in _plain_choices(model):
            DERIVED_CHOICE_LABELS.extend(labels)
            # lazy labels equal their English: migrations see the same choices
            field.choices = [
                (value, label if isinstance(label, Promise) else gettext_lazy(str(label)))
                for value, label in field.choices or []
            ]


def _auto_named(field: models.Field[Any, Any]) -> bool:
    return str(field.verbose_name) == field.name.replace("_", " ")


def label_formfield(db_field: Any, formfield: Any) -> Any:
    """An editable field's label from its name, with its unit ("Max power (W)"), unless it has a verbose_name."""
    if formfield is not None and isinstance(db_field, models.Field) and _auto_named(db_field):
        formfield.label = human_label(db_field.name, editable=True)
    return formfield


# --------------------------------------------------------------------------- values


def _grouped(text: str) -> str:
    """A number Python wrote, already rounded ("1234.50"), grouped and separated as the active language writes it
    (Django's `number_format`: "1,234.50", "1.234,50" in German, "1 234,50" in French; it cuts extra decimals
    rather than rounding them, hence rounded first)."""
    places = len(text.partition(".")[2])
    return formats.number_format(Decimal(text), decimal_pos=places, use_l10n=True, force_grouping=True)


def number(value: Decimal | float | int, *, min_places: int = 0, max_places: int = 4) -> str:
    """1234.5000 -> "1,234.50" (min 2 places) ; 0.3590 -> "0.359"; thousands separated; in the active language's
    separators."""
    whole, _, frac = f"{Decimal(value):.{max_places}f}".partition(".")
    frac = frac.rstrip("0")
    frac = frac + "0" * max(0, min_places - len(frac))
    return _grouped(f"{whole}.{frac}" if frac else whole)


def energy(wh: float | int | Decimal) -> str:
    kwh = Decimal(wh) / 1000
    places = 2 if abs(kwh) < 10_000 else 1
    return _grouped(f"{kwh:.{places}f}") + " kWh"


def power(w: float | int | Decimal) -> str:
    kw = Decimal(w) / 1000
    return f"{number(kw, max_places=1)} kW"


def duration(value: dt.timedelta) -> str:
    seconds = value.total_seconds()
    if 0 <= seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    sign = "-" if seconds < 0 else ""
    total = int(abs(seconds))
    hours, rest = divmod(total, 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"


def milliseconds(value: float | int) -> str:
    return _grouped(f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}") + " ms"


def money(value: Decimal | str | float, currency: str = "") -> str:
    text = number(Decimal(str(value)), min_places=2)
    return f"{text} {currency}".strip()


def local_datetime(value: dt.datetime, *, seconds: bool = True) -> SafeString:
    """In the current time zone, the zone named; the UTC instant in the tooltip and the `datetime` attribute."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    local = timezone.localtime(value)
    utc = value.astimezone(dt.UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} {}</time>',
        utc.isoformat().replace("+00:00", "Z"),
        f"{utc:%Y-%m-%d %H:%M:%S}",
        local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"),
        local.tzname() or timezone.get_current_timezone_name(),
    )


def _label(key: Any) -> str:
    return human_label(str(key)) if isinstance(key, str) else str(key)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json_table(value)
    if value is None:
        return "-"
    return str(value)


def json_table(value: Any) -> SafeString:
    """A dict as a two-column table, a list of dicts as a table with a column per key, nested values in place."""
    if isinstance(value, dict):
        if not value:
            return mark_safe("-")
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((_label(k), _cell(v)) for k, v in value.items())
        )
        return format_html('<table class="console-table json-table">{}</table>', rows)
    if isinstance(value, list):
        if not value:
            return mark_safe("-")
        if all(isinstance(item, dict) for item in value):
            keys = list(dict.fromkeys(key for item in value for key in item))
            head = format_html_join("", "<th>{}</th>", ((_label(k),) for k in keys))
            body = format_html_join(
                "",
                "<tr>{}</tr>",
                ((format_html_join("", "<td>{}</td>", ((_cell(item.get(k)),) for k in keys)),) for item in value),
            )
            return format_html('<table class="console-table json-table"><tr>{}</tr>{}</table>', head, body)
        return format_html_join(", ", "{}", ((_cell(item),) for item in value))
    return format_html("{}", _cell(value))


def cost_breakdown_table(breakdown: dict[str, Any]) -> SafeString:
    """The stored price of a session (`tariffs` pricing engine) as a table of the tariff elements applied."""
    currency = breakdown.get("currency", "")
    lines = breakdown.get("lines") or []
    rows = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{} %</td><td class="num">{}</td></tr>',
        (
            (
                str(line.get("dimension", "")).replace("_", " ").capitalize(),
                line.get("description", ""),
                money(line.get("excl_vat", "0")),
                number(Decimal(str(line.get("vat", "0")))),
                money(line.get("incl_vat", "0")),
            )
            for line in lines
        ),
    )
    return format_html(
        '<table class="console-table cost-table"><thead><tr><th>{}</th><th>{}</th>'
        '<th class="num">{}</th><th class="num">{}</th><th class="num">{}</th></tr></thead>'
        '<tbody>{}</tbody><tfoot><tr><td colspan="2">{}</td><td class="num">{}</td><td></td>'
        '<td class="num">{}</td></tr></tfoot></table>',
        gettext("Element"),
        gettext("Applied"),
        gettext("Excl. VAT"),
        gettext("VAT"),
        gettext("Incl. VAT"),
        rows,
        gettext("Total (%(currency)s)") % {"currency": currency},
        money(breakdown.get("total_excl_vat", "0")),
        money(breakdown.get("total_incl_vat", "0")),
    )


def vat_breakdown_table(rows: list[dict[str, Any]]) -> SafeString:
    body = format_html_join(
        "",
        '<tr><td class="num">{} %</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>',
        (
            (
                number(Decimal(str(row.get("rate", "0")))),
                money(row.get("net", "0")),
                money(row.get("vat", "0")),
                money(row.get("gross", "0")),
            )
            for row in rows
        ),
    )
    return format_html(
        '<table class="console-table vat-table"><thead><tr><th class="num">{}</th><th class="num">{}</th>'
        '<th class="num">{}</th><th class="num">{}</th></tr></thead><tbody>{}</tbody></table>',
        gettext("VAT rate"),
        gettext("Net"),
        gettext("VAT"),
        gettext("Gross"),
        body,
    )


def _compact_json(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_value(value: Any, field: models.Field[Any, Any], *, in_list: bool) -> Any:
    """The value as a person reads it, or None to leave it to Django."""
    if value is None or getattr(field, "flatchoices", None):
        return None
    name = field.name
    suffix = name.rsplit("_", 1)[-1] if "_" in name else ""
    if isinstance(field, models.DateTimeField):
        return local_datetime(value, seconds=not in_list)
    if isinstance(field, models.DurationField):
        return duration(value)
    if isinstance(field, models.BooleanField):
        return None
    if isinstance(field, models.IntegerField | models.FloatField | models.DecimalField):
        if suffix == "wh":
            return energy(value)
        if suffix == "w":
            return power(value)
        if suffix == "ms":
            return milliseconds(value)
        if suffix == "pct" or any(part in name for part in PERCENT_NAMES):
            return f"{number(value, max_places=2)} %"
        if isinstance(field, models.DecimalField):
            return number(value, min_places=2 if field.decimal_places >= 2 else 0)
        if isinstance(field, models.FloatField):
            return number(value, max_places=2)
        return None
    if isinstance(field, models.JSONField):
        if in_list:
            return _compact_json(value)
        if name == "cost_breakdown" and isinstance(value, dict) and "lines" in value:
            return cost_breakdown_table(value)
        if name == "vat_breakdown" and isinstance(value, list):
            return vat_breakdown_table(value)
        return json_table(value)
    return None


def _wrap_display(original: Callable[..., Any], *, in_list: bool) -> Callable[..., Any]:
    def display_for_field(value: Any, field: Any, empty_value_display: str, *args: Any, **kwargs: Any) -> Any:
        shown = human_value(value, field, in_list=in_list) if isinstance(field, models.Field) else None
        return shown if shown is not None else original(value, field, empty_value_display, *args, **kwargs)

    display_for_field.__wrapped__ = original  # type: ignore[attr-defined]
    return display_for_field


def _wrap_value(original: Callable[..., Any], *, in_list: bool) -> Callable[..., Any]:
    """Values of admin methods (`list_display` callables): a datetime in the user's zone like a field's."""

    def display_for_value(value: Any, empty_value_display: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, dt.datetime):
            return local_datetime(value, seconds=not in_list)
        return original(value, empty_value_display, *args, **kwargs)

    display_for_value.__wrapped__ = original  # type: ignore[attr-defined]
    return display_for_value


def _wrap_label(original: Callable[..., Any]) -> Callable[..., Any]:
    def label_for_field(name: Any, model: Any, model_admin: Any = None, return_attr: bool = False, form: Any = None):  # type: ignore[no-untyped-def]
        result = original(name, model, model_admin, return_attr, form)
        if not isinstance(name, str):
            return result
        try:
            field = model._meta.get_field(name)
        except Exception:  # noqa: BLE001 - not a model field (a method, a form field): Django's label stands
            return result
        if not isinstance(field, models.Field) or not _auto_named(field):
            return result
        editable = form is not None and name in getattr(form, "fields", {})
        label = human_label(name, editable=editable)
        return (label, result[1]) if return_attr else label

    label_for_field.__wrapped__ = original  # type: ignore[attr-defined]
    return label_for_field


def install() -> None:
    """Route the admin's value and label rendering through this module (idempotent)."""
    from django.contrib.admin import helpers
    from django.contrib.admin.templatetags import admin_list

    for module, in_list in ((admin_list, True), (helpers, False)):
        if not hasattr(module.display_for_field, "__wrapped__"):
            module.display_for_field = _wrap_display(module.display_for_field, in_list=in_list)  # type: ignore[attr-defined]
        if hasattr(module, "display_for_value") and not hasattr(module.display_for_value, "__wrapped__"):
            module.display_for_value = _wrap_value(module.display_for_value, in_list=in_list)  # type: ignore[attr-defined]
        if not hasattr(module.label_for_field, "__wrapped__"):
            module.label_for_field = _wrap_label(module.label_for_field)  # type: ignore[attr-defined]
