"""What roaming partners sent us, in the ops console, read-only (the data is the partner's: it changes only through
their OCPI calls): the commands (START_SESSION ... and charging profiles) with the OCPP command each became and the
result we posted back, the tokens each eMSP pushed, and their reservations with the one our charger got. Scoped to
the staff user's tenants through the partner."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.roaming.models import EmspAuthorization, PartnerReservation, PartnerToken, RoamingCommand
from apps.tenants.scoping import TenantScopedAdmin


class _PartnersData(TenantScopedAdmin):
    tenant_field = "partner__tenant"

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RoamingCommand)
class RoamingCommandAdmin(_PartnersData):
    list_display = ["id", "command", "partner", "state", "charge_point", "session_id", "attempts", "created_at"]
    list_filter = ["state", "command", "module", "partner"]
    list_select_related = ["partner", "charge_point"]
    search_fields = ["command", "response_url", "last_error"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "partner",
        "module",
        "command",
        "request",
        "target",
        "response_url",
        "charge_point",
        "session_id",
        "ocpp_command_id",
        "timeout_s",
        "state",
        "result",
        "attempts",
        "last_error",
        "created_at",
        "updated_at",
    ]


@admin.register(PartnerToken)
class PartnerTokenAdmin(_PartnersData):
    list_display = ["uid", "issuer_party", "type", "whitelist", "valid", "partner", "last_updated"]
    list_filter = ["partner", "token__whitelist", "token__valid", "token__type"]
    list_select_related = ["partner", "token"]
    search_fields = ["token__uid", "token__contract_id", "token__visual_number"]
    readonly_fields = [
        "partner",
        "token",
        "uid",
        "issuer_party",
        "type",
        "contract_id",
        "whitelist",
        "valid",
        "last_updated",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="uid", ordering="token__uid")
    def uid(self, obj: PartnerToken) -> str:
        return obj.token.uid

    @admin.display(description=_("issuer party"))
    def issuer_party(self, obj: PartnerToken) -> str:
        return f"{obj.token.country_code}*{obj.token.party_id}"

    @admin.display(description=_("type"))
    def type(self, obj: PartnerToken) -> str:
        return obj.token.type

    @admin.display(description=_("contract id"))
    def contract_id(self, obj: PartnerToken) -> str:
        return obj.token.contract_id

    @admin.display(description="whitelist")
    def whitelist(self, obj: PartnerToken) -> str:
        return obj.token.whitelist

    @admin.display(description="valid", boolean=True)
    def valid(self, obj: PartnerToken) -> bool:
        return obj.token.valid


@admin.register(PartnerReservation)
class PartnerReservationAdmin(_PartnersData):
    list_display = ["their_reservation_id", "partner", "charge_point", "reservation", "created_at"]
    list_filter = ["partner"]
    list_select_related = ["partner", "charge_point", "reservation"]
    search_fields = ["their_reservation_id"]
    readonly_fields = ["partner", "their_reservation_id", "charge_point", "reservation", "created_at", "updated_at"]


# --------------------------------------------------------------------------- eMSP tokens Sender (slice "tokens")


@admin.register(EmspAuthorization)
class EmspAuthorizationAdmin(_PartnersData):
    """What CPO partners asked about our tokens in real time and what we answered; the reference is what their
    sessions and CDRs carry back."""

    list_display = ["created_at", "token", "partner", "allowed", "reason", "location_id", "authorization_reference"]
    list_filter = ["allowed", "reason", "partner"]
    list_select_related = ["partner", "token"]
    search_fields = ["token__uid", "authorization_reference", "location_id"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "partner",
        "token",
        "allowed",
        "reason",
        "authorization_reference",
        "location_id",
        "evse_uids",
        "created_at",
    ]
