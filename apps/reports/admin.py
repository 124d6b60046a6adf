"""Export jobs in the ops console: start an export (the add page), watch its progress (the list and the
detail page refresh themselves while an export is queued or running), download or cancel it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.customers.models import BusinessCustomer, Driver
from apps.reports import selectors, services
from apps.reports.models import EXPORT_ACTIVE, ExportJob, ExportStatus
from apps.sessions.models import SessionStatus
from apps.stations.models import ChargePoint, Location
from apps.tenants.models import Role, Tenant
from apps.tenants.scoping import TenantScopedAdmin, access_for

REFRESH_SECONDS = 3


class ExportJobAddForm(forms.ModelForm):  # type: ignore[type-arg]
    locations = forms.ModelMultipleChoiceField(queryset=Location.objects.none(), required=False)
    charge_points = forms.ModelMultipleChoiceField(queryset=ChargePoint.objects.none(), required=False)
    business_customers = forms.ModelMultipleChoiceField(queryset=BusinessCustomer.objects.none(), required=False)
    drivers = forms.ModelMultipleChoiceField(queryset=Driver.objects.none(), required=False)
    session_statuses = forms.MultipleChoiceField(choices=SessionStatus.choices, required=False)
    roaming_partners = forms.CharField(
        required=False, help_text=_('Roaming partner ids separated by spaces ("DE*ABC"); "-" for the own network.')
    )

    class Meta:
        model = ExportJob
        fields = ["tenant", "format", "csv_separator", "date_from", "date_to"]

    def __init__(self, *args: Any, tenant_ids: set[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, model in (
            ("locations", Location),
            ("charge_points", ChargePoint),
            ("business_customers", BusinessCustomer),
            ("drivers", Driver),
        ):
            queryset = model._default_manager.all()  # type: ignore[attr-defined]
            if tenant_ids is not None:
                queryset = queryset.filter(tenant__in=tenant_ids)
            self.fields[name].queryset = queryset  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        tenant: Tenant | None = data.get("tenant")
        for name in ("locations", "charge_points", "business_customers", "drivers"):
            if tenant is not None and any(row.tenant_id != tenant.pk for row in data.get(name) or []):
                self.add_error(name, gettext("Choose rows of the export's tenant."))
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_to <= date_from:
            self.add_error("date_to", gettext("Must be after the start of the range."))
        partners = (data.get("roaming_partners") or "").split()
        bad = [p for p in partners if p != services.OWN_NETWORK and not services.ROAMING_PARTNER.fullmatch(p)]
        if bad:
            self.add_error(
                "roaming_partners", gettext("Not a roaming partner id: %(ids)s (use DE*ABC).") % {"ids": ", ".join(bad)}
            )
        return data


def _started_by_admin(form: ExportJobAddForm) -> dict[str, Any]:
    data = form.cleaned_data
    return {
        "tenant": data["tenant"],
        "format": data["format"],
        "csv_separator": data["csv_separator"],
        "date_from": data.get("date_from"),
        "date_to": data.get("date_to"),
        "location_ids": [row.pk for row in data.get("locations") or []],
        "charge_point_ids": [row.pk for row in data.get("charge_points") or []],
        "business_customer_ids": [row.pk for row in data.get("business_customers") or []],
        "driver_ids": [row.pk for row in data.get("drivers") or []],
        "statuses": list(data.get("session_statuses") or []),
        "roaming_partners": (data.get("roaming_partners") or "").split(),
    }


@admin.register(ExportJob)
class ExportJobAdmin(TenantScopedAdmin):
    write_roles = (Role.ADMIN, Role.OPERATIONS, Role.FINANCE)
    list_display = [
        "id",
        "tenant",
        "format",
        "status",
        "progress",
        "size",
        "duration",
        "personal_data",
        "requested_by",
        "created_at",
    ]
    list_filter = ["status", "format", "tenant"]
    list_select_related = ["tenant", "requested_by"]
    actions = ["cancel_exports"]
    change_list_template = "admin/reports/exportjob/change_list.html"
    change_form_template = "admin/reports/exportjob/change_form.html"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            tenant_ids = access_for(request).tenant_ids
            kwargs["form"] = ExportJobAddForm
            form_class = super().get_form(request, obj, change, **kwargs)

            class ScopedForm(form_class):  # type: ignore[valid-type,misc]
                def __init__(self, *args: Any, **inner: Any) -> None:
                    super().__init__(*args, tenant_ids=tenant_ids, **inner)

            return ScopedForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [
                "tenant",
                "format",
                "csv_separator",
                "date_from",
                "date_to",
                "locations",
                "charge_points",
                "business_customers",
                "drivers",
                "session_statuses",
                "roaming_partners",
            ]
        names: list[Any] = [f.name for f in ExportJob._meta.fields if f.name != "id"]
        return [*names, "progress", "size", self._download(request)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.get_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # files go with the retention clean-up (reports.purge_exports)

    def save_model(self, request: HttpRequest, obj: ExportJob, form: Any, change: bool) -> None:
        if change:
            return
        values = _started_by_admin(form)
        job = services.export_job_create(
            requested_by=request.user,  # type: ignore[arg-type]
            personal_data=selectors.may_see_personal_data(access_for(request), values["tenant"].pk),
            requested_via="admin",
            **values,
        )
        obj.pk = job.pk
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # the filters are stored by the service

    # --------------------------------------------------------------- display

    @admin.display(description=_("progress"))
    def progress(self, obj: ExportJob) -> str:
        if obj.status == ExportStatus.QUEUED:
            return "queued"
        total = f"{obj.rows_total:,}" if obj.rows_total is not None else "?"
        percent = obj.progress_percent
        return f"{obj.rows_done:,} of {total}" + (f" ({percent}%)" if percent is not None else "")

    @admin.display(description=_("file size"))
    def size(self, obj: ExportJob) -> str:
        return filesizeformat(obj.file_size) if obj.file_size is not None else "-"

    def _download(self, request: HttpRequest) -> Any:
        """The file link column, bound to this request (the admin instance is shared between threads)."""
        cached = getattr(request, "_export_download_column", None)
        if cached is not None:
            return cached
        access = access_for(request)

        @admin.display(description=_("file"))
        def download(obj: ExportJob) -> str:
            if obj.status != ExportStatus.DONE or not obj.file_name:
                return "-"
            if obj.personal_data and not selectors.may_see_personal_data(access, obj.tenant_id):
                return gettext("personal data: not for your role")
            token, _expires = services.export_download_link(job=obj)
            return format_html(
                '<a href="{}">{}</a>', reverse("export-file", kwargs={"token": token}), gettext("download")
            )

        request._export_download_column = download  # type: ignore[attr-defined]
        return download

    def get_list_display(self, request: HttpRequest) -> Any:
        """The file link next to the status, where it is seen without scrolling."""
        columns = list(super().get_list_display(request))
        columns.insert(columns.index("status") + 1, self._download(request))
        return columns

    # --------------------------------------------------------------- live refresh and actions

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        active = self.get_queryset(request).filter(status__in=EXPORT_ACTIVE).exists()
        context = {**(extra_context or {}), "refresh_seconds": REFRESH_SECONDS if active else None}
        return super().changelist_view(request, context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        self._ensure_visible(request, object_id)
        active = ExportJob.objects.filter(pk=object_id, status__in=EXPORT_ACTIVE).exists()
        context = {**(extra_context or {}), "refresh_seconds": REFRESH_SECONDS if active else None}
        return super().change_view(request, object_id, form_url, context)

    @admin.action(description=_("Cancel selected exports"))
    def cancel_exports(self, request: HttpRequest, queryset: QuerySet[ExportJob]) -> None:
        access = access_for(request)
        cancelled = 0
        for job in queryset.filter(status__in=EXPORT_ACTIVE).order_by("pk"):
            if not access.can_write(job.tenant_id, self.write_roles):
                continue
            try:
                services.export_job_cancel(job=job)
                cancelled += 1
            except ApplicationError:
                continue
        self.message_user(
            request,
            ngettext("Cancelled %(count)d export.", "Cancelled %(count)d exports.", cancelled) % {"count": cancelled},
            messages.SUCCESS,
        )
