from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.customers import services
from apps.customers.models import BusinessCustomer, Contract, Driver, Token, Vehicle
from apps.customers.token_import import COLUMNS
from apps.tenants.models import Tenant
from apps.tenants.scoping import TenantScopedAdmin, access_for


def _model_changes(obj: Any, form: Any, names: list[str]) -> dict[str, Any]:
    """The form's values of the model's own editable fields among `names`."""
    editable = {f.name for f in obj._meta.concrete_fields if f.editable}
    return {name: form.cleaned_data[name] for name in names if name in editable and name in form.cleaned_data}


class TokensFollowAdmin(TenantScopedAdmin):
    """A driver's, business customer's or contract's fields that decide its tokens (`services.DECIDING_FIELDS`)
    changed in the form: its tokens changed too (roaming tells the CPO partners that were sent them)."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # many-to-many fields are saved here, after the row
        if change and set(form.changed_data) & set(services.DECIDING_FIELDS[type(form.instance)]):
            services.tokens_of_changed(instance=form.instance)


@admin.register(BusinessCustomer)
class BusinessCustomerAdmin(TokensFollowAdmin):
    list_display = ["name", "tenant", "vat_id", "billing_email", "payment_method", "is_active", "credit_blocked"]
    list_filter = ["is_active", "credit_blocked", "payment_method", "tenant"]
    search_fields = ["name", "legal_name", "vat_id", "billing_email"]
    list_select_related = ["tenant"]


@admin.register(Driver)
class DriverAdmin(TokensFollowAdmin):
    list_display = ["__str__", "email", "tenant", "business_customer", "language", "is_active", "credit_blocked"]
    list_filter = ["is_active", "credit_blocked", "language", "tenant"]
    search_fields = ["first_name", "last_name", "email", "phone"]
    list_select_related = ["tenant", "business_customer"]
    raw_id_fields = ["business_customer"]


class ContractAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Contract
        fields = [
            "tenant",
            "business_customer",
            "number",
            "valid_from",
            "valid_until",
            "priority",
            "max_session_duration",
            "max_session_energy_wh",
            "limit_action",
            "allowed_locations",
            "time_windows",
        ]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        locations = data.get("allowed_locations") or []
        if tenant is not None and any(location.tenant_id != tenant.pk for location in locations):
            self.add_error("allowed_locations", gettext("Allowed locations must belong to the contract's tenant."))
        return data


@admin.register(Contract)
class ContractAdmin(TokensFollowAdmin):
    form = ContractAdminForm
    list_display = [
        "number",
        "business_customer",
        "tenant",
        "valid_from",
        "valid_until",
        "priority",
        "max_session_duration",
        "max_session_energy_wh",
        "limit_action",
    ]
    list_filter = ["limit_action", "tenant"]
    search_fields = ["number", "business_customer__name"]
    list_select_related = ["tenant", "business_customer"]
    raw_id_fields = ["business_customer"]
    filter_horizontal = ["allowed_locations"]
    date_hierarchy = "valid_from"

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = access_for(request).tenant_ids
        if db_field.name == "allowed_locations" and ids is not None:
            kwargs["queryset"] = db_field.remote_field.model._default_manager.filter(tenant__in=ids)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class TokenImportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    file = forms.FileField(
        help_text=format_lazy(
            _("UTF-8 CSV with a header line. Columns: {columns} (uid required)."), columns=", ".join(COLUMNS)
        )
    )

    def __init__(self, *args: Any, tenants: QuerySet[Tenant], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: forms.ModelChoiceField = self.fields["tenant"]  # type: ignore[assignment]
        field.queryset = tenants
        if tenants.count() == 1:
            field.initial = tenants.first()


@admin.register(Token)
class TokenAdmin(TenantScopedAdmin):
    list_display = [
        "uid",
        "type",
        "tenant",
        "contract_id",
        "driver",
        "business_customer",
        "whitelist",
        "valid",
        "blocked",
        "expires_at",
        "source",
    ]
    list_filter = ["type", "whitelist", "valid", "blocked", "source", "tenant"]
    search_fields = ["uid", "contract_id", "visual_number", "group_id", "driver__email", "driver__last_name"]
    list_select_related = ["tenant", "driver", "business_customer"]
    raw_id_fields = ["driver", "business_customer", "business_contract"]
    readonly_fields = ["source", "created_at", "updated_at"]
    actions = ["block", "unblock"]
    change_list_template = "admin/customers/token/change_list.html"

    def save_model(self, request: HttpRequest, obj: Token, form: Any, change: bool) -> None:
        """Through the services, as the API: the change is published (roaming pushes it to CPO partners)."""
        if change:
            saved = services.token_update(token=obj, **_model_changes(obj, form, form.changed_data))
        else:
            fields = _model_changes(obj, form, list(form.cleaned_data))
            saved = services.token_create(tenant=fields.pop("tenant"), **fields)
        obj.pk, obj.updated_at = saved.pk, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Token) -> None:
        services.token_delete(token=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        for obj in queryset.order_by("pk"):
            services.token_delete(token=obj)

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = [
            path("import/", self.admin_site.admin_view(self.import_view), name="customers_token_import"),
        ]
        return urls + super().get_urls()  # type: ignore[operator]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        ids = access_for(request).writable_tenant_ids(self.write_roles)
        tenants = Tenant.objects.all() if ids is None else Tenant.objects.filter(pk__in=ids)
        form = TokenImportForm(request.POST or None, request.FILES or None, tenants=tenants)
        report = None
        if request.method == "POST" and form.is_valid():
            try:
                report = services.token_import_csv(tenant=form.cleaned_data["tenant"], file=form.cleaned_data["file"])
            except ApplicationError as exc:
                form.add_error("file", exc.message)
            else:
                level = messages.SUCCESS if not report.errors else messages.WARNING
                self.message_user(
                    request,
                    _("%(created)s tokens imported, %(failed)s rows refused.")
                    % {"created": report.created, "failed": report.failed},
                    level=level,
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Import tokens from CSV"),
            "form": form,
            "report": report,
            "columns": COLUMNS,
        }
        return TemplateResponse(request, "admin/customers/token/import.html", context)

    @admin.action(description=_("Block selected tokens"))
    def block(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._set_blocked(request, queryset, blocked=True)

    @admin.action(description=_("Unblock selected tokens"))
    def unblock(self, request: HttpRequest, queryset: QuerySet[Token]) -> None:
        self._set_blocked(request, queryset, blocked=False)

    def _set_blocked(self, request: HttpRequest, queryset: QuerySet[Token], *, blocked: bool) -> None:
        changed = 0
        for token in queryset.order_by("pk"):
            if self._can_write(request, token):
                services.token_set_blocked(token=token, blocked=blocked)
                changed += 1
        if blocked:
            text = ngettext("%(count)d token blocked.", "%(count)d tokens blocked.", changed)
        else:
            text = ngettext("%(count)d token unblocked.", "%(count)d tokens unblocked.", changed)
        self.message_user(request, text % {"count": changed})


@admin.register(Vehicle)
class VehicleAdmin(TenantScopedAdmin):
    list_display = [
        "__str__",
        "tenant",
        "driver",
        "business_customer",
        "battery_kwh",
        "ac_phases",
        "ac_max_current_a",
        "dc_max_power_w",
    ]
    list_filter = ["make", "ac_phases", "tenant"]
    search_fields = ["make", "model", "licence_plate", "vin", "driver__last_name", "business_customer__name"]
    list_select_related = ["tenant", "driver", "business_customer"]
    raw_id_fields = ["driver", "business_customer"]
