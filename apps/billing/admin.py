"""Finance's admin: invoices (PDF/Excel downloads, issue, void, credit), payments, rules and payouts."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.billing import selectors, services
from apps.billing.documents import render_invoice_xlsx
from apps.billing.lines import meter_verification_text
from apps.billing.models import (
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentEvent,
    PaymentRule,
    Payout,
    RoamingCdrReview,
)
from apps.core import admin_display as human
from apps.core.admin import AuditInline, PageTabularInline, refuse_protected
from apps.core.errors import ApplicationError
from apps.sessions import reconciliation
from apps.tenants.access import access_for
from apps.tenants.models import Role, User
from apps.tenants.scoping import TenantScopedAdmin

FINANCE = (Role.ADMIN, Role.FINANCE)


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class InvoiceLineInline(PageTabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = (
        "position",
        "session_reference",
        "location_name",
        "started_at",
        "energy_wh",
        "vat_rate",
        "total_excl_vat",
        "total_incl_vat",
        "meter_text",
    )
    readonly_fields = tuple(fields)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("Meter data verification (Eichrecht)"))
    def meter_text(self, obj: InvoiceLine) -> str:
        return meter_verification_text(obj.meter_verification)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvoiceEventInline(AuditInline):
    model = InvoiceEvent
    fields = ("at", "action", "from_status", "to_status", "actor", "detail")
    readonly_fields = tuple(fields)


DONE = {
    "issued": lambda n: ngettext("%(count)d invoice issued.", "%(count)d invoices issued.", n),
    "rendered": lambda n: ngettext("%(count)d invoice rendered.", "%(count)d invoices rendered.", n),
    "queued": lambda n: ngettext("%(count)d invoice queued for e-mail.", "%(count)d invoices queued for e-mail.", n),
}


@admin.register(Invoice)
class InvoiceAdmin(TenantScopedAdmin):
    """Read-only documents: every change goes through a service (actions), never the form."""

    write_roles = FINANCE
    list_display = [
        "__str__",
        "tenant",
        "kind",
        "status",
        "customer_name",
        "period_start",
        "total",
        "downloads",
    ]
    list_filter = ["kind", "status", "tenant"]
    search_fields = ["number", "customer_name"]
    list_select_related = ["tenant"]
    inlines = [InvoiceLineInline, InvoiceEventInline]
    actions = ["issue_selected", "render_pdfs", "send_selected"]
    readonly_fields = [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Drafts only (issued invoices are history: void or credit them), through the service."""
        return obj is not None and obj.status == InvoiceStatus.DRAFT and self._can_write(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """A draft goes with its lines (copies); anything else depending on it (a payment) keeps it."""
        refused = refuse_protected(objs, ignore=(InvoiceLine,))
        if refused is not None:
            return refused
        drafts = list(objs)
        return [str(invoice) for invoice in drafts], {"invoices": len(drafts)}, set(), []

    def delete_model(self, request: HttpRequest, obj: Invoice) -> None:
        services.invoice_delete_draft(invoice=obj, actor=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        for invoice in queryset.order_by("pk"):
            services.invoice_delete_draft(invoice=invoice, actor=_actor(request))

    @admin.display(description=_("Total incl. VAT"), ordering="total_incl_vat")
    def total(self, obj: Invoice) -> str:
        return human.money(obj.total_incl_vat, obj.currency)

    @admin.display(description=_("Downloads"))
    def downloads(self, obj: Invoice) -> str:
        if obj.status == InvoiceStatus.DRAFT:
            return "-"
        return format_html(
            '<a class="button" href="{}">PDF</a> <a class="button" href="{}">Excel</a>',
            reverse("admin:billing_invoice_pdf", args=[obj.pk]),
            reverse("admin:billing_invoice_xlsx", args=[obj.pk]),
        )

    def get_urls(self) -> list[Any]:
        return [
            path("<int:pk>/pdf/", self.admin_site.admin_view(self.pdf_view), name="billing_invoice_pdf"),
            path("<int:pk>/xlsx/", self.admin_site.admin_view(self.xlsx_view), name="billing_invoice_xlsx"),
            *super().get_urls(),
        ]

    def _visible(self, request: HttpRequest, pk: int) -> Invoice:
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        invoice = self._visible(request, pk)
        response = HttpResponse(services.invoice_pdf_bytes(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response

    def xlsx_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        invoice = self._visible(request, pk)
        response = HttpResponse(
            render_invoice_xlsx(invoice),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{invoice.number or invoice.pk}-sessions.xlsx"'
        return response

    def _each(self, request: HttpRequest, queryset: QuerySet[Invoice], apply: Any, done: str) -> None:
        access = access_for(request)
        count = 0
        for invoice in queryset.order_by("pk"):
            if not access.can_write(invoice.tenant_id, self.write_roles):
                continue
            try:
                apply(invoice)
                count += 1
            except ApplicationError as exc:
                self.message_user(request, f"{invoice}: {exc.message}", messages.WARNING)
        self.message_user(request, DONE[done](count) % {"count": count})

    @admin.action(description=_("Issue selected drafts"))
    def issue_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._each(request, queryset, lambda i: services.invoice_issue(invoice=i, actor=_actor(request)), "issued")

    @admin.action(description=_("Render PDFs of selected invoices"))
    def render_pdfs(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._each(request, queryset, lambda i: services.invoice_render_pdf(invoice=i), "rendered")

    @admin.action(description=_("E-mail selected invoices to the customers"))
    def send_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._each(request, queryset, lambda i: services.invoice_send(invoice=i, actor=_actor(request)), "queued")


class PaymentEventInline(AuditInline):
    model = PaymentEvent
    fields = ("at", "action", "from_status", "to_status", "amount", "request_id", "detail")
    readonly_fields = tuple(fields)


@admin.register(Payment)
class PaymentAdmin(TenantScopedAdmin):
    write_roles = FINANCE
    list_display = [
        "merchant_reference",
        "tenant",
        "provider",
        "status",
        "amount_authorized",
        "amount_captured",
        "currency",
        "invoice",
    ]
    list_filter = ["provider", "status"]
    search_fields = ["merchant_reference", "provider_reference", "bank_reference"]
    list_select_related = ["tenant", "invoice"]
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentEventInline]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


@admin.register(PaymentRule)
class PaymentRuleAdmin(TenantScopedAdmin):
    write_roles = FINANCE
    list_display = [
        "name",
        "tenant",
        "payer",
        "payee",
        "location",
        "platform_fee_flat",
        "platform_fee_percent",
        "is_active",
    ]
    list_filter = ["payer", "payee", "is_active"]
    search_fields = ["name", "payee_name"]
    list_select_related = ["tenant", "location"]


@admin.register(Payout)
class PayoutAdmin(TenantScopedAdmin):
    write_roles = FINANCE
    list_display = [
        "payee_name",
        "tenant",
        "period_start",
        "period_end",
        "status",
        "gross_excl_vat",
        "fee_total",
        "net_amount",
        "currency",
    ]
    list_filter = ["status"]
    list_select_related = ["tenant", "rule"]
    readonly_fields = [f.name for f in Payout._meta.fields]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


# --------------------------------------------------------------------------- roaming CDR reconciliation (eMSP)


@admin.register(RoamingCdrReview)
class RoamingCdrReviewAdmin(TenantScopedAdmin):
    """Received CDRs: the CPO's cost, our retail price and margin (from the line that bills each), and whether the
    total matches the CPO's tariff for the CDR's own volumes (why: on the CDR's page and in the CSV). Filter by
    verdict; check again or export as CSV. The margin of roaming invoice lines is here (and in the invoice API)."""

    list_display = [
        "ocpi_id",
        "review",
        "party",
        "end_date_time",
        "total_cost_excl_vat",
        "retail",
        "margin",
        "invoice",
    ]
    list_filter = ["review", "credit", "partner", "tenant"]  # no tenant column: superusers filter by it
    search_fields = ["ocpi_id", "credit_reference_id"]
    readonly_fields = [f.name for f in RoamingCdrReview._meta.fields]
    actions = ["reconcile", "export_csv"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        ids = super().get_queryset(request).values("pk")
        return selectors.partner_cdr_reconciliation_list().filter(pk__in=ids)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("operator"))
    def party(self, obj: Any) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description=_("retail excl. VAT"))
    def retail(self, obj: Any) -> Any:
        return obj.retail_excl_vat if obj.retail_excl_vat is not None else "-"

    @admin.display(description=_("margin excl. VAT"))
    def margin(self, obj: Any) -> Any:
        return obj.margin_excl_vat if obj.margin_excl_vat is not None else "-"

    @admin.display(description=_("invoice"))
    def invoice(self, obj: Any) -> str:
        return obj.invoice_number or "-"

    @admin.action(description=_("Check against the operator's tariff"))
    def reconcile(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        if not all(access_for(request).can_write(t, FINANCE) for t in {c.tenant_id for c in queryset}):
            self.message_user(request, _("Your role does not allow this action."), messages.ERROR)
            return
        for cdr in queryset.order_by("pk"):
            reconciliation.partner_cdr_reconcile(cdr=cdr)
        self.message_user(request, _("Checked."), messages.SUCCESS)

    @admin.action(description=_("Export as CSV"))
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="roaming-cdr-reconciliation.csv"'
        writer = csv.writer(response)
        for row in selectors.reconciliation_csv_rows(queryset):
            writer.writerow(row)
        return response
