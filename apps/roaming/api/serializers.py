from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.roaming.models import RoamingPartner
from apps.tariffs.models import Tariff
from apps.tenants.scoping import ScopedRelatedField, TenantOwnedSerializer

READ_ONLY = [
    "id",
    "credentials_roles",
    "version",
    "endpoints",
    "their_token_masked",
    "their_token_kind",
    "our_token_hint",
    "our_token_kind",
    "status",
    "last_handshake_at",
    "last_errors",
    "created_at",
    "updated_at",
]


class RoamingPartnerSerializer(TenantOwnedSerializer):
    """A roaming partner. `their_token` is write-only (shown masked as `their_token_masked`); our token is never
    shown after it was issued (`our_token_hint`: its first characters)."""

    their_token = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="The CREDENTIALS_TOKEN_A they gave us, to register with them (write-only).",
    )
    their_token_masked = serializers.CharField(read_only=True)
    our_country_code = serializers.CharField(
        max_length=2, required=False, help_text="Our party's country code; defaults to the tenant's OCPI identity."
    )
    our_party_id = serializers.CharField(
        max_length=3, required=False, help_text="Our party id; defaults to the tenant's OCPI identity."
    )
    tariffs = ScopedRelatedField(
        queryset=Tariff.objects.all(),
        many=True,
        required=False,
        help_text="Ids of the tenant's tariffs this partner sees (OCPI tariffs module); empty: the tenant's public "
        "tariffs (those assigned to the network). A change is pushed: PUT of each tariff it now sees, DELETE of each "
        "it no longer sees.",
    )

    class Meta:
        model = RoamingPartner
        fields = [
            "id",
            "tenant",
            "name",
            "our_country_code",
            "our_party_id",
            "our_roles",
            "country_code",
            "party_id",
            "roles",
            "credentials_roles",
            "versions_url",
            "version",
            "endpoints",
            "token_style",
            "their_token",
            "their_token_masked",
            "their_token_kind",
            "our_token_hint",
            "our_token_kind",
            "enabled_modules",
            "tariffs",
            "status",
            "last_handshake_at",
            "last_errors",
            "created_at",
            "updated_at",
        ]
        read_only_fields = READ_ONLY
        validators: list[Any] = []  # the service answers a duplicate party with a 409 naming it

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("our_roles", "roles", "enabled_modules"):
            if name in attrs and len(set(attrs[name])) != len(attrs[name]):
                raise serializers.ValidationError({name: ["Each value at most once."]})
        return attrs


class RoamingPartnerCreatedSerializer(RoamingPartnerSerializer):
    token_a = serializers.CharField(
        read_only=True,
        help_text="CREDENTIALS_TOKEN_A for the partner to register with us, shown this once: give it to them "
        "out of band with our versions URL.",
    )

    class Meta(RoamingPartnerSerializer.Meta):
        fields = [*RoamingPartnerSerializer.Meta.fields, "token_a"]
        read_only_fields = [*READ_ONLY, "token_a"]


class TokenASerializer(StrictSerializer):
    token_a = serializers.CharField(read_only=True, help_text="The new CREDENTIALS_TOKEN_A, shown this once.")


class EmptySerializer(StrictSerializer):
    pass


class ResyncSerializer(StrictSerializer):
    queued = serializers.IntegerField(read_only=True, help_text="Objects queued for a push (locations, tariffs).")


class PullSerializer(StrictSerializer):
    modules = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The modules being pulled from the partner's Senders."
    )
