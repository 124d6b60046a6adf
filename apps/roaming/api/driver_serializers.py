"""Driver API on partner EVSEs (eMSP commands): input and the partner session as the driver app sees it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.customers.models import Driver
from apps.roaming.models import EmspCommand, RoamingPartner
from apps.sessions.models import PartnerSession
from apps.tenants.scoping import ScopedRelatedField


class PartnerEvseTargetSerializer(StrictSerializer):
    """Which partner EVSE: its eMI3 EVSE id (as printed or in the QR code), or the partner, its Location.id and
    EVSE.uid (as the station search lists them)."""

    driver = ScopedRelatedField(queryset=Driver.objects.all())
    evse_id = serializers.CharField(
        required=False,
        max_length=255,
        help_text="The EVSE id (eMI3, e.g. NL*ABC*E123*1) or the QR code's payload (a URL ending in it).",
    )
    partner = ScopedRelatedField(
        queryset=RoamingPartner.objects.all(), required=False, help_text="With location_id and evse_uid."
    )
    location_id = serializers.CharField(required=False, max_length=36, help_text="The CPO's Location.id.")
    evse_uid = serializers.CharField(required=False, max_length=36, help_text="The CPO's EVSE.uid.")
    token_uid = serializers.CharField(
        required=False, max_length=36, help_text="Which of the driver's tokens; default: their first usable one."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        by_uid = [name for name in ("partner", "location_id", "evse_uid") if attrs.get(name) not in (None, "")]
        if attrs.get("evse_id"):
            if by_uid:
                raise serializers.ValidationError({by_uid[0]: ["Give evse_id, or partner, location_id and evse_uid."]})
        elif len(by_uid) != 3:
            names = ("partner", "location_id", "evse_uid") if by_uid else ("evse_id",)
            missing = next(n for n in names if n not in by_uid)
            raise serializers.ValidationError({missing: ["Give evse_id, or partner, location_id and evse_uid."]})
        return attrs


class PartnerSessionStartSerializer(PartnerEvseTargetSerializer):
    connector_id = serializers.CharField(
        required=False, max_length=36, help_text="The CPO's Connector.id; default: the EVSE's only connector."
    )


class PartnerReservationCreateSerializer(PartnerEvseTargetSerializer):
    expires_at = serializers.DateTimeField(help_text="Until when the EVSE is held (in the future).")


class EmspCommandSerializer(StrictModelSerializer):
    class Meta:
        model = EmspCommand
        fields = ["uid", "command", "state", "result", "message", "created_at", "updated_at"]
        read_only_fields = fields


class PartnerSessionSerializer(StrictModelSerializer):
    """Our driver's session (or reservation) on a partner EVSE, live: `state` follows our commands and then the
    CPO's session updates (kWh, cost, status); `state_reason` is the last command's outcome or the CPO's message.
    Amounts are the CPO's, in `currency` (decimal strings)."""

    token_uid = serializers.CharField(source="token.uid", read_only=True, allow_null=True, default=None)
    kwh = serializers.DecimalField(max_digits=14, decimal_places=4, coerce_to_string=False, read_only=True)
    commands = EmspCommandSerializer(many=True, read_only=True, help_text="The commands sent, newest first.")

    class Meta:
        model = PartnerSession
        fields = [
            "id",
            "tenant",
            "partner",
            "country_code",
            "party_id",
            "state",
            "state_reason",
            "driver",
            "token",
            "token_uid",
            "business_customer",
            "contract",
            "location",
            "location_ocpi_id",
            "evse_uid",
            "connector_id",
            "ocpi_id",
            "authorization_reference",
            "reservation_expires_at",
            "start_date_time",
            "end_date_time",
            "kwh",
            "currency",
            "total_cost_excl_vat",
            "total_cost_incl_vat",
            "last_updated",
            "created_at",
            "updated_at",
            "commands",
        ]
        read_only_fields = fields
