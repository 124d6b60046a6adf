from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.tenants.models import ApiKey, Invitation, Membership, Role, Tenant
from apps.tenants.scopes import SCOPE_AREAS, validate_scope
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
            "language",
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


PASSWORD_REFUSED = (
    "Passwords belong to the person: they choose theirs when accepting an invitation and change it themselves. "
    "Tenants never set one."
)
PERSON_FIELD_REFUSED = (
    "Part of the person's own account, which tenants cannot change (the person may work for other tenants too): "
    "only the person, the identity provider or the platform operator change it."
)


class StaffUserSerializer(TenantOwnedSerializer):
    """A person's membership in one tenant, with their account's public fields (read-only) flattened in.

    Writable: `role` and `is_active` (access to this tenant). A password, or a changed username, e-mail or name, is
    refused with a 400 naming the field, never ignored."""

    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    first_name = serializers.CharField(source="user.first_name", read_only=True)
    last_name = serializers.CharField(source="user.last_name", read_only=True)
    is_active = serializers.BooleanField(
        required=False, help_text="Access to this tenant. Off suspends it here only, not in the person's other tenants."
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
            "source",
            "created_at",
        ]
        read_only_fields = ["id", "source", "created_at"]

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, list[str]] = {}
            if "password" in data:
                errors["password"] = [PASSWORD_REFUSED]
            user = self.instance.user if isinstance(self.instance, Membership) else None
            for name in ("username", "email", "first_name", "last_name"):
                if name in data and (user is None or data[name] != getattr(user, name)):
                    errors[name] = [PERSON_FIELD_REFUSED]
            if errors:
                raise serializers.ValidationError(errors)
            data = {k: v for k, v in data.items() if k not in ("username", "email", "first_name", "last_name")}
        return super().to_internal_value(data)


class InvitationSerializer(TenantOwnedSerializer):
    """An invitation of an e-mail address to a role. The answer is the same whoever the address belongs to."""

    status = serializers.ChoiceField(
        choices=["pending", "accepted", "revoked", "expired"], read_only=True, help_text="Derived from the dates."
    )
    invited_by = serializers.SerializerMethodField(help_text="The staff user or API key that invited.")

    class Meta:
        model = Invitation
        fields = [
            "id",
            "tenant",
            "email",
            "role",
            "status",
            "expires_at",
            "sent_at",
            "invited_by",
            "accepted_at",
            "revoked_at",
            "created_at",
        ]
        read_only_fields = ["id", "expires_at", "sent_at", "accepted_at", "revoked_at", "created_at"]
        validators: list[Any] = []  # one open invitation per address: the service answers 409
        # the role is a decision the inviter makes: required, never a silent default (POST without it was a 500)
        extra_kwargs = {"role": {"required": True}}

    def get_invited_by(self, invitation: Invitation) -> str | None:
        if invitation.invited_by_key is not None:
            return f"api-key:{invitation.invited_by_key.prefix}"
        return invitation.invited_by.get_username() if invitation.invited_by is not None else None

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors: dict[str, list[str]] = {}
            if "password" in data:
                errors["password"] = [PASSWORD_REFUSED]
            for name in ("username", "user", "first_name", "last_name"):
                if name in data:
                    errors[name] = [
                        "Invitations name an e-mail address only; the person picks their account when accepting."
                    ]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class EmptySerializer(StrictSerializer):
    """No body (or `{}`): anything else is refused."""


class InvitationAcceptSerializer(StrictSerializer):
    token = serializers.CharField(max_length=200, help_text="The token from the invitation link.")
    password = serializers.CharField(
        required=False,
        max_length=128,
        write_only=True,
        help_text="Only when not logged in: creates your account (login: the invited e-mail address) with this "
        "password. Logged in, leave it out to accept with your account; sending one is refused.",
    )
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)


class InvitationAcceptedSerializer(serializers.Serializer[Membership]):
    membership = serializers.IntegerField(source="pk", help_text="Your membership (staff user) id in the tenant.")
    tenant = serializers.IntegerField(source="tenant_id")
    tenant_name = serializers.CharField(source="tenant.name")
    role = serializers.ChoiceField(choices=Role.choices)
    username = serializers.CharField(source="user.username", help_text="Your login.")


class ApiKeySerializer(TenantOwnedSerializer):
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=40, validators=[validate_scope]),
        allow_empty=False,
        max_length=len(SCOPE_AREAS) * 2 + 1,
        help_text="'*' or '<area>:read' / '<area>:write' ('write' includes 'read'), e.g. 'stations:read'. Areas: "
        + ", ".join(SCOPE_AREAS)
        + ". A key creating or changing keys cannot grant scopes it does not hold.",
    )

    class Meta:
        model = ApiKey
        fields = ["id", "tenant", "name", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at", "created_at"]
        read_only_fields = ["id", "prefix", "revoked_at", "last_used_at", "created_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The secret. Shown only in this response; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
