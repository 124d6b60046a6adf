"""The ops console: charge points with live status, their frames, and every OCPP command as a button.

It lives in the interface layer because it shows the frame log (`MessageLog`) next to the domain state."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from apps.core.admin import DecommissionedListFilter, PageTabularInline
from apps.core.admin_display import local_datetime
from apps.core.errors import ApplicationError
from apps.ocpp.admin_commands import BY_ACTION, CommandForm, command_groups
from apps.ocpp.models import MessageLog
from apps.sessions import selectors as session_selectors
from apps.sessions.models import ChargingSession
from apps.stations import decommission, network
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, ChargePointStatus, Evse, FirmwareImage, RegistrationStatus
from apps.stations.tasks import firmware_campaign_run
from apps.tenants.access import access_for
from apps.tenants.scoping import TenantScopedAdmin


def frames_table(rows: list[MessageLog], *, payload_chars: int = 200, empty: str = "") -> str:
    """OCPP frames as the console shows them (charge point page, session page): time, direction, kind, action,
    result and the start of the payload."""
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
        (
            (
                local_datetime(row.created_at),
                row.direction,
                row.get_kind_display(),
                row.action,
                row.result,
                json.dumps(row.payload)[:payload_chars],
            )
            for row in rows
        ),
    )
    if not rows and empty:
        body = format_html('<tr><td colspan="6">{}</td></tr>', empty)
    return format_html(
        '<table class="console-table cp-frames"><colgroup><col style="width:14.5em"><col style="width:3em">'
        '<col style="width:7em"><col style="width:13em"><col style="width:7em"><col></colgroup>'
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
        _("At"),
        pgettext_lazy("frame direction", "Dir"),
        _("Type"),
        _("Action"),
        _("Result"),
        _("Payload"),
        body,
    )


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=100)
    firmware = forms.ModelChoiceField(queryset=FirmwareImage.objects.none())
    retrieve_at = forms.DateTimeField(initial=timezone.now)
    signed = forms.BooleanField(
        required=False,
        label=_("Signed firmware update"),
        help_text=_(
            "OCPP 1.6 security extension: the platform signs the image with the tenant's firmware signing "
            "certificate, installs the tenant CA on each charger as its manufacturer root, and sends "
            "SignedUpdateFirmware. Chargers without the security extension refuse it."
        ),
    )


class EvseInline(PageTabularInline):
    """The charger's EVSEs (OCPP connector ids) with their live status, for whoever may see the charger."""

    model = Evse
    extra = 0
    fields = ["connector_id", "evse_uid", "status", "error_code", "status_info", "status_at", "decommissioned_at"]
    readonly_fields = ["status", "error_code", "status_info", "status_at", "decommissioned_at"]


STATUS_PRIORITY: list[str] = [
    ChargePointStatus.FAULTED, ChargePointStatus.CHARGING, ChargePointStatus.SUSPENDED_EV,
    ChargePointStatus.SUSPENDED_EVSE, ChargePointStatus.FINISHING, ChargePointStatus.PREPARING,
    ChargePointStatus.RESERVED, ChargePointStatus.UNAVAILABLE, ChargePointStatus.AVAILABLE, ChargePointStatus.UNKNOWN,
]  # fmt: skip


class OnlineFilter(admin.SimpleListFilter):
    title = _("connection")
    parameter_name = "connection"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("online", "Online"), ("offline", "Offline")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in ("online", "offline"):
            return queryset.filter(online=self.value() == "online")
        return queryset


@admin.register(ChargePoint)
class ChargePointAdmin(TenantScopedAdmin):
    change_form_template = "admin/ocpp/chargepoint/change_form.html"
    list_display = [
        "identity", "tenant", "location", "connection", "status_summary", "last_seen_at", "hardware", "firmware",
        "registration",
    ]  # fmt: skip
    list_filter = [DecommissionedListFilter, OnlineFilter, "status", "registration_status", "vendor", "tenant"]
    search_fields = ["identity", "vendor", "model", "serial_number", "charge_box_serial_number", "location__name"]
    list_select_related = ["tenant", "location"]
    readonly_fields = [
        "online", "last_seen_at", "last_heartbeat_at", "last_boot_at", "connected_at", "status", "error_code",
        "vendor_error_code", "status_info", "status_at", "vendor", "model", "serial_number",
        "charge_box_serial_number", "firmware_version", "iccid", "imsi", "meter_type", "meter_serial_number",
        "configuration", "configuration_read_at", "local_list_version", "firmware_status", "firmware_status_at",
        "diagnostics_status", "diagnostics_status_at", "password_changed_at", "password_pending", "recent_messages",
        "decommissioned_at", "security_profile_pending", "signed_firmware_status", "signed_firmware_status_at",
        "signed_firmware_request_id", "log_status", "log_status_at", "log_request_id", "certificates",
        "recent_security_events",
    ]  # fmt: skip
    fieldsets = [
        (None, {"fields": ["identity", "tenant", "location", "registration_status", "lenient"]}),
        (
            _("Connection and status"),
            {
                "fields": [
                    ("online", "connected_at"), ("last_seen_at", "last_heartbeat_at"), "last_boot_at",
                    ("status", "status_at"), ("error_code", "vendor_error_code"), "status_info",
                ]
            },
        ),
        (_("Power"), {"fields": ["max_power_w", "phases", "charging_rate_unit", "heartbeat_interval"]}),
        (
            _("Hardware"),
            {
                "classes": ["collapse"],
                "fields": [
                    ("vendor", "model"), ("serial_number", "charge_box_serial_number"), "firmware_version",
                    ("iccid", "imsi"), ("meter_type", "meter_serial_number"),
                ],
            },
        ),
        (
            _("Configuration, firmware and diagnostics"),
            {
                "classes": ["collapse"],
                "fields": [
                    "configuration_complete", "configuration", "configuration_read_at", "local_list_version",
                    ("firmware_status", "firmware_status_at"), ("diagnostics_status", "diagnostics_status_at"),
                    ("password_changed_at", "password_pending"), "decommissioned_at",
                ],
            },
        ),
        (
            _("Security"),
            {
                "classes": ["collapse"],
                "fields": [
                    ("security_profile", "security_profile_pending"),
                    ("signed_firmware_status", "signed_firmware_status_at"), "signed_firmware_request_id",
                    ("log_status", "log_status_at"), "log_request_id", "certificates", "recent_security_events",
                ],
            },
        ),
    ]  # fmt: skip
    inlines = [EvseInline]
    actions = [
        "accept", "soft_reset", "trigger_status", "read_configuration", "start_firmware_campaign",
        "decommission_selected",
    ]  # fmt: skip
    delete_instead = _('Use the "Decommission selected" action instead: it keeps the history.')

    def get_queryset(self, request: HttpRequest) -> Any:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("evses")
            .annotate(live_connectors=session_selectors.live_connectors_subquery())
        )

    @admin.display(description=_("Status"), ordering="status")
    def status_summary(self, obj: ChargePoint) -> str:
        """What the charger is doing: its connectors' most telling state ("Charging (1 of 2)"), since a charger's
        own status (connector 0) says "Available" while a connector charges; a fault or unavailability of the
        whole charger first."""
        live = set(getattr(obj, "live_connectors", None) or [])
        statuses = [
            # a connector with a running session that last said Available (or nothing) is charging all the same
            ChargePointStatus.CHARGING
            if evse.connector_id in live and evse.status in (ChargePointStatus.AVAILABLE, ChargePointStatus.UNKNOWN)
            else evse.status
            for evse in obj.evses.all()
            if evse.decommissioned_at is None
        ]
        if obj.status in (ChargePointStatus.FAULTED, ChargePointStatus.UNAVAILABLE) or not statuses:
            return obj.get_status_display()
        top = min(statuses, key=STATUS_PRIORITY.index)
        label = str(ChargePointStatus(top).label)
        count = statuses.count(top)
        return label if count == len(statuses) else f"{label} ({count} of {len(statuses)})"

    @admin.display(description=_("Firmware"), ordering="firmware_version")
    def firmware(self, obj: ChargePoint) -> str:
        return obj.firmware_version or "-"

    @admin.display(description=_("Registration"), ordering="registration_status")
    def registration(self, obj: ChargePoint) -> str:
        return str(obj.get_registration_status_display())

    @admin.display(description=_("Model"), ordering="model")
    def hardware(self, obj: ChargePoint) -> str:
        return f"{obj.vendor} {obj.model}".strip() or "-"

    @admin.display(description=_("connection"), ordering="online")
    def connection(self, obj: ChargePoint) -> str:
        colour, label = ("#15803d", gettext("online")) if obj.online else ("#b91c1c", gettext("offline"))
        return format_html('<b style="color:{}">●</b> {}', colour, label)

    @admin.display(description=_("certificates on the charger"))
    def certificates(self, obj: ChargePoint) -> str:
        rows = obj.installed_certificates.order_by("certificate_type", "serial_number")[:50]
        url = reverse("admin:stations_installedcertificate_changelist") + f"?charge_point__id__exact={obj.pk}"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row.certificate_type,
                    row.serial_number,
                    row.subject,
                    f"{row.not_after:%Y-%m-%d}" if row.not_after else "",
                    row.source,
                )
                for row in rows
            ),
        )
        return format_html(
            '<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table><a href="{}">{}</a>',
            gettext("type"),
            gettext("serial"),
            gettext("subject"),
            gettext("expires"),
            gettext("from"),
            body,
            url,
            gettext("all certificates of this charger"),
        )

    @admin.display(description=_("recent security events"))
    def recent_security_events(self, obj: ChargePoint) -> str:
        rows = obj.security_events.order_by("-timestamp", "-id")[:10]
        url = reverse("admin:stations_securityevent_changelist") + f"?charge_point__id__exact={obj.pk}"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (local_datetime(row.timestamp), row.type, gettext("critical") if row.critical else "", row.tech_info)
                for row in rows
            ),
        )
        return format_html(
            '<table><tr><th>{}</th><th>{}</th><th></th><th>{}</th></tr>{}</table><a href="{}">{}</a>',
            gettext("at"),
            gettext("type"),
            gettext("info"),
            body,
            url,
            gettext("all security events of this charger"),
        )

    @admin.display(description=_("recent frames"))
    def recent_messages(self, obj: ChargePoint) -> str:
        rows = MessageLog.objects.filter(charge_point=obj).order_by("-created_at", "-id")[:25]
        url = reverse("admin:ocpp_messagelog_changelist") + f"?charge_point__id__exact={obj.pk}"
        return format_html(
            '{}<p><a href="{}">{}</a></p>',
            frames_table(list(rows), payload_chars=160),
            url,
            _("All frames of this charger"),
        )

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/command/<str:action>/",
                self.admin_site.admin_view(self.command_view),
                name="ocpp_chargepoint_command",
            ),
            path("<int:object_id>/live/", self.admin_site.admin_view(self.live_view), name="ocpp_chargepoint_live"),
        ]
        return custom + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "command_groups": command_groups()}
        charge_point = self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        if charge_point is not None:
            extra_context["recent_frames"] = self.recent_messages(charge_point)
        return super().change_view(request, object_id, form_url, extra_context)

    def live_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        """The live part of the charge point page (connection, connectors, latest frames), fetched again by the page
        whenever the tenant's live group (`/ws/dashboard/`) reports something about this charger."""
        charge_point = self.get_queryset(request).filter(pk=object_id).first()
        if charge_point is None or not self.has_view_permission(request, charge_point):
            return JsonResponse({"code": "not_found", "message": "Not found.", "fields": {}}, status=404)
        connectors = [
            {
                "connector_id": e.connector_id,
                "status": e.status,
                "error_code": e.error_code if e.error_code not in ("", "NoError") else "",
                "since_html": local_datetime(e.status_at) if e.status_at else "",
            }
            for e in Evse.objects.filter(charge_point=charge_point, decommissioned_at__isnull=True).order_by(
                "connector_id"
            )
        ]
        return JsonResponse(
            {
                "online": charge_point.online,
                "last_seen_html": local_datetime(charge_point.last_seen_at) if charge_point.last_seen_at else "",
                "connectors": connectors,
                "frames_html": str(self.recent_messages(charge_point)),
                "at": timezone.now().isoformat(),
                "zone": timezone.get_current_timezone_name(),
            }
        )

    def command_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        self._ensure_visible(request, object_id)
        charge_point = self.get_queryset(request).get(pk=object_id)
        if action not in station_services.SERVER_ACTIONS:
            raise Http404("Unknown command.")
        if not self.has_change_permission(request, charge_point):
            raise Http404("No such object.")
        form = CommandForm(request.POST or None, charge_point=charge_point, action=action)
        if request.method == "POST" and form.is_valid():
            self._send(request, charge_point, action, form.payload, form.cleaned_data["timeout"])
            return HttpResponseRedirect(reverse("admin:stations_chargepoint_change", args=[charge_point.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{form.spec.label}: {charge_point.identity}",
            "form": form,
            "spec": form.spec,
            "charge_point": charge_point,
            "original": charge_point,
            "opts": self.model._meta,
            "action": action,
            "command_groups": command_groups(),
        }
        return TemplateResponse(request, "admin/ocpp/chargepoint/command.html", context)

    def _send(self, request: HttpRequest, charge_point: ChargePoint, action: str, payload: Any, timeout: int) -> None:
        try:
            if action == "GetDiagnostics" and "location" not in payload:
                _upload, command = station_services.diagnostics_request(
                    charge_point=charge_point, requested_by=request.user, timeout=timeout, source="admin", **payload
                )
            elif action == "GetLog":
                _log, command = station_services.log_request(
                    charge_point=charge_point,
                    payload=payload,
                    requested_by=request.user,
                    timeout=timeout,
                    source="admin",
                )
            else:
                command = station_services.send_command(
                    charge_point=charge_point,
                    action=action,
                    payload=payload,
                    requested_by=request.user,
                    timeout=timeout,
                    source="admin",
                )
        except ApplicationError as error:
            messages.error(request, f"{charge_point.identity}: {BY_ACTION[action].label}: {error.message}")
            return
        level = messages.SUCCESS if command.status == "accepted" else messages.WARNING
        detail = command.error or json.dumps(command.response)
        label = BY_ACTION[action].label
        messages.add_message(
            request, level, f"{charge_point.identity}: {label}: {command.get_status_display()}: {detail}"
        )

    def _bulk(self, request: HttpRequest, queryset: Any, action: str, payload: dict[str, Any]) -> None:
        for charge_point in queryset:
            if self.has_change_permission(request, charge_point):
                self._send(request, charge_point, action, payload, timeout=15)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """An EVSE added on the charger's page belongs to the charger's tenant."""
        for inline_form in formset.forms:
            instance = inline_form.instance
            if isinstance(instance, Evse) and instance.pk is None:
                instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)
        if formset.model is Evse:  # published like the EVSE services do (roaming partners are told)
            for evse in [*formset.new_objects, *(obj for obj, _ in formset.changed_objects)]:
                network.evse_changed(evse=evse)
            if formset.deleted_objects:
                network.location_changed(locations=[form.instance.location_id], tenant_id=form.instance.tenant_id)

    def delete_model(self, request: HttpRequest, obj: ChargePoint) -> None:
        network.charge_point_delete(charge_point=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for charge_point in queryset.order_by("pk"):
            network.charge_point_delete(charge_point=charge_point)

    def save_model(self, request: HttpRequest, obj: ChargePoint, form: Any, change: bool) -> None:
        """Accepting a charger here does what the accept action does (after the save is committed)."""
        accepted = (
            change
            and "registration_status" in form.changed_data
            and obj.registration_status == RegistrationStatus.ACCEPTED
        )
        if change:  # through the service: a charger moved to another location changes both (roaming pushes)
            editable = {f.name for f in ChargePoint._meta.concrete_fields if f.editable}
            changes = {n: form.cleaned_data[n] for n in form.changed_data if n in editable and n in form.cleaned_data}
            obj.updated_at = network.charge_point_update(charge_point=obj, **changes).updated_at
        else:
            super().save_model(request, obj, form, change)
        station_services.stations_changed(tenant_id=obj.tenant_id)  # with its EVSE inlines, committed together
        if accepted:
            transaction.on_commit(lambda: self._accept(request, obj))

    def _accept(self, request: HttpRequest, charge_point: ChargePoint) -> None:
        try:
            accepted = station_services.charge_point_accept(charge_point=charge_point, requested_by=request.user)
        except ApplicationError as error:
            messages.error(request, f"{charge_point.identity}: {error.message}")
            return
        if not accepted.online:
            level, detail = messages.SUCCESS, gettext("it is told at its next connection")
        elif accepted.password_pending:
            level, detail = messages.WARNING, gettext("told, but it did not take its own password (retried later)")
        else:
            level, detail = messages.SUCCESS, gettext("told (BootNotification triggered); it has its own password")
        messages.add_message(
            request,
            level,
            gettext("%(charger)s accepted: %(detail)s.") % {"charger": accepted.identity, "detail": detail},
        )

    @admin.action(description=_("Accept selected charge points (tell connected ones at once)"))
    def accept(self, request: HttpRequest, queryset: Any) -> None:
        for charge_point in queryset:
            if self.has_change_permission(request, charge_point):
                self._accept(request, charge_point)

    @admin.action(description=_("Reset (soft) selected charge points"))
    def soft_reset(self, request: HttpRequest, queryset: Any) -> None:
        self._bulk(request, queryset, "Reset", {"type": "Soft"})

    @admin.action(description=_("Trigger a StatusNotification"))
    def trigger_status(self, request: HttpRequest, queryset: Any) -> None:
        self._bulk(request, queryset, "TriggerMessage", {"requestedMessage": "StatusNotification"})

    @admin.action(description=_("Read configuration (GetConfiguration)"))
    def read_configuration(self, request: HttpRequest, queryset: Any) -> None:
        self._bulk(request, queryset, "GetConfiguration", {})

    @admin.action(description=_("Decommission selected charge points (with their EVSEs)"))
    def decommission_selected(self, request: HttpRequest, queryset: Any) -> None:
        done = 0
        for charge_point in queryset.order_by("pk"):
            if self.has_change_permission(request, charge_point):
                decommission.charge_point_decommission(charge_point=charge_point)
                done += 1
        messages.success(request, _("%(done)s decommissioned.") % {"done": done})

    @admin.action(description=_("Start a firmware update campaign"))
    def start_firmware_campaign(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        chargers = [cp for cp in queryset if self.has_change_permission(request, cp)]
        tenants = {cp.tenant_id for cp in chargers}
        if len(tenants) != 1:
            messages.error(request, _("Select chargers of exactly one tenant (that you may operate)."))
            return None
        form = CampaignForm(request.POST if "apply" in request.POST else None)
        form.fields["firmware"].queryset = FirmwareImage.objects.filter(tenant_id__in=tenants)  # type: ignore[attr-defined]
        if "apply" in request.POST and form.is_valid():
            with transaction.atomic():
                campaign = station_services.firmware_campaign_create(
                    tenant=chargers[0].tenant,
                    name=form.cleaned_data["name"],
                    firmware=form.cleaned_data["firmware"],
                    charge_points=chargers,
                    retrieve_at=form.cleaned_data["retrieve_at"],
                    signed=form.cleaned_data["signed"],
                    created_by=request.user,
                )
                transaction.on_commit(lambda: firmware_campaign_run.delay(campaign.pk))
            messages.success(
                request,
                ngettext(
                    "Campaign %(name)s started for %(count)d charge point.",
                    "Campaign %(name)s started for %(count)d charge points.",
                    len(chargers),
                )
                % {"name": campaign.name, "count": len(chargers)},
            )
            return HttpResponseRedirect(reverse("admin:stations_firmwarecampaign_change", args=[campaign.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Firmware update campaign"),
            "form": form,
            "chargers": chargers,
            "opts": self.model._meta,
            "action_name": "start_firmware_campaign",
            "files_base_url": settings.OCPP_FILES_BASE_URL,
        }
        return TemplateResponse(request, "admin/ocpp/chargepoint/campaign.html", context)


@admin.register(MessageLog)
class MessageLogAdmin(TenantScopedAdmin):
    """Every OCPP frame in and out; filter by charger, search by unique id or action."""

    list_display = ["created_at", "charge_point", "direction", "kind", "action", "unique_id", "result", "latency_ms"]
    list_filter = ["direction", "kind", "action", "tenant"]
    search_fields = ["=unique_id", "action", "charge_point__identity"]
    list_select_related = ["charge_point"]
    readonly_fields = [f.name for f in MessageLog._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        frames = path(
            "session/<int:session_id>/", self.admin_site.admin_view(self.session_frames), name="ocpp_messagelog_session"
        )
        return [frames, *super().get_urls()]

    def session_frames(self, request: HttpRequest, session_id: int) -> HttpResponse:
        """The frames of one transaction, as an HTML table for the session page: its CALLs (those naming the
        transaction, or its connector while it ran) and their answers."""
        access = access_for(request)
        sessions = ChargingSession.objects.filter(pk=session_id)
        if access.tenant_ids is not None:
            sessions = sessions.filter(tenant_id__in=access.tenant_ids)
        session = sessions.first()
        if session is None or not self.has_view_permission(request):
            raise Http404("No such session.")
        start = session.started_at - timedelta(seconds=30)
        end = (session.stopped_at or timezone.now()) + timedelta(seconds=30)
        frames = MessageLog.objects.filter(charge_point_id=session.charge_point_id, created_at__range=(start, end))
        calls = frames.filter(kind=MessageLog.Kind.CALL).filter(
            Q(payload__transactionId=session.pk)
            | Q(payload__csChargingProfiles__transactionId=session.pk)
            | Q(payload__connectorId=session.connector_id)
        )
        started = frames.filter(action="StartTransaction", payload__transactionId=session.pk)  # its CALLRESULT
        ids = {*calls.values_list("unique_id", flat=True), *started.values_list("unique_id", flat=True)}
        rows = list(frames.filter(unique_id__in=ids).order_by("created_at", "id")[: self.SESSION_FRAMES + 1])
        more = len(rows) > self.SESSION_FRAMES
        everything = reverse("admin:ocpp_messagelog_changelist") + f"?charge_point__id__exact={session.charge_point_id}"
        return HttpResponse(
            format_html(
                '{}<p>{}<a href="{}">{}</a></p>',
                frames_table(rows[: self.SESSION_FRAMES], empty=gettext("No frames kept for this transaction.")),
                gettext("The first %(count)d frames. ") % {"count": self.SESSION_FRAMES} if more else "",
                everything,
                gettext("All frames of %(charger)s") % {"charger": session.charge_point.identity},
            )
        )

    SESSION_FRAMES = 300
