"""Strict validation of the OCPI 2.2.1 Tariff object's nested parts, shared by the API, the admin and services.

Each class rejects unknown fields, wrong enum values, malformed times/dates and out-of-range numbers.
`canonical_elements` turns a validated element list into the stored form: plain JSON, numbers as decimal
strings, optional fields that were not given left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.tariffs.pricing import (
    CdrDimensionType,
    DayOfWeek,
    ReservationRestrictionType,
    TariffDimensionType,
)

TIME_OF_DAY = r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$"
DATE = r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
ENERGY_SOURCES = ["NUCLEAR", "GENERAL_FOSSIL", "COAL", "GAS", "GENERAL_GREEN", "SOLAR", "WIND", "WATER"]
ENVIRON_IMPACTS = ["NUCLEAR_WASTE", "CARBON_DIOXIDE"]
RESERVATION_DIMENSIONS = {TariffDimensionType.FLAT.value, TariffDimensionType.TIME.value}


def _number(**kwargs: Any) -> serializers.DecimalField:
    kwargs.setdefault("max_digits", 16)
    kwargs.setdefault("decimal_places", 4)
    kwargs.setdefault("min_value", Decimal(0))
    kwargs.setdefault("coerce_to_string", False)
    return serializers.DecimalField(**kwargs)


def _money(**kwargs: Any) -> serializers.DecimalField:
    """An amount: read as a number or a decimal string, answered as a decimal string (the API's money format)."""
    return _number(coerce_to_string=True, **kwargs)


def _optional_number(**kwargs: Any) -> serializers.DecimalField:
    return _number(required=False, allow_null=True, **kwargs)


class OcpiDateField(serializers.RegexField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(DATE, required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise serializers.ValidationError("Not a calendar date.") from None
        return value  # type: ignore[no-any-return]


class PriceComponentSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=[d.value for d in TariffDimensionType])
    price = _money(help_text="Price per unit excl. VAT: per kWh (ENERGY), per hour (TIME, PARKING_TIME), or once.")
    vat = _optional_number(max_digits=7, max_value=Decimal(100), help_text="VAT percent; omitted: no VAT given.")
    step_size = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, help_text="Billing block: Wh (ENERGY) or seconds; ignored for FLAT."
    )


class TariffRestrictionsSerializer(StrictSerializer):
    start_time = serializers.RegexField(TIME_OF_DAY, required=False, allow_null=True, help_text="HH:MM local time.")
    end_time = serializers.RegexField(
        TIME_OF_DAY,
        required=False,
        allow_null=True,
        help_text="HH:MM local time; before start_time wraps; 00:00 ends the day.",
    )
    start_date = OcpiDateField(help_text="YYYY-MM-DD local, inclusive.")
    end_date = OcpiDateField(help_text="YYYY-MM-DD local, exclusive.")
    min_kwh = _optional_number()
    max_kwh = _optional_number()
    min_current = _optional_number()
    max_current = _optional_number()
    min_power = _optional_number()
    max_power = _optional_number()
    min_duration = serializers.IntegerField(min_value=0, required=False, allow_null=True, help_text="Seconds.")
    max_duration = serializers.IntegerField(min_value=0, required=False, allow_null=True, help_text="Seconds.")
    day_of_week = serializers.ListField(
        child=serializers.ChoiceField(choices=[d.value for d in DayOfWeek]), required=False, allow_empty=True
    )
    reservation = serializers.ChoiceField(
        choices=[r.value for r in ReservationRestrictionType], required=False, allow_null=True
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = {}
        for low, high in (
            ("min_kwh", "max_kwh"),
            ("min_current", "max_current"),
            ("min_power", "max_power"),
            ("min_duration", "max_duration"),
            ("start_date", "end_date"),
        ):
            a, b = attrs.get(low), attrs.get(high)
            if a is not None and b is not None and a > b:
                errors[high] = [f"Must not be less than {low}."]
        days = attrs.get("day_of_week") or []
        if len(set(days)) != len(days):
            errors["day_of_week"] = ["Each day at most once."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class TariffElementSerializer(StrictSerializer):
    price_components = PriceComponentSerializer(many=True, allow_empty=False)
    restrictions = TariffRestrictionsSerializer(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        restrictions = attrs.get("restrictions") or {}
        if restrictions.get("reservation"):
            wrong = sorted({c["type"] for c in attrs["price_components"]} - RESERVATION_DIMENSIONS)
            if wrong:
                raise serializers.ValidationError(
                    {
                        "price_components": [
                            f"A reservation element can only price FLAT and TIME, not {', '.join(wrong)}."
                        ]
                    }
                )
        return attrs


class DisplayTextSerializer(StrictSerializer):
    language = serializers.RegexField(r"^[A-Za-z]{2}$", help_text="ISO 639-1 language code.")
    text = serializers.CharField(max_length=512)


class PriceSerializer(StrictSerializer):
    excl_vat = _money()
    incl_vat = _money(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        incl = attrs.get("incl_vat")
        if incl is not None and incl < attrs["excl_vat"]:
            raise serializers.ValidationError({"incl_vat": ["Must not be less than excl_vat."]})
        return attrs


class EnergySourceSerializer(StrictSerializer):
    source = serializers.ChoiceField(choices=ENERGY_SOURCES)  # type: ignore[assignment]
    percentage = _number(max_digits=7, max_value=Decimal(100))


class EnvironmentalImpactSerializer(StrictSerializer):
    category = serializers.ChoiceField(choices=ENVIRON_IMPACTS)
    amount = _number(help_text="g/kWh")


class EnergyMixSerializer(StrictSerializer):
    is_green_energy = serializers.BooleanField()
    energy_sources = EnergySourceSerializer(many=True, required=False)
    environ_impact = EnvironmentalImpactSerializer(many=True, required=False)
    supplier_name = serializers.CharField(max_length=64, required=False, allow_null=True)
    energy_product_name = serializers.CharField(max_length=64, required=False, allow_null=True)


class CdrDimensionSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=[d.value for d in CdrDimensionType])
    volume = serializers.DecimalField(max_digits=30, decimal_places=12, coerce_to_string=False)


class ChargingPeriodSerializer(StrictSerializer):
    start_date_time = serializers.DateTimeField()
    dimensions = CdrDimensionSerializer(many=True)


# --------------------------------------------------------------------------- stored form


def plain(value: Any) -> Any:
    """Validated data -> stored JSON: Decimals as normalised strings, None and empty lists left out."""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, Mapping):
        return [m for key, value in detail.items() for m in _flatten(value, f"{prefix}.{key}" if prefix else str(key))]
    if isinstance(detail, list):
        if all(isinstance(x, str) for x in detail):
            return [f"{prefix}: {x}" if prefix else str(x) for x in detail]
        return [m for i, value in enumerate(detail) if value for m in _flatten(value, f"{prefix}[{i}]")]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def canonical(serializer_class: type[serializers.Serializer[Any]], data: Any, *, many: bool, name: str) -> Any:
    """Validate with a strict serializer; raise Django's ValidationError (readable paths) or return stored JSON."""
    serializer = serializer_class(data=data, many=many)  # type: ignore[call-arg]
    if not serializer.is_valid():
        raise DjangoValidationError({name: _flatten(serializer.errors, name)})
    return plain(serializer.validated_data)


def canonical_elements(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not data:
        raise DjangoValidationError({"elements": ["elements: a non-empty list of tariff elements is required."]})
    return canonical(TariffElementSerializer, data, many=True, name="elements")  # type: ignore[no-any-return]


def validate_elements(data: Any) -> None:
    """Model-field validator: the stored elements document must be a valid OCPI TariffElement list."""
    canonical_elements(data)


def validate_alt_text(data: Any) -> None:
    if not isinstance(data, list):
        raise DjangoValidationError({"tariff_alt_text": ["tariff_alt_text: a list of DisplayText is required."]})
    canonical(DisplayTextSerializer, data, many=True, name="tariff_alt_text")


def validate_energy_mix(data: Any) -> None:
    if data is not None:
        canonical(EnergyMixSerializer, data, many=False, name="energy_mix")
