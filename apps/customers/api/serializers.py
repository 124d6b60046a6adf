from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.customers.models import BusinessCustomer, ConnectorStandard, Contract, Driver, Token, Vehicle
from apps.tenants.scoping import ScopedRelatedField, TenantField, TenantOwnedSerializer


def _scoped(queryset: Any, **kwargs: Any) -> ScopedRelatedField:
    kwargs.setdefault("required", False)
    kwargs.setdefault("allow_null", True)
    return ScopedRelatedField(queryset=queryset, **kwargs)


class BusinessCustomerSerializer(TenantOwnedSerializer):
    class Meta:
        model = BusinessCustomer
        fields = [
            "id",
            "tenant",
            "name",
            "legal_name",
            "vat_id",
            "registration_number",
            "billing_email",
            "language",
            "billing_address_line",
            "billing_postal_code",
            "billing_city",
            "billing_country",
            "payment_method",
            "payment_reference",
            "is_active",
            "credit_blocked",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []  # uniqueness per tenant is checked by the service, once the tenant is known


class DriverSerializer(TenantOwnedSerializer):
    business_customer = _scoped(BusinessCustomer.objects.all())

    class Meta:
        model = Driver
        fields = [
            "id",
            "tenant",
            "first_name",
            "last_name",
            "email",
            "phone",
            "language",
            "address_line",
            "postal_code",
            "city",
            "country",
            "is_active",
            "credit_blocked",
            "business_customer",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []


# stations.Location, reached through the string relation (customers and stations do not import each other)
_Location = Contract._meta.get_field("allowed_locations").related_model


class ContractSerializer(TenantOwnedSerializer):
    business_customer = ScopedRelatedField(queryset=BusinessCustomer.objects.all())
    allowed_locations = ScopedRelatedField(
        queryset=_Location._default_manager.all(),  # type: ignore[union-attr]
        many=True,
        required=False,
        help_text="Location ids where the contract's tokens may charge; empty means every location.",
    )

    class Meta:
        model = Contract
        fields = [
            "id",
            "tenant",
            "business_customer",
            "number",
            "valid_from",
            "valid_until",
            "priority",
            "max_session_duration",
            "max_session_energy_wh",
            "limit_action",
            "allowed_locations",
            "time_windows",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []


class TokenSerializer(TenantOwnedSerializer):
    driver = _scoped(Driver.objects.all())
    business_customer = _scoped(BusinessCustomer.objects.all())
    business_contract = _scoped(
        Contract.objects.all(), help_text="The business customer's contract; sets business_customer when omitted."
    )

    class Meta:
        model = Token
        fields = [
            "id",
            "tenant",
            "uid",
            "wire_id",
            "type",
            "contract_id",
            "visual_number",
            "issuer",
            "group_id",
            "valid",
            "whitelist",
            "language",
            "default_profile_type",
            "energy_contract_supplier_name",
            "energy_contract_id",
            "country_code",
            "party_id",
            "source",
            "driver",
            "business_customer",
            "business_contract",
            "expires_at",
            "blocked",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "wire_id", "source", "created_at", "updated_at"]
        validators: list[Any] = []


class VehicleSerializer(TenantOwnedSerializer):
    driver = _scoped(Driver.objects.all())
    business_customer = _scoped(BusinessCustomer.objects.all())
    connector_types = serializers.ListField(
        child=serializers.ChoiceField(choices=ConnectorStandard.choices),
        required=False,
        help_text="OCPI connector standards the vehicle accepts.",
    )

    class Meta:
        model = Vehicle
        fields = [
            "id",
            "tenant",
            "driver",
            "business_customer",
            "make",
            "model",
            "battery_kwh",
            "ac_phases",
            "ac_max_current_a",
            "dc_max_power_w",
            "connector_types",
            "licence_plate",
            "vin",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []


@extend_schema_field(OpenApiTypes.INT)
class _ImportTenantField(TenantField):
    """The owning tenant (typed for the schema: this serializer has no model to derive it from)."""


class TokenImportSerializer(StrictSerializer):
    tenant = _ImportTenantField()
    file = serializers.FileField(
        help_text="UTF-8 CSV with a header line; only `uid` is required. Columns: see the token import docs."
    )


class RowErrorSerializer(serializers.Serializer[Any]):
    line = serializers.IntegerField(help_text="Line of the file where the row starts; the header is line 1.")
    uid = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())


class ImportReportSerializer(serializers.Serializer[Any]):
    rows = serializers.IntegerField(help_text="Data rows read.")
    created = serializers.IntegerField(help_text="Tokens imported.")
    failed = serializers.IntegerField(help_text="Rows refused; each is listed in errors.")
    errors = RowErrorSerializer(many=True)  # type: ignore[assignment]
