from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.sessions.models import ChargingSession, TransactionAnomaly
from apps.tenants.scoping import TenantScopedAdmin


@admin.register(ChargingSession)
class ChargingSessionAdmin(TenantScopedAdmin):
    list_display = ["id", "charge_point", "connector_id", "id_tag", "status", "started_at", "stopped_at", "energy_wh"]
    list_filter = ["status", "tenant"]
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
