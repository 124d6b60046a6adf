from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core import admin_display as human
from apps.core.admin import AuditInline
from apps.core.errors import ApplicationError
from apps.sessions import commands, completion, console
from apps.sessions.models import (
    Cdr,
    ChargingSession,
    Reservation,
    SessionEvent,
    SessionStatus,
    TransactionAnomaly,
)
from apps.tenants.scoping import TenantScopedAdmin


class SessionEventInline(AuditInline):
    model = SessionEvent
    readonly_fields = ["from_status", "to_status", "reason", "detail", "at"]


class SuspiciousReasonFilter(admin.SimpleListFilter):
    """Suspicious sessions by the reason they were flagged for (completion.Quality, and closed_without_stop)."""

    title = _("suspicious reason")
    parameter_name = "reason"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        reasons = [*completion.QUALITY_REASONS, TransactionAnomaly.Kind.CLOSED_WITHOUT_STOP.value]
        return [(value, completion.reason_label(value)) for value in dict.fromkeys(reasons)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(suspicious_reasons__contains=[value]) if value else queryset


class PricedFilter(admin.SimpleListFilter):
    """Completed sessions that could not be priced (not billed; `pricing_error` says why)."""

    title = _("price")
    parameter_name = "priced"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("not priced")), ("yes", _("priced"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.exclude(pricing_error="")
        if self.value() == "yes":
            return queryset.filter(cost_incl_vat__isnull=False)
        return queryset


@admin.register(ChargingSession)
class ChargingSessionAdmin(TenantScopedAdmin):
    list_display = [
        "id",
        "tenant",
        "charger",
        "id_tag",
        "status",
        "started_at",
        "duration",
        "energy",
        "cost",
        "limit",
        "quality",
    ]
    list_filter = [
        "status",
        PricedFilter,
        "suspicious",
        SuspiciousReasonFilter,
        "limit_reached",
        "limit_outcome",
        "tenant",
    ]
    inlines = [SessionEventInline]
    search_fields = ["=id", "id_tag", "charge_point__identity"]
    list_select_related = ["charge_point"]
    readonly_fields = [f.name for f in ChargingSession._meta.fields]
    change_form_template = "admin/sessions/chargingsession/change_form.html"
    fieldsets = [
        (
            _("Session"),
            {
                "fields": [
                    ("id", "status"), ("tenant", "charge_point", "connector_id"),
                    ("location", "evse", "evse_connector"),
                    ("started_at", "stopped_at"), ("stop_reason", "stop_id_tag"), ("end_evidence", "end_evidence_at"),
                ]
            },
        ),
        (
            _("Driver and authorization"),
            {
                "fields": [
                    ("id_tag", "auth_status", "auth_method"), ("auth_reason", "failure_reason"), ("token", "driver"),
                    ("business_customer", "contract"), ("vehicle", "roaming_partner"), "reservation_id",
                ]
            },
        ),
        (
            _("Energy and power"),
            {
                "fields": [
                    ("meter_start_wh", "meter_stop_wh", "energy_wh"), ("last_meter_wh", "last_meter_at"),
                    ("max_power_w", "last_power_w"), ("energy_need_wh", "departure_at"),
                ]
            },
        ),
        (
            _("Limits"),
            {
                "fields": [
                    ("limit_duration", "limit_energy_wh", "limit_action"), ("limit_reached", "limit_reached_at"),
                    ("limit_outcome", "limit_command_id"),
                ]
            },
        ),
        (
            _("Price"),
            {"fields": [("tariff", "currency"), ("cost_excl_vat", "cost_incl_vat"), "pricing_error", "cdr_ocpi_id"]},
        ),
        (_("Quality"), {"classes": ["collapse"], "fields": ["flags", "suspicious", "suspicious_reasons"]}),
        (_("Stored price document"), {"classes": ["collapse"], "fields": ["cost_breakdown"]}),
        (_("Record"), {"classes": ["collapse"], "fields": [("created_at", "updated_at")]}),
    ]  # fmt: skip

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        """The page an operator reads: the fields in sections, then a chart of power / energy / SoC, the timeline,
        the cost breakdown as a table and the transaction's frames (served by the OCPP console)."""
        extra_context = dict(extra_context or {})
        session = self.get_queryset(request).filter(pk=object_id).first() if object_id.isdigit() else None
        if session is not None:
            series = console.meter_series(session)
            extra_context |= {
                "meter_series": series,
                "has_series": len(series["at"]) > 1,  # a line needs two readings
                "timeline": console.timeline(session),
                "cost_lines": console.cost_lines(session),
                "cost_currency": session.currency,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    # the list: what an operator scans for, in 1280 px (a session's page has every field)

    @admin.display(description=_("Charger"), ordering="charge_point__identity")
    def charger(self, obj: ChargingSession) -> str:
        return f"{obj.charge_point.identity} / {obj.connector_id}"

    @admin.display(description=_("Duration"))
    def duration(self, obj: ChargingSession) -> str:
        if obj.started_at is None:
            return "-"
        end = obj.stopped_at or (timezone.now() if obj.status in LIVE else None)
        return human.duration(end - obj.started_at) if end is not None else "-"

    @admin.display(description=_("Energy"), ordering="energy_wh")
    def energy(self, obj: ChargingSession) -> str:
        if obj.energy_wh is not None:
            return human.energy(obj.energy_wh)
        if obj.last_meter_wh is not None and obj.status in LIVE:
            return format_html(
                '<i title="{}">{}</i>', gettext("so far"), human.energy(obj.last_meter_wh - obj.meter_start_wh)
            )
        return "-"

    @admin.display(description=_("Cost"), ordering="cost_incl_vat")
    def cost(self, obj: ChargingSession) -> str:
        if obj.cost_incl_vat is not None:
            return human.money(obj.cost_incl_vat, obj.currency)
        if obj.pricing_error:
            return format_html('<span class="warning" title="{}">{}</span>', obj.pricing_error, gettext("not priced"))
        return "-"

    @admin.display(description=_("Limit"), ordering="limit_reached")
    def limit(self, obj: ChargingSession) -> str:
        if not obj.limit_reached:
            return "-"
        outcome = obj.get_limit_outcome_display() if obj.limit_outcome else gettext("pending")
        name = console.LIMIT_NAMES.get(obj.limit_reached)
        title = str(name) if name else f"{obj.limit_reached.capitalize()} limit reached"
        return format_html('<span title="{}">{}</span>', outcome, title)

    @admin.display(description=_("Quality"), ordering="suspicious")
    def quality(self, obj: ChargingSession) -> str:
        if not obj.suspicious:
            return ""
        reasons = ", ".join(completion.reason_label(reason) for reason in obj.suspicious_reasons) or gettext("flagged")
        return format_html('<span class="suspicious" title="{}">⚠ {}</span>', gettext("Suspicious session"), reasons)


LIVE = (SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.SUSPENDED, SessionStatus.FINISHING)


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
    actions = ["cancel_selected"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False  # reservations go through the API (ReserveNow must reach the charger)

    @admin.action(description=_("Cancel the selected reservations (CancelReservation)"), permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Reservation]) -> None:
        """Each one through the service: cancelled here at once, then CancelReservation to its charger."""
        for reservation in queryset.select_related("charge_point").order_by("pk"):
            if not self.has_change_permission(request, reservation):
                self.message_user(
                    request, _("%(reservation)s: you cannot change it.") % {"reservation": reservation}, messages.ERROR
                )
                continue
            try:
                done = commands.reservation_cancel(reservation=reservation)
            except ApplicationError as exc:
                self.message_user(request, f"{reservation}: {exc.message}", messages.WARNING)
                continue
            self.message_user(
                request,
                gettext("%(reservation)s: cancelled (%(detail)s).")
                % {"reservation": done, "detail": done.detail or gettext("not sent: it was not active on the charger")},
                messages.SUCCESS,
            )


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
