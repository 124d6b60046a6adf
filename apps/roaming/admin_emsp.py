"""What CPO partners sent us as their eMSP, in the ops console, read-only (the data is the CPO's: it changes only
through its OCPI pushes or our pulls): partner locations with their EVSEs and connectors, partner tariffs, our
drivers' sessions on partner networks, the CDRs received, the parties behind a hub, and the pull state per module.
Scoped to the staff user's tenants."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.core import admin_display
from apps.roaming.models import HubClientInfo, PullState
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tariffs.models import PartnerTariff
from apps.tenants.scoping import TenantScopedAdmin


class _ReadOnly:
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class _ReceivedData(_ReadOnly, TenantScopedAdmin):
    pass


class PartnerEvseInline(_ReadOnly, admin.TabularInline):  # type: ignore[type-arg]
    model = PartnerEvse
    fields = ("uid", "evse_id", "status", "capabilities", "physical_reference", "connectors_summary", "last_updated")
    readonly_fields = (
        "uid",
        "evse_id",
        "status",
        "capabilities",
        "physical_reference",
        "connectors_summary",
        "last_updated",
    )
    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Shown on its location's page, which is scoped to the staff user's tenants (TenantScopedAdmin)."""
        return obj is None or isinstance(obj, PartnerLocation)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("connectors")

    @admin.display(description=_("connectors"))
    def connectors_summary(self, obj: PartnerEvse) -> str:
        return "; ".join(
            f"{c.connector_id}: {c.standard} {c.format} {c.power_type} {c.max_electric_power or ''} "
            f"{'/'.join(c.tariff_ids)}".strip()
            for c in obj.connectors.all()
        )


@admin.register(PartnerLocation)
class PartnerLocationAdmin(_ReceivedData):
    list_display = [
        "name",
        "party",
        "ocpi_id",
        "city",
        "country",
        "operator_name",
        "partner",
        "publish",
        "last_updated",
    ]
    list_filter = ["partner", "country", "publish"]
    list_select_related = ["partner"]
    search_fields = ["name", "ocpi_id", "address", "city", "postal_code", "evses__evse_id"]
    date_hierarchy = "last_updated"
    inlines = [PartnerEvseInline]
    readonly_fields = [
        "partner",
        "country_code",
        "party_id",
        "ocpi_id",
        "publish",
        "name",
        "address",
        "city",
        "postal_code",
        "state",
        "country",
        "latitude",
        "longitude",
        "time_zone",
        "operator_name",
        "data",
        "last_updated",
        "created_at",
        "updated_at",
    ]

    @admin.display(description=_("party"), ordering="party_id")
    def party(self, obj: PartnerLocation) -> str:
        return f"{obj.country_code}*{obj.party_id}"


@admin.register(PartnerConnector)
class PartnerConnectorAdmin(_ReceivedData):
    """Connectors are listed with their EVSE on the location page; this list finds them by tariff or standard."""

    tenant_field = "evse__location__tenant"
    list_display = ["__str__", "location", "standard", "format", "power_type", "max_electric_power", "tariffs"]
    list_filter = ["standard", "power_type", "format"]
    list_select_related = ["evse__location"]
    search_fields = ["evse__evse_id", "evse__uid", "evse__location__ocpi_id"]
    readonly_fields = [
        "evse",
        "connector_id",
        "standard",
        "format",
        "power_type",
        "max_voltage",
        "max_amperage",
        "max_electric_power",
        "tariff_ids",
        "data",
        "last_updated",
    ]

    @admin.display(description=_("location"))
    def location(self, obj: PartnerConnector) -> str:
        return str(obj.evse.location)

    @admin.display(description=_("tariffs"))
    def tariffs(self, obj: PartnerConnector) -> str:
        return ", ".join(obj.tariff_ids)


@admin.register(PartnerTariff)
class PartnerTariffAdmin(_ReceivedData):
    list_display = ["ocpi_id", "country_code", "party_id", "currency", "partner", "last_updated"]
    list_filter = ["partner", "currency"]
    list_select_related = ["partner"]
    search_fields = ["ocpi_id"]
    readonly_fields = ["partner", "country_code", "party_id", "ocpi_id", "currency", "data", "last_updated"]


@admin.register(PartnerSession)
class PartnerSessionAdmin(_ReceivedData):
    list_display = [
        "__str__",
        "state",
        "driver",
        "location",
        "evse_uid",
        "kwh",
        "total_cost_excl_vat",
        "currency",
        "start_date_time",
        "partner",
    ]
    list_filter = ["state", "partner"]
    list_select_related = ["partner", "driver", "location"]
    search_fields = ["ocpi_id", "authorization_reference", "evse_uid", "location_ocpi_id", "token__uid"]
    date_hierarchy = "start_date_time"
    readonly_fields = [
        "partner",
        "country_code",
        "party_id",
        "ocpi_id",
        "authorization_reference",
        "state",
        "state_reason",
        "token",
        "driver",
        "business_customer",
        "contract",
        "location",
        "location_ocpi_id",
        "evse_uid",
        "connector_id",
        "start_date_time",
        "end_date_time",
        "kwh",
        "currency",
        "total_cost_excl_vat",
        "total_cost_incl_vat",
        "data",
        "last_updated",
        "created_at",
        "updated_at",
    ]


@admin.register(PartnerCdr)
class PartnerCdrAdmin(_ReceivedData):
    # the CPO as one "NL*ABC" column, energy and cost with their units: the list fits from 1280 px
    list_display = [
        "ocpi_id",
        "cpo",
        "driver",
        "energy",
        "cost",
        "credit",
        "review",
        "end_date_time",
        "partner",
    ]
    list_filter = ["review", "credit", "partner", "currency"]
    list_select_related = ["partner", "driver"]
    search_fields = ["ocpi_id", "session_ocpi_id", "authorization_reference", "token__uid"]
    date_hierarchy = "end_date_time"
    readonly_fields = [
        "partner",
        "country_code",
        "party_id",
        "ocpi_id",
        "session",
        "session_ocpi_id",
        "authorization_reference",
        "token",
        "driver",
        "business_customer",
        "start_date_time",
        "end_date_time",
        "currency",
        "total_energy",
        "total_time",
        "total_cost_excl_vat",
        "total_cost_incl_vat",
        "credit",
        "credit_reference_id",
        "review",
        "review_detail",
        "data",
        "last_updated",
        "created_at",
        "updated_at",
    ]

    @admin.display(description=_("CPO"), ordering="party_id")
    def cpo(self, obj: PartnerCdr) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description=_("Energy"), ordering="total_energy")
    def energy(self, obj: PartnerCdr) -> str:
        return admin_display.energy(obj.total_energy * 1000)

    @admin.display(description=_("Cost excl. VAT"), ordering="total_cost_excl_vat")
    def cost(self, obj: PartnerCdr) -> str:
        return admin_display.money(obj.total_cost_excl_vat, obj.currency)


@admin.register(HubClientInfo)
class HubClientInfoAdmin(_ReceivedData):
    tenant_field = "partner__tenant"
    list_display = ["__str__", "role", "status", "partner", "last_updated"]
    list_filter = ["status", "role", "partner"]
    list_select_related = ["partner"]
    search_fields = ["party_id", "country_code"]
    readonly_fields = ["partner", "country_code", "party_id", "role", "status", "data", "last_updated"]


@admin.register(PullState)
class PullStateAdmin(_ReceivedData):
    tenant_field = "partner__tenant"
    list_display = ["partner", "module", "last_success_at", "last_count", "synced_from", "last_push_at", "last_error"]
    list_filter = ["module", "partner"]
    list_select_related = ["partner"]
    readonly_fields = [
        "partner",
        "module",
        "synced_from",
        "last_attempt_at",
        "last_success_at",
        "last_push_at",
        "last_count",
        "last_error",
    ]
