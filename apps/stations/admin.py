"""Admin of the network: locations, EVSEs, commands, firmware and diagnostics. The charge point console
(live status, commands, frame log) lives in `apps.ocpp.admin`, the interface layer above."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from apps.core.admin import AuditInline, DecommissionedListFilter, PageTabularInline
from apps.stations import decommission, network, services
from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    Command,
    CommandEvent,
    Connector,
    DiagnosticsUpload,
    Evse,
    FirmwareCampaign,
    FirmwareCampaignTarget,
    FirmwareImage,
    InstalledCertificate,
    Location,
    SecurityEvent,
)
from apps.tenants.scoping import TenantScopedAdmin

DECOMMISSION_INSTEAD = _('Use the "Decommission selected" action instead: it keeps the history.')


def _model_changes(obj: Any, form: Any, names: list[str]) -> dict[str, Any]:
    """The form's values of the model's own editable fields among `names`."""
    editable = {f.name for f in obj._meta.concrete_fields if f.editable}
    return {name: form.cleaned_data[name] for name in names if name in editable and name in form.cleaned_data}


def _decommission_each(
    model_admin: TenantScopedAdmin, request: HttpRequest, queryset: QuerySet[Any], service: Callable[[Any], Any]
) -> None:
    done = 0
    for obj in queryset.order_by("pk"):
        if model_admin.has_change_permission(request, obj):
            service(obj)
            done += 1
    model_admin.message_user(request, _("%(done)s decommissioned.") % {"done": done}, messages.SUCCESS)


class StationsChangedAdmin(TenantScopedAdmin):
    """Saves and deletes here (inlines included: the change form commits them together) drop the tenant's cached
    reads of the network on commit (`services.stations_changed`)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.stations_changed(tenant_id=obj.tenant_id)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        tenant_id = obj.tenant_id
        super().delete_model(request, obj)
        services.stations_changed(tenant_id=tenant_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        tenant_ids = set(queryset.values_list("tenant_id", flat=True))
        super().delete_queryset(request, queryset)
        for tenant_id in sorted(tenant_ids):
            services.stations_changed(tenant_id=tenant_id)


@admin.register(Location)
class LocationAdmin(StationsChangedAdmin):
    list_display = ["name", "tenant", "city", "country", "publish", "decommissioned_at"]
    list_filter = [DecommissionedListFilter, "tenant", "country", "publish"]
    search_fields = ["name", "address", "city", "ocpi_id"]
    readonly_fields = ["decommissioned_at"]
    actions = ["decommission_selected"]
    delete_instead = DECOMMISSION_INSTEAD

    @admin.action(description=_("Decommission selected locations (with their charge points and EVSEs)"))
    def decommission_selected(self, request: HttpRequest, queryset: QuerySet[Location]) -> None:
        _decommission_each(self, request, queryset, lambda obj: decommission.location_decommission(location=obj))

    def save_model(self, request: HttpRequest, obj: Location, form: Any, change: bool) -> None:
        """Through the services, as the API: the change is published to whoever shows the location (roaming)."""
        if change:
            saved = network.location_update(location=obj, **_model_changes(obj, form, form.changed_data))
        else:
            fields = _model_changes(obj, form, list(form.cleaned_data))
            saved = network.location_create(tenant=fields.pop("tenant"), **fields)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Location) -> None:
        network.location_delete(location=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Location]) -> None:
        for obj in queryset.order_by("pk"):
            network.location_delete(location=obj)


class ConnectorInline(PageTabularInline):
    model = Connector
    extra = 0


@admin.register(Evse)
class EvseAdmin(StationsChangedAdmin):
    list_display = [
        "evse_uid", "charge_point", "connector_id", "status", "error_code", "status_at", "tenant", "decommissioned_at",
    ]  # fmt: skip
    list_filter = [DecommissionedListFilter, "status", "tenant"]
    search_fields = ["evse_uid", "charge_point__identity"]
    list_select_related = ["charge_point", "tenant"]
    raw_id_fields = ["charge_point"]
    readonly_fields = [
        "status", "error_code", "vendor_error_code", "status_info", "status_at", "status_received_at",
        "decommissioned_at",
    ]  # fmt: skip
    inlines = [ConnectorInline]
    actions = ["decommission_selected"]
    delete_instead = DECOMMISSION_INSTEAD

    @admin.action(description=_("Decommission selected EVSEs"))
    def decommission_selected(self, request: HttpRequest, queryset: QuerySet[Evse]) -> None:
        _decommission_each(self, request, queryset, lambda obj: decommission.evse_decommission(evse=obj))

    def save_model(self, request: HttpRequest, obj: Evse, form: Any, change: bool) -> None:
        """Through the services, as the API: the change is published to whoever shows the EVSE (roaming)."""
        if change:
            saved = network.evse_update(evse=obj, **_model_changes(obj, form, form.changed_data))
        else:
            fields = _model_changes(obj, form, list(form.cleaned_data))
            fields.pop("tenant", None)
            saved = services.evse_create(**fields)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Connectors added, changed or removed in the inline change their EVSE's description."""
        super().save_formset(request, form, formset, change)
        if formset.new_objects or formset.changed_objects or formset.deleted_objects:
            network.evse_changed(evse=form.instance)

    def delete_model(self, request: HttpRequest, obj: Evse) -> None:
        network.evse_delete(evse=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Evse]) -> None:
        for obj in queryset.order_by("pk"):
            network.evse_delete(evse=obj)


class CommandEventInline(AuditInline):
    model = CommandEvent
    readonly_fields = ["status", "detail", "at"]


@admin.register(Command)
class CommandAdmin(TenantScopedAdmin):
    """The command log with its audit trail. Commands are sent from the charge point console."""

    list_display = ["id", "charge_point", "action", "status", "source", "requested_by", "created_at", "completed_at"]
    list_filter = ["status", "action", "source", "tenant"]
    search_fields = ["charge_point__identity", "action"]
    list_select_related = ["charge_point", "requested_by"]
    readonly_fields = [f.name for f in Command._meta.fields]
    inlines = [CommandEventInline]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FirmwareImage)
class FirmwareImageAdmin(TenantScopedAdmin):
    """An image is an immutable artefact: its file cannot be replaced once campaigns may have signed or sent it."""

    list_display = ["name", "version", "vendor", "tenant", "signed", "created_at"]
    list_filter = ["tenant", "vendor"]
    search_fields = ["name", "version"]
    readonly_fields = ["sha256", "signature", "signing_certificate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "file"] if obj is not None else list(self.readonly_fields)

    @admin.display(boolean=True, description=_("signed"))
    def signed(self, obj: FirmwareImage) -> bool:
        return bool(obj.signature)


class CampaignTargetInline(PageTabularInline):
    model = FirmwareCampaignTarget
    extra = 0
    can_delete = False
    fields = ["charge_point", "state", "detail", "command", "updated_at"]
    readonly_fields = ["charge_point", "state", "detail", "command", "updated_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FirmwareCampaign)
class FirmwareCampaignAdmin(TenantScopedAdmin):
    """Progress per charger follows the FirmwareStatusNotifications. Start campaigns from the charge point list."""

    list_display = ["name", "firmware", "signed", "tenant", "retrieve_at", "created_at"]
    list_filter = ["tenant"]
    readonly_fields = ["created_by", "signed"]
    inlines = [CampaignTargetInline]


@admin.register(DiagnosticsUpload)
class DiagnosticsUploadAdmin(TenantScopedAdmin):
    list_display = ["charge_point", "file_name", "size", "created_at", "uploaded_at", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["charge_point__identity", "file_name"]
    readonly_fields = ["charge_point", "command", "file", "file_name", "size", "uploaded_at", "token"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


# --------------------------------------------------------------------------- OCPP 1.6 security extension


class _ReadOnlyAdmin(TenantScopedAdmin):
    """Written by chargers and commands only."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SecurityEvent)
class SecurityEventAdmin(_ReadOnlyAdmin):
    """SecurityEventNotifications; critical ones (the whitepaper's list) also open a `security_event` alert."""

    list_display = ["timestamp", "charge_point", "type", "critical", "tech_info", "tenant"]
    list_filter = ["critical", "type", "tenant"]
    search_fields = ["charge_point__identity", "type", "tech_info"]
    list_select_related = ["charge_point", "tenant"]
    readonly_fields = [f.name for f in SecurityEvent._meta.fields]


@admin.register(CertificateSigningRequest)
class CertificateSigningRequestAdmin(_ReadOnlyAdmin):
    list_display = ["id", "charge_point", "common_name", "status", "not_after", "created_at", "tenant"]
    list_filter = ["status", "tenant"]
    search_fields = ["charge_point__identity", "common_name", "serial_number"]
    list_select_related = ["charge_point", "tenant"]
    readonly_fields = [f.name for f in CertificateSigningRequest._meta.fields]


@admin.register(InstalledCertificate)
class InstalledCertificateAdmin(_ReadOnlyAdmin):
    """Certificates on chargers as far as the platform knows; change them with the charge point's commands
    (InstallCertificate, GetInstalledCertificateIds, DeleteCertificate)."""

    list_display = ["charge_point", "certificate_type", "serial_number", "subject", "not_after", "source", "tenant"]
    list_filter = ["certificate_type", "source", "tenant"]
    search_fields = ["charge_point__identity", "serial_number", "subject"]
    list_select_related = ["charge_point", "tenant"]
    readonly_fields = [f.name for f in InstalledCertificate._meta.fields]


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(_ReadOnlyAdmin):
    """The tenant's CSMS CA (created when a charger first asks for a certificate). Its private key is stored
    encrypted and never shown."""

    list_display = ["tenant", "not_after", "created_at"]
    list_filter = ["tenant"]
    fields = ["tenant", "certificate", "not_after", "created_at"]
    readonly_fields = ["tenant", "certificate", "not_after", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).defer("private_key_encrypted")
