"""Roaming partners in the ops console: created, onboarded, suspended and removed without a deploy; the list shows
each partner's handshake state and last error per module."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.core.deletion import DeletionProtected
from apps.core.errors import ApplicationError
from apps.roaming import services
from apps.roaming.models import RoamingPartner
from apps.roaming.ocpi import handshake
from apps.tariffs.models import Tariff
from apps.tenants.access import access_for, scope_queryset
from apps.tenants.models import Role
from apps.tenants.scoping import TenantScopedAdmin


class RoamingPartnerForm(forms.ModelForm):  # type: ignore[type-arg]
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        tariffs = data.get("tariffs")
        if tenant is not None and tariffs is not None:
            foreign = [t for t in tariffs if t.tenant_id != tenant.pk]
            if foreign:
                self.add_error(
                    "tariffs", gettext("Tariff %(tariff)s belongs to another tenant.") % {"tariff": foreign[0].ocpi_id}
                )
        return data


@admin.register(RoamingPartner)
class RoamingPartnerAdmin(TenantScopedAdmin):
    form = RoamingPartnerForm
    filter_horizontal = ["tariffs"]
    write_roles = (Role.ADMIN,)
    delete_instead = services.DELETE_INSTEAD
    list_display = [
        "name",
        "tenant",
        "party",
        "our_party",
        "status",
        "last_handshake_at",
        "errors",
    ]  # version and token kinds are on the partner's page: the list keeps room for the last errors
    list_filter = ["tenant", "status"]
    search_fields = ["name", "party_id", "country_code"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "status",
        "version",
        "roles",
        "credentials_roles",
        "endpoints",
        "our_token_hint",
        "our_token_kind",
        "their_token_masked",
        "their_token_kind",
        "last_handshake_at",
        "errors",
        "pushes",
        "created_at",
        "updated_at",
    ]
    actions = [
        "register",
        "rotate",
        "unregister",
        "suspend",
        "reinstate",
        "issue_token_a",
        "full_resync",
        "pull_resync",
    ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = [
            "tenant",
            "name",
            "our_country_code",
            "our_party_id",
            "our_roles",
            "country_code",
            "party_id",
            "versions_url",
            "token_style",
            "enabled_modules",
            "tariffs",
        ]
        if obj is None or obj.status != "registered":
            editable.append("their_token")
        return [*editable, *self.readonly_fields]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if "their_token" in form.base_fields:
            field = form.base_fields["their_token"]
            field.help_text = gettext("The CREDENTIALS_TOKEN_A they gave us, to register with them. Never shown again.")
            if obj is not None:
                field.initial = ""
                field.required = False
        return form

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tariffs":  # only the caller's tenants' tariffs are offered
            kwargs["queryset"] = scope_queryset(
                Tariff.objects.select_related("tenant").order_by("tenant_id", "ocpi_id"), access_for(request), "tenant"
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.display(description=_("Party"))
    def party(self, obj: RoamingPartner) -> str:
        return obj.party

    @admin.display(description=_("Our party"))
    def our_party(self, obj: RoamingPartner) -> str:
        return f"{obj.our_country_code}*{obj.our_party_id} ({', '.join(obj.our_roles)})"

    @admin.display(description=_("Last error per module"))
    def errors(self, obj: RoamingPartner) -> str:
        items = sorted((obj.last_errors or {}).items())
        if not items:
            return "—"
        return format_html_join(
            "", "<div><b>{}</b> {}: {}</div>", ((m, e.get("at", ""), e.get("message", "")) for m, e in items)
        )

    @admin.display(description=_("Last push per module"))
    def pushes(self, obj: RoamingPartner) -> str:
        items = sorted((obj.last_pushes or {}).items())
        if not items:
            return "—"
        return format_html_join(
            "", "<div><b>{}</b> {}: {}</div>", ((m, e.get("at", ""), e.get("object", "")) for m, e in items)
        )

    def save_model(self, request: HttpRequest, obj: RoamingPartner, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        if "tariffs" in form.cleaned_data:
            fields["tariffs"] = list(form.cleaned_data["tariffs"])
        if change and not fields.get("their_token"):
            fields.pop("their_token", None)  # left blank: keep it
        try:
            if change:
                services.partner_update(partner=RoamingPartner.objects.get(pk=obj.pk), **fields)
                return
            tenant = fields.pop("tenant", None) or obj.tenant
            partner, token_a = services.partner_create(tenant=tenant, **fields)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return
        obj.pk = partner.pk
        self.message_user(
            request,
            _(
                "Partner created. Give them our versions URL and this CREDENTIALS_TOKEN_A now, it is not shown again: "
                "%(token)s"
            )
            % {"token": token_a},
            level=messages.WARNING,
        )

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        refused = []
        for partner in objs:
            try:
                services.partner_deletable(partner=partner)
            except DeletionProtected as exc:
                refused.append(exc.message)
        if refused:
            return [], {}, set(), refused
        return super().get_deleted_objects(objs, request)

    def delete_model(self, request: HttpRequest, obj: RoamingPartner) -> None:
        services.partner_delete(partner=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        for partner in queryset.order_by("pk"):
            services.partner_delete(partner=partner)

    @admin.action(description=_("Suspend selected partners"))
    def suspend(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        for partner in queryset.order_by("pk"):
            if self._can_write(request, partner):
                services.partner_suspend(partner=partner)
        self.message_user(request, _("Suspended."))

    @admin.action(description=_("Reinstate selected partners"))
    def reinstate(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        for partner in queryset.order_by("pk"):
            if self._can_write(request, partner):
                services.partner_reinstate(partner=partner)
        self.message_user(request, _("Reinstated."))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The tariffs were set by the service in save_model (with their pushes): nothing more to save."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description=_("Full resync: push our locations and tariffs to the selected partners again"))
    def full_resync(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        for partner in queryset.order_by("pk"):
            if not self._can_write(request, partner):
                continue
            try:
                queued = services.partner_full_sync(partner=partner)
            except ApplicationError as exc:
                self.message_user(request, f"{partner}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(
                    request,
                    ngettext(
                        "%(partner)s: %(count)d object queued for a push.",
                        "%(partner)s: %(count)d objects queued for a push.",
                        queued,
                    )
                    % {"partner": partner, "count": queued},
                )

    @admin.action(description=_("Full resync: pull the selected CPO partners' locations, tariffs, sessions and CDRs"))
    def pull_resync(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        for partner in queryset.order_by("pk"):
            if not self._can_write(request, partner):
                continue
            try:
                modules = services.partner_pull(partner=partner, full=True)
            except ApplicationError as exc:
                self.message_user(request, f"{partner}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(partner)s: pulling %(modules)s.") % {"partner": partner, "modules": ", ".join(modules)},
                )

    @admin.action(description=_("Issue a new registration token (CREDENTIALS_TOKEN_A)"))
    def issue_token_a(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        for partner in queryset.order_by("pk"):
            if not self._can_write(request, partner):
                continue
            try:
                _issued, raw = services.partner_token_a_issue(partner=partner)
            except ApplicationError as exc:
                self.message_user(request, f"{partner}: {exc.message}", level=messages.ERROR)
                continue
            self.message_user(
                request,
                _("%(partner)s: new CREDENTIALS_TOKEN_A (shown once): %(token)s") % {"partner": partner, "token": raw},
                messages.WARNING,
            )

    def _handshake(self, request: HttpRequest, queryset: QuerySet[RoamingPartner], step: str) -> None:
        base = (settings.OCPI_BASE_URL or request.build_absolute_uri("/")).rstrip("/")
        for partner in queryset.order_by("pk"):
            if not self._can_write(request, partner):
                continue
            try:
                if step == "register":
                    handshake.register_with_partner(partner=partner, base_url=base)
                elif step == "rotate":
                    handshake.update_with_partner(partner=partner, base_url=base)
                else:
                    handshake.unregister_with_partner(partner=partner)
            except ApplicationError as exc:
                self.message_user(request, f"{partner}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, _("%(partner)s: %(step)s done.") % {"partner": partner, "step": step})

    @admin.action(description=_("Register with the selected partners (their versions URL and token A)"))
    def register(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        self._handshake(request, queryset, "register")

    @admin.action(description=_("Rotate the credentials tokens of the selected partners"))
    def rotate(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        self._handshake(request, queryset, "rotate")

    @admin.action(description=_("Unregister from the selected partners"))
    def unregister(self, request: HttpRequest, queryset: QuerySet[RoamingPartner]) -> None:
        self._handshake(request, queryset, "unregister")


# the read-only pages of what partners sent: their commands, tokens, reservations (CPO role), and what CPO partners
# sent us as their eMSP (locations, tariffs, sessions, CDRs, hub clients, pull state)
# and the Hubject (OICP) connections
from apps.roaming import admin_emsp, admin_oicp, admin_receiver  # noqa: E402,F401
