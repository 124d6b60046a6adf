from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.sessions.models import Cdr, ChargingSession, Reservation, SessionEvent, TransactionAnomaly
from apps.tenants.scoping import TenantScopedAdmin


class SessionEventInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SessionEvent
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "reason", "detail", "at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChargingSession)
class ChargingSessionAdmin(TenantScopedAdmin):
    list_display = [
        "id",
        "charge_point",
        "connector_id",
        "id_tag",
        "status",
        "started_at",
        "stopped_at",
        "energy_wh",
        "limit_reached",
        "limit_outcome",
        "cost_incl_vat",
        "suspicious",
    ]
    list_filter = ["status", "suspicious", "limit_reached", "limit_outcome", "tenant"]
    inlines = [SessionEventInline]
    search_fields = ["=id", "id_tag", "charge_point__identity"]
    list_select_related = ["charge_point"]
    readonly_fields = [f.name for f in ChargingSession._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


@admin.register(TransactionAnomaly)
class TransactionAnomalyAdmin(TenantScopedAdmin):
    list_display = ["at", "charge_point", "kind", "transaction_id", "detail"]
    list_filter = ["kind", "tenant"]
    search_fields = ["charge_point__identity", "=transaction_id"]
    readonly_fields = [f.name for f in TransactionAnomaly._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(TenantScopedAdmin):
    list_display = ["id", "charge_point", "connector_id", "driver", "id_tag", "starts_at", "expires_at", "status"]
    list_filter = ["status", "tenant"]
    search_fields = ["=id", "id_tag", "charge_point__identity"]
    list_select_related = ["charge_point", "driver"]
    readonly_fields = [f.name for f in Reservation._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # reservations go through the API (ReserveNow must reach the charger)


@admin.register(Cdr)
class CdrAdmin(TenantScopedAdmin):
    list_display = ["ocpi_id", "session", "start_date_time", "end_date_time", "energy_wh", "currency", "total_cost"]
    list_filter = ["tenant"]
    search_fields = ["ocpi_id", "=session__id"]
    readonly_fields = [f.name for f in Cdr._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
