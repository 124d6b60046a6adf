from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer
from apps.tenants.models import ApiKey, Membership, Role, Tenant, scope_validator
from apps.tenants.scoping import TenantOwnedSerializer


class TenantSerializer(StrictModelSerializer):
    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "is_active",
            "logo",
            "primary_colour",
            "secondary_colour",
            "sender_email",
            "legal_name",
            "address_line",
            "postal_code",
            "city",
            "country",
            "vat_id",
            "bank_name",
            "iban",
            "bic",
            "currency",
            "timezone",
            "default_vat_rate",
            "parking_grace_minutes",
            "ocpi_country_code",
            "ocpi_party_id",
            "oicp_operator_id",
            "oicp_provider_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "logo", "created_at", "updated_at"]


class StaffUserSerializer(TenantOwnedSerializer):
    """A staff user's role in one tenant, with the user's own fields flattened in."""

    username = serializers.CharField(source="user.username", max_length=150)
    email = serializers.EmailField(source="user.email", required=False, allow_blank=True)
    first_name = serializers.CharField(source="user.first_name", required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(source="user.last_name", required=False, allow_blank=True, max_length=150)
    is_active = serializers.BooleanField(source="user.is_active", required=False)
    password = serializers.CharField(
        write_only=True,
        required=False,
        min_length=10,
        max_length=128,
        help_text="Only on creation; optional (OIDC users need none).",
    )
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = [
            "id",
            "tenant",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "role",
            "password",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def validate_username(self, value: str) -> str:
        if self.instance is not None and value != self.instance.user.username:
            raise serializers.ValidationError("The username cannot be changed.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "password" in attrs:
            raise serializers.ValidationError(
                {"password": ["Set passwords through the admin or the identity provider."]}
            )
        return attrs


class ApiKeySerializer(TenantOwnedSerializer):
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=40, validators=[scope_validator]),
        allow_empty=False,
        help_text="'*' or '<area>:read' / '<area>:write', e.g. 'stations:read'.",
    )

    class Meta:
        model = ApiKey
        fields = ["id", "tenant", "name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at"]
        read_only_fields = ["id", "prefix", "revoked_at", "last_used_at", "created_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown only in this response; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
