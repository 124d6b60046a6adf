"""Tariffs in the ops console: the OCPI elements are edited as one JSON document, validated by the same rules
as the API (`apps.tariffs.ocpi`), with a plain-language summary of what was saved. Saves go through services."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.tariffs import pricing, services
from apps.tariffs.models import ContractPriceList, RoamingRetailRule, Tariff, TariffAssignment
from apps.tariffs.ocpi import DisplayTextSerializer, EnergyMixSerializer, canonical, canonical_elements
from apps.tenants.scoping import TenantScopedAdmin


class _DecimalDecoder(json.JSONDecoder):
    """Numbers in the editor become Decimal, never float."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parse_float"] = Decimal
        super().__init__(*args, **kwargs)


class _JSONEditor(forms.JSONField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("decoder", _DecimalDecoder)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 18, "cols": 100, "style": "font-family: monospace"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)


ELEMENTS_HELP = _(
    'OCPI TariffElement list, e.g. [{"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 19, '
    '"step_size": 1}], "restrictions": {"start_time": "22:00", "end_time": "06:00"}}]. The first element whose '
    "restrictions match prices a dimension."
)


class TariffAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    elements = _JSONEditor(help_text=ELEMENTS_HELP)
    tariff_alt_text = _JSONEditor(required=False, help_text='[{"language": "en", "text": "..."}]')
    energy_mix = _JSONEditor(required=False, help_text=_("OCPI EnergyMix object, optional."))
    tariff_alt_url = forms.URLField(required=False, max_length=255, assume_scheme="https")

    class Meta:
        model = Tariff
        fields = [
            "tenant",
            "ocpi_id",
            "currency",
            "type",
            "elements",
            "min_price_excl_vat",
            "min_price_incl_vat",
            "max_price_excl_vat",
            "max_price_incl_vat",
            "start_date_time",
            "end_date_time",
            "tariff_alt_text",
            "tariff_alt_url",
            "energy_mix",
            "parking_grace_minutes",
        ]

    def clean_elements(self) -> Any:
        return _as_form_error(canonical_elements, self.cleaned_data.get("elements"))

    def clean_tariff_alt_text(self) -> Any:
        value = self.cleaned_data.get("tariff_alt_text") or []
        return _as_form_error(lambda v: canonical(DisplayTextSerializer, v, many=True, name="tariff_alt_text"), value)

    def clean_energy_mix(self) -> Any:
        value = self.cleaned_data.get("energy_mix")
        if value in (None, "", {}):
            return None
        return _as_form_error(lambda v: canonical(EnergyMixSerializer, v, many=False, name="energy_mix"), value)


def _as_form_error(check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValidationError as exc:
        messages = [m for ms in exc.message_dict.values() for m in ms] if hasattr(exc, "error_dict") else exc.messages
        raise forms.ValidationError(messages) from exc


def describe_elements(elements: list[dict[str, Any]]) -> list[str]:
    """One line per element: what it prices and when."""
    out = []
    for index, element in enumerate(pricing.elements_from_ocpi(elements)):
        parts = []
        for c in element.price_components:
            unit = {"ENERGY": "/kWh", "TIME": "/h charging", "PARKING_TIME": "/h parking", "FLAT": " per session"}
            vat = f", VAT {c.vat}%" if c.vat is not None else ""
            step = f", step {c.step_size}" if c.type != "FLAT" and c.step_size > 1 else ""
            parts.append(f"{c.type} {c.price}{unit[c.type]}{vat}{step}")
        when = _describe_restrictions(element.restrictions)
        out.append(f"#{index}: {'; '.join(parts)}{' - when ' + when if when else ''}")
    return out


def _describe_restrictions(r: pricing.TariffRestrictions | None) -> str:
    if r is None:
        return ""
    bits = []
    if r.start_time or r.end_time:
        start = r.start_time.strftime("%H:%M") if r.start_time else "00:00"
        end = r.end_time.strftime("%H:%M") if r.end_time else "24:00"
        bits.append(f"{start}-{end} local")
    if r.day_of_week:
        bits.append(", ".join(d.value.title()[:3] for d in pricing.WEEKDAYS if d in r.day_of_week))
    if r.start_date or r.end_date:
        bits.append(f"dates {r.start_date or '...'} to {r.end_date or '...'} (excl.)")
    for name in ("kwh", "current", "power", "duration"):
        low, high = getattr(r, f"min_{name}"), getattr(r, f"max_{name}")
        if low is not None or high is not None:
            bits.append(f"{name} in [{low if low is not None else 0}, {high if high is not None else '...'})")
    if r.reservation:
        bits.append(r.reservation.value.lower())
    return ", ".join(bits)


class DeleteThroughServiceAdmin(TenantScopedAdmin):
    """Deletes here go through the app's delete service (its checks, and the cache invalidation of prices)."""

    def delete_one(self, obj: Any) -> None:
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_one(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset.order_by("pk"):
            self.delete_one(obj)


@admin.register(Tariff)
class TariffAdmin(DeleteThroughServiceAdmin):
    form = TariffAdminForm
    list_display = ["ocpi_id", "tenant", "currency", "type", "start_date_time", "end_date_time", "updated_at"]
    list_filter = ["type", "currency", "tenant"]
    search_fields = ["ocpi_id"]

    def delete_one(self, obj: Any) -> None:
        services.tariff_delete(tariff=obj)

    list_select_related = ["tenant"]
    readonly_fields = ["summary", "updated_at"]

    @admin.display(description=_("What the elements say"))
    def summary(self, obj: Tariff) -> Any:
        if not obj.pk:
            return "-"
        return format_html_join("", "<div>{}</div>", ((line,) for line in describe_elements(obj.elements)))

    def save_model(self, request: HttpRequest, obj: Tariff, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        fields: dict[str, Any] = {name: data[name] for name in services.TARIFF_FIELDS if name in data}
        for name in ("min_price", "max_price"):
            excl, incl = data.get(f"{name}_excl_vat"), data.get(f"{name}_incl_vat")
            fields[name] = None if excl is None else {"excl_vat": excl, "incl_vat": incl}
        if change:
            saved = services.tariff_update(tariff=obj, **fields)
        else:
            saved = services.tariff_create(tenant=data["tenant"], **fields)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Tariff) -> None:
        services.tariff_delete(tariff=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tariff]) -> None:
        for obj in queryset.order_by("pk"):
            services.tariff_delete(tariff=obj)


class TariffAssignmentAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = TariffAssignment
        fields = ["tenant", "tariff", "location", "charge_point", "evse", "ad_hoc", "valid_from", "valid_until"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant = data.get("tenant")
        errors = {
            name: gettext("Belongs to another tenant.")
            for name in ("tariff", "location", "charge_point", "evse")
            if tenant is not None and data.get(name) is not None and data[name].tenant_id != tenant.pk
        }
        if errors:
            raise ValidationError(errors)
        return data


@admin.register(TariffAssignment)
class TariffAssignmentAdmin(DeleteThroughServiceAdmin):
    form = TariffAssignmentAdminForm
    list_display = ["tariff", "target", "ad_hoc", "valid_from", "valid_until", "tenant"]
    list_filter = ["ad_hoc", "tenant"]
    search_fields = ["tariff__ocpi_id"]

    def delete_one(self, obj: Any) -> None:
        services.tariff_assignment_delete(assignment=obj)

    list_select_related = ["tenant", "tariff", "location", "charge_point", "evse"]
    raw_id_fields = ["tariff", "location", "charge_point", "evse"]

    @admin.display(description=_("Applies to"))
    def target(self, obj: TariffAssignment) -> str:
        target = obj.evse or obj.charge_point or obj.location
        return f"{obj.target_label}: {target}" if target else obj.target_label

    def save_model(self, request: HttpRequest, obj: TariffAssignment, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        tenant = data.pop("tenant")
        if change:
            saved = services.tariff_assignment_update(assignment=obj, **data)
        else:
            saved = services.tariff_assignment_create(tenant=tenant, **data)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: TariffAssignment) -> None:
        services.tariff_assignment_delete(assignment=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TariffAssignment]) -> None:
        for obj in queryset.order_by("pk"):
            services.tariff_assignment_delete(assignment=obj)


class ContractPriceListAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ContractPriceList
        fields = [
            "tenant",
            "business_customer",
            "name",
            "currency",
            "discount_percent",
            "energy_price_per_kwh",
            "session_fee",
            "monthly_fee",
            "vat_rate",
            "valid_from",
            "valid_until",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, customer = data.get("tenant"), data.get("business_customer")
        if tenant is not None and customer is not None and customer.tenant_id != tenant.pk:
            raise ValidationError({"business_customer": "Belongs to another tenant."})
        return data


@admin.register(ContractPriceList)
class ContractPriceListAdmin(DeleteThroughServiceAdmin):
    form = ContractPriceListAdminForm
    list_display = [
        "name",
        "business_customer",
        "currency",
        "discount_percent",
        "energy_price_per_kwh",
        "session_fee",
        "monthly_fee",
        "valid_from",
        "valid_until",
    ]
    list_filter = ["currency", "tenant"]
    search_fields = ["name", "business_customer__name"]
    list_select_related = ["tenant", "business_customer"]
    raw_id_fields = ["business_customer"]

    def delete_one(self, obj: Any) -> None:
        services.contract_price_list_delete(price_list=obj)

    def save_model(self, request: HttpRequest, obj: ContractPriceList, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        tenant = data.pop("tenant")
        if change:
            saved = services.contract_price_list_update(price_list=obj, **data)
        else:
            saved = services.contract_price_list_create(tenant=tenant, **data)
        obj.pk = saved.pk


# --------------------------------------------------------------------------- roaming retail rules (eMSP search slice)


class RoamingRetailRuleAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = RoamingRetailRule
        fields = ["tenant", "partner", "mode", "markup_percent", "price_per_kwh_excl_vat", "vat_rate", "currency"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant, partner = data.get("tenant"), data.get("partner")
        if tenant is not None and partner is not None and partner.tenant_id != tenant.pk:
            raise ValidationError({"partner": "Belongs to another tenant."})
        return data


@admin.register(RoamingRetailRule)
class RoamingRetailRuleAdmin(DeleteThroughServiceAdmin):
    """What our drivers pay on each roaming partner's EVSEs (no rule: the CPO's price, pass-through)."""

    form = RoamingRetailRuleAdminForm
    list_display = ["partner", "mode", "markup_percent", "price_per_kwh_excl_vat", "vat_rate", "currency", "tenant"]
    list_filter = ["mode", "tenant"]
    search_fields = ["partner__name", "partner__party_id"]
    list_select_related = ["tenant", "partner"]
    raw_id_fields = ["partner"]

    def delete_one(self, obj: Any) -> None:
        services.roaming_retail_rule_delete(rule=obj)

    def save_model(self, request: HttpRequest, obj: RoamingRetailRule, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        tenant = data.pop("tenant")
        if change:
            saved = services.roaming_retail_rule_update(rule=obj, **data)
        else:
            saved = services.roaming_retail_rule_create(tenant=tenant, **data)
        obj.pk = saved.pk
