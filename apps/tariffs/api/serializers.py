"""API shapes. A tariff is the OCPI 2.2.1 Tariff object plus our `id` (primary key) and `tenant`.

Because our API's `id` is the primary key, the OCPI `id` travels as `ocpi_id`; a request body may still carry
it as a string `id`, as OCPI documents do, so an OCPI Tariff can be POSTed as it is. `country_code` and
`party_id` come from the tenant (read-only), `last_updated` is the time of our last change.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.customers.models import BusinessCustomer
from apps.stations.models import ChargePoint, Evse, Location
from apps.tariffs.models import ContractPriceList, RoamingRetailRule, Tariff, TariffAssignment, TariffType
from apps.tariffs.ocpi import (
    DisplayTextSerializer,
    EnergyMixSerializer,
    PriceSerializer,
    TariffElementSerializer,
)
from apps.tariffs.pricing import CostGroup
from apps.tenants.models import validate_timezone
from apps.tenants.scoping import ScopedRelatedField, TenantOwnedSerializer

OCPI_ID = r"^[!-~]{1,36}$"  # CiString(36): printable ASCII


class TariffSerializer(TenantOwnedSerializer):
    ocpi_id = serializers.RegexField(
        OCPI_ID,
        required=False,
        help_text="OCPI Tariff.id (also accepted as a string `id` in the body); generated when omitted.",
    )
    country_code = serializers.CharField(source="tenant.ocpi_country_code", read_only=True)
    party_id = serializers.CharField(source="tenant.ocpi_party_id", read_only=True)
    currency = serializers.RegexField(r"^[A-Z]{3}$", help_text="ISO 4217, e.g. EUR.")
    type = serializers.ChoiceField(
        choices=TariffType.choices, required=False, allow_null=True, help_text="Omitted: valid for all sessions."
    )
    tariff_alt_text = DisplayTextSerializer(many=True, required=False)
    tariff_alt_url = serializers.URLField(required=False, allow_null=True, max_length=255)
    min_price = PriceSerializer(required=False, allow_null=True)
    max_price = PriceSerializer(required=False, allow_null=True)
    elements = TariffElementSerializer(many=True, allow_empty=False)
    energy_mix = EnergyMixSerializer(required=False, allow_null=True)
    parking_grace_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=24 * 60,
        help_text="Not OCPI: minutes of every idle stretch (the car connected but not drawing) before PARKING_TIME "
        "is billed; null: the tenant's `parking_grace_minutes`. Not sent to roaming partners.",
    )
    last_updated = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Tariff
        fields = [
            "id",
            "tenant",
            "ocpi_id",
            "country_code",
            "party_id",
            "currency",
            "type",
            "tariff_alt_text",
            "tariff_alt_url",
            "min_price",
            "max_price",
            "elements",
            "start_date_time",
            "end_date_time",
            "energy_mix",
            "parking_grace_minutes",
            "last_updated",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        validators: list[Any] = []  # uniqueness per tenant is checked by the service, once the tenant is known

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and "id" in data:
            data = dict(data.items())
            ocpi_id = data.pop("id")
            if isinstance(ocpi_id, str):
                if "ocpi_id" in data:
                    raise serializers.ValidationError({"id": ["Give the OCPI id as `id` or as `ocpi_id`, not both."]})
                data["ocpi_id"] = ocpi_id
            elif not isinstance(ocpi_id, int) or isinstance(ocpi_id, bool):
                raise serializers.ValidationError({"id": ["The OCPI id is a string."]})
        return super().to_internal_value(data)

    def to_representation(self, instance: Tariff) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        data["type"] = data["type"] or None
        data["tariff_alt_url"] = data["tariff_alt_url"] or None
        for name in ("elements", "min_price", "max_price", "energy_mix"):
            data[name] = _without_nulls(data[name])
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start = attrs.get("start_date_time", getattr(self.instance, "start_date_time", None))
        end = attrs.get("end_date_time", getattr(self.instance, "end_date_time", None))
        if start and end and end <= start:
            raise serializers.ValidationError({"end_date_time": ["Must be after start_date_time."]})
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low and high and low["excl_vat"] > high["excl_vat"]:
            raise serializers.ValidationError({"max_price": ["Must not be less than min_price."]})
        return attrs


def _without_nulls(value: Any) -> Any:
    """OCPI leaves optional fields out rather than sending null."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _scoped(queryset: Any, **kwargs: Any) -> ScopedRelatedField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    return ScopedRelatedField(queryset=queryset, **kwargs)


class TariffAssignmentSerializer(TenantOwnedSerializer):
    tariff = ScopedRelatedField(queryset=Tariff.objects.all())
    location = _scoped(Location.objects.all())
    charge_point = _scoped(ChargePoint.objects.all())
    evse = _scoped(Evse.objects.all())
    level = serializers.SerializerMethodField(help_text="evse, charge_point, location or tenant (lower wins).")

    class Meta:
        model = TariffAssignment
        fields = [
            "id",
            "tenant",
            "tariff",
            "location",
            "charge_point",
            "evse",
            "level",
            "ad_hoc",
            "valid_from",
            "valid_until",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_level(self, obj: TariffAssignment) -> str:
        return ("evse", "charge_point", "location", "tenant")[obj.level]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        targets = [name for name in ("location", "charge_point", "evse") if attrs.get(name) is not None]
        if len(targets) > 1:
            raise serializers.ValidationError(
                {name: ["Assign to one of EVSE, charge point or location."] for name in targets}
            )
        return attrs


class ContractPriceListSerializer(TenantOwnedSerializer):
    business_customer = ScopedRelatedField(queryset=BusinessCustomer.objects.all())
    currency = serializers.RegexField(r"^[A-Z]{3}$", help_text="ISO 4217, e.g. EUR.")

    class Meta:
        model = ContractPriceList
        fields = [
            "id",
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
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []  # uniqueness is checked by the service (full_clean)


# --------------------------------------------------------------------------- quotes

MAX_QUOTE_MINUTES = 7 * 24 * 60


class QuoteRequestSerializer(StrictSerializer):
    """A hypothetical session. Give `stop` or `duration_minutes`."""

    start = serializers.DateTimeField()
    stop = serializers.DateTimeField(required=False)
    duration_minutes = serializers.IntegerField(min_value=1, max_value=MAX_QUOTE_MINUTES, required=False)
    energy_kwh = serializers.DecimalField(
        max_digits=10, decimal_places=4, min_value=Decimal(0), max_value=Decimal(10000)
    )
    max_power_kw = serializers.DecimalField(
        max_digits=8,
        decimal_places=3,
        min_value=Decimal("0.1"),
        max_value=Decimal(2000),
        required=False,
        help_text="Charging at this power until the energy is in; the rest of the session is parking.",
    )
    parking_minutes = serializers.IntegerField(
        min_value=0, max_value=MAX_QUOTE_MINUTES, required=False, help_text="Parked at the end, without power limit."
    )
    time_zone = serializers.CharField(
        required=False, max_length=64, help_text="The charger's IANA time zone; default: the tenant's."
    )
    vat_rate = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=Decimal(100),
        required=False,
        help_text="For components without VAT; default: the tenant's rate.",
    )
    price_list = ScopedRelatedField(
        queryset=ContractPriceList.objects.all(),
        required=False,
        help_text="Price as this business customer's contract would.",
    )

    def validate_time_zone(self, value: str) -> str:
        try:
            validate_timezone(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        zoneinfo.ZoneInfo(value)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_stop, has_duration = "stop" in attrs, "duration_minutes" in attrs
        if has_stop == has_duration:
            raise serializers.ValidationError({"stop": ["Give either stop or duration_minutes."]})
        if has_stop:
            seconds = (attrs["stop"] - attrs["start"]).total_seconds()
            if seconds <= 0:
                raise serializers.ValidationError({"stop": ["Must be after start."]})
            if seconds > MAX_QUOTE_MINUTES * 60:
                raise serializers.ValidationError({"stop": ["A quote covers at most 7 days."]})
        return attrs


class MoneyPairSerializer(serializers.Serializer[Any]):
    excl_vat = serializers.DecimalField(max_digits=14, decimal_places=2)
    incl_vat = serializers.DecimalField(max_digits=14, decimal_places=2)


class CostLineSerializer(serializers.Serializer[Any]):
    group = serializers.ChoiceField(choices=[g.value for g in CostGroup])
    dimension = serializers.CharField(allow_null=True)
    element_index = serializers.IntegerField(allow_null=True, help_text="Position in the tariff's elements.")
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=16, decimal_places=4)
    vat = serializers.DecimalField(max_digits=7, decimal_places=4)
    step_size = serializers.IntegerField()
    unit = serializers.CharField(help_text="Unit of volume and billed_volume: Wh, s, or empty (per session).")
    volume = serializers.DecimalField(max_digits=20, decimal_places=6)
    billed_volume = serializers.DecimalField(max_digits=20, decimal_places=6)
    excl_vat = serializers.DecimalField(max_digits=14, decimal_places=2)
    incl_vat = serializers.DecimalField(max_digits=14, decimal_places=2)


class QuoteDimensionSerializer(serializers.Serializer[Any]):
    type = serializers.CharField()
    volume = serializers.DecimalField(max_digits=20, decimal_places=6, coerce_to_string=False)


class QuotePeriodSerializer(serializers.Serializer[Any]):
    start_date_time = serializers.DateTimeField()
    dimensions = QuoteDimensionSerializer(many=True)


class QuoteSerializer(serializers.Serializer[Any]):
    """The price of the hypothetical session, line by line; amounts are decimal strings."""

    tariff = serializers.IntegerField()
    currency = serializers.CharField()
    total_excl_vat = serializers.DecimalField(max_digits=14, decimal_places=2)
    total_incl_vat = serializers.DecimalField(max_digits=14, decimal_places=2)
    total_energy = serializers.DecimalField(max_digits=14, decimal_places=4, help_text="kWh")
    total_time = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="hours")
    total_charging_time = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="hours")
    total_parking_time = serializers.DecimalField(max_digits=14, decimal_places=6, help_text="hours")
    by_dimension = serializers.DictField(child=MoneyPairSerializer(), help_text="OCPI CDR cost groups.")
    lines = CostLineSerializer(many=True)
    charging_periods = QuotePeriodSerializer(many=True, help_text="OCPI ChargingPeriods of the session.")


# --------------------------------------------------------------------------- roaming retail rules (eMSP search slice)

# The partner model without importing the roaming app (a layer above): the rule's own foreign key names it.
_RoamingPartner: Any = RoamingRetailRule._meta.get_field("partner").related_model


class RoamingRetailRuleSerializer(TenantOwnedSerializer):
    """What our drivers pay on a roaming partner's EVSEs: the CPO's price (pass-through), plus a mark-up in percent,
    or a fixed price per kWh; `vat_rate` is the VAT our tenant charges its driver on it."""

    partner = ScopedRelatedField(queryset=_RoamingPartner.objects.all())
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, allow_blank=True, help_text="ISO 4217 of a fixed price; blank: the CPO's."
    )

    class Meta:
        model = RoamingRetailRule
        fields = [
            "id",
            "tenant",
            "partner",
            "mode",
            "markup_percent",
            "price_per_kwh_excl_vat",
            "vat_rate",
            "currency",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []  # one rule per partner: checked by the service (full_clean)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        partner = attrs.get("partner")
        tenant = attrs.get("tenant") or (self.instance.tenant if self.instance is not None else None)
        if partner is not None and tenant is not None and partner.tenant_id != tenant.pk:
            raise serializers.ValidationError({"partner": ["Belongs to another tenant."]})
        return attrs
