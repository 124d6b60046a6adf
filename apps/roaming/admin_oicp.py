"""The Hubject (OICP 2.3) connection in the ops console: a tenant admin points the tenant at Hubject's QA or production
system with the client certificate Hubject issued; the private key is write-only (stored encrypted, never shown).
The page shows, per operation, how many calls, the last call, its outcome and StatusCode, and the last error; the
action "Full load" sends our EVSE data and status to Hubject anew (apps/roaming/oicp/cpo_push.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core.admin import PageTabularInline
from apps.core.errors import ApplicationError
from apps.roaming.models import OicpConnection, OicpOperation, OicpOperationState
from apps.roaming.oicp import cpo_pricing, services
from apps.roaming.oicp import tasks as oicp_tasks
from apps.tenants.models import Role
from apps.tenants.scoping import TenantScopedAdmin


class OicpConnectionForm(forms.ModelForm):  # type: ignore[type-arg]
    name = forms.CharField(max_length=100, initial="Hubject", label=_("Partner name"))
    client_key = forms.CharField(
        label=_("Private key"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text=_("PEM, unencrypted. Stored encrypted and never shown; leave empty to keep the stored key."),
    )
    enabled_operations = forms.MultipleChoiceField(
        choices=OicpOperation.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = OicpConnection
        fields = [
            "tenant",
            "environment",
            "base_url",
            "operator_id",
            "provider_id",
            "hotline_phone_number",
            "client_certificate",
            "server_ca",
            "enabled",
            "enabled_operations",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields = self.fields  # a read-only viewer's form has none of them
        if "base_url" in fields:
            fields["base_url"].required = False
            fields["base_url"].help_text = _("Only for 'Other URL'; QA and production use Hubject's addresses.")
        if self.instance.pk:
            if "name" in fields:
                fields["name"].initial = self.instance.partner.name
            if "client_certificate" in fields:
                fields["client_certificate"].required = False
                fields["client_certificate"].help_text = _("Paste a new certificate with its key to replace both.")
        elif "client_key" in fields:
            fields["client_key"].required = True

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        arguments: dict[str, Any] = {
            "name": data.get("name") or "Hubject",
            "environment": data.get("environment"),
            "base_url": data.get("base_url") or "",
            "operator_id": data.get("operator_id") or "",
            "provider_id": data.get("provider_id") or "",
            "server_ca": data.get("server_ca") or "",
            "enabled": bool(data.get("enabled")),
            "enabled_operations": list(data.get("enabled_operations") or []),
            "hotline_phone_number": data.get("hotline_phone_number") or "",
        }
        key = data.get("client_key") or ""
        if self.instance.pk:
            changed = "client_certificate" in self.changed_data
            arguments["certificate_pem"] = (data.get("client_certificate") or "") if (key or changed) else ""
            arguments["key_pem"] = key
        else:
            arguments["tenant"] = data.get("tenant")
            arguments["certificate_pem"] = data.get("client_certificate") or ""
            arguments["key_pem"] = key
        return arguments

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            if self.instance.pk:
                services.oicp_connection_update_validate(connection=self.instance, **self.service_arguments())
            else:
                if data.get("tenant") is None:
                    return data
                services.oicp_connection_validate(**self.service_arguments())
        except ApplicationError as exc:
            fields = exc.fields or {"__all__": [exc.message]}
            for field, messages_ in fields.items():
                target = field if field in self.fields else None
                for message in messages_ if isinstance(messages_, list) else [messages_]:
                    self.add_error(target, message)
        return data


class OicpOperationStateInline(PageTabularInline):
    model = OicpOperationState
    extra = 0
    can_delete = False
    fields = (
        "operation",
        "calls",
        "last_call_at",
        "last_outcome",
        "last_status_code",
        "last_http_status",
        "last_ok_at",
        "last_error",
        "last_error_at",
    )
    readonly_fields = fields
    verbose_name = _("operation")
    verbose_name_plural = _("Operations: last call, outcome and error")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OicpConnection)
class OicpConnectionAdmin(TenantScopedAdmin):
    form = OicpConnectionForm
    write_roles = (Role.ADMIN,)
    inlines = [OicpOperationStateInline]
    list_display = [
        "partner_name",
        "tenant",
        "environment",
        "operator_id",
        "provider_id",
        "enabled",
        "certificate_not_after",
        "operations",
    ]
    list_filter = ["tenant", "environment", "enabled"]
    actions = [
        "evse_data_full_load",
        "pricing_full_load",
        "evse_data_full_pull",
        "authentication_data_full_load",
        "cdrs_reconcile",
    ]
    list_select_related = ["tenant", "partner"]
    readonly_fields = [
        "certificate_subject",
        "certificate_not_after",
        "evse_data_pulled_at",
        "partner",
        "created_at",
        "updated_at",
    ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = [
            "tenant",
            "name",
            "environment",
            "base_url",
            "operator_id",
            "provider_id",
            "hotline_phone_number",
            "client_certificate",
            "client_key",
            "server_ca",
            "enabled",
            "enabled_operations",
        ]
        if obj is not None:
            editable.remove("tenant")  # fixed: the partner row belongs to it
            if not self.has_change_permission(request, obj):
                # a viewer sees what is stored: "name" and "client_key" are the form's inputs (they read "None");
                # the partner below names the connection, and the key is only said to be stored
                editable.remove("name")
                editable[editable.index("client_key")] = "private_key"
        return [*editable, *self.readonly_fields]

    @admin.display(description=_("Private key"))
    def private_key(self, obj: OicpConnection) -> str:
        return str(_("Stored, encrypted (never shown)") if obj.client_key_encrypted else _("None stored"))

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("operation_states")

    @admin.display(description=_("Partner"), ordering="partner__name")
    def partner_name(self, obj: OicpConnection) -> str:
        return obj.partner.name

    @admin.display(description=_("Last outcome per operation"))
    def operations(self, obj: OicpConnection) -> str:
        states = sorted(obj.operation_states.all(), key=lambda state: state.operation)
        if not states:
            return "—"
        return format_html_join(
            "",
            "<div><b>{}</b> {} {} {}</div>",
            (
                (
                    s.operation,
                    s.get_last_outcome_display(),
                    s.last_status_code,
                    s.last_error if s.last_outcome != "ok" else "",
                )
                for s in states
            ),
        )

    @admin.action(description=_("Full load of our EVSE data and status to Hubject"), permissions=["change"])
    def evse_data_full_load(self, request: HttpRequest, queryset: Any) -> None:
        """PushEvseData fullLoad (Hubject replaces our records), then the statuses; in the roaming worker."""
        ids = list(queryset.filter(enabled=True).exclude(operator_id="").values_list("pk", flat=True))
        for connection_id in ids:
            oicp_tasks.oicp_evse_data_sync.apply_async((connection_id, True), queue=settings.OCPI_TASK_QUEUE)
        self.message_user(
            request,
            ngettext(
                "A full load of our EVSE data was queued for %(count)d connection.",
                "A full load of our EVSE data was queued for %(count)d connections.",
                len(ids),
            )
            % {"count": len(ids)},
            level=messages.SUCCESS if ids else messages.WARNING,
        )

    @admin.action(description=_("Full pull of Hubject's EVSE data into our partner stations"), permissions=["change"])
    def evse_data_full_pull(self, request: HttpRequest, queryset: Any) -> None:
        """PullEvseData without LastCall (we are EMP): the partner catalog takes everything Hubject lists, and what it
        no longer lists is withdrawn; in the roaming worker."""
        ids = list(queryset.filter(enabled=True).exclude(provider_id="").values_list("pk", flat=True))
        for connection_id in ids:
            oicp_tasks.oicp_evse_pull.apply_async((connection_id, True), queue=settings.OCPI_TASK_QUEUE)
        self.message_user(
            request,
            ngettext(
                "A full pull of Hubject's EVSE data was queued for %(count)d connection.",
                "A full pull of Hubject's EVSE data was queued for %(count)d connections.",
                len(ids),
            )
            % {"count": len(ids)},
            level=messages.SUCCESS if ids else messages.WARNING,
        )

    @admin.action(description=_("Full load of our prices to Hubject (dynamic pricing)"), permissions=["change"])
    def pricing_full_load(self, request: HttpRequest, queryset: Any) -> None:
        """PushPricingProductData and PushEVSEPricing fullLoads of our tariffs at our EVSEs; in the roaming worker."""
        ids = list(
            queryset.filter(enabled=True, enabled_operations__contains=list(cpo_pricing.OPERATIONS))
            .exclude(operator_id="")
            .values_list("pk", flat=True)
        )
        for connection_id in ids:
            oicp_tasks.oicp_pricing.apply_async((connection_id, True), queue=settings.OCPI_TASK_QUEUE)
        self.message_user(
            request,
            ngettext(
                "A full load of our prices was queued for %(count)d connection.",
                "A full load of our prices was queued for %(count)d connections.",
                len(ids),
            )
            % {"count": len(ids)},
            level=messages.SUCCESS if ids else messages.WARNING,
        )

    @admin.action(description=_("Full load of our drivers' tokens to Hubject"), permissions=["change"])
    def authentication_data_full_load(self, request: HttpRequest, queryset: Any) -> None:
        """PushAuthenticationData fullLoad (Hubject replaces the tokens it holds for us); in the roaming worker."""
        ids = list(
            queryset.filter(enabled=True, enabled_operations__contains=[OicpOperation.PUSH_AUTHENTICATION_DATA])
            .exclude(provider_id="")
            .values_list("pk", flat=True)
        )
        for connection_id in ids:
            oicp_tasks.oicp_authentication_data.apply_async((connection_id, None, True), queue=settings.OCPI_TASK_QUEUE)
        self.message_user(
            request,
            ngettext(
                "A full load of our tokens was queued for %(count)d connection.",
                "A full load of our tokens was queued for %(count)d connections.",
                len(ids),
            )
            % {"count": len(ids)},
            level=messages.SUCCESS if ids else messages.WARNING,
        )

    @admin.action(description=_("Reconcile Hubject's CDRs of the last 7 days with ours"), permissions=["change"])
    def cdrs_reconcile(self, request: HttpRequest, queryset: Any) -> None:
        """GetChargeDetailRecords of 7 days: lost CDRs are stored and billed, differing ones flagged for review."""
        ids = list(
            queryset.filter(enabled=True, enabled_operations__contains=[OicpOperation.GET_CHARGE_DETAIL_RECORDS])
            .exclude(provider_id="")
            .values_list("pk", flat=True)
        )
        end = timezone.now()
        start = end - dt.timedelta(days=7)
        for connection_id in ids:
            oicp_tasks.oicp_cdr_reconcile.apply_async(
                (connection_id, start.isoformat(), end.isoformat()), queue=settings.OCPI_TASK_QUEUE
            )
        self.message_user(
            request,
            ngettext(
                "A reconciliation of Hubject's CDRs was queued for %(count)d connection; mismatches appear in the "
                "reconciliation list.",
                "A reconciliation of Hubject's CDRs was queued for %(count)d connections; mismatches appear in the "
                "reconciliation list.",
                len(ids),
            )
            % {"count": len(ids)},
            level=messages.SUCCESS if ids else messages.WARNING,
        )

    def save_model(self, request: HttpRequest, obj: OicpConnection, form: Any, change: bool) -> None:
        """The form ran the service's checks (errors by field); only a race can fail here."""
        arguments = form.service_arguments()
        try:
            if change:
                services.oicp_connection_update(connection=OicpConnection.objects.get(pk=obj.pk), **arguments)
                return
            connection = services.oicp_connection_create(**arguments)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            raise
        obj.pk, obj.partner = connection.pk, connection.partner  # for the admin's log and redirect

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Everything was saved by the service in save_model; the operation states are read-only (their formset
        saves nothing, but the admin's change message reads what it saved)."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
