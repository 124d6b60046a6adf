"""Admin: the ops dashboard (live tiles, charts, chargers by state over WebSocket), alerts, rules, webhooks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.analytics import notifications, selectors, services, texts
from apps.analytics.models import Alert, AlertRule, Dashboard, Granularity, WebhookDelivery, WebhookSubscription
from apps.core.admin import AuditInline
from apps.tenants.access import access_for
from apps.tenants.models import Tenant
from apps.tenants.scoping import StaffPageAdmin, TenantScopedAdmin


def dashboard_scope(request: HttpRequest) -> selectors.Scope:
    access = access_for(request)
    visible = access.tenant_ids
    wanted = request.GET.get("tenant", "")
    if wanted.isdigit() and (visible is None or int(wanted) in visible):
        return selectors.Scope(frozenset({int(wanted)}))
    return selectors.Scope(None if visible is None else frozenset(visible))


def dashboard_data(request: HttpRequest, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Tiles, the last 24 hours by hour (labelled in the console's zone: the user's), and the chargers.

    The bar of the current hour adds what the running sessions metered so far, as the energy tiles do, so bars and
    tiles move together (a session's energy counts in the hour it ends once it ended). Sessions per hour are the
    ones that charged; the charging success rate (sessions that charged / sessions that ended) is shown apart, so
    refused or failed starts do not swamp the chart."""
    scope = dashboard_scope(request)
    now = now or timezone.now()
    zone = timezone.get_current_timezone()
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=24)
    points = {p["bucket"]: p for p in selectors.series(scope, granularity=Granularity.HOUR, start=start, end=end)}
    hours = [start + dt.timedelta(hours=i) for i in range(24)]
    live = selectors.live_kpis(scope, now=now, tz=zone)
    energy_wh = [points[h]["energy_wh"] if h in points else 0 for h in hours]
    energy_wh[-1] += live["active_energy_wh"]
    ended = [points[h]["sessions_ended"] if h in points else 0 for h in hours]
    charged = [points[h]["sessions_successful"] if h in points else 0 for h in hours]
    total_ended, total_charged = sum(ended), sum(charged)
    return {
        "zone": str(zone),
        "live": {k: v for k, v in live.items() if k not in ("offline_chargers", "at")}
        | {"at": now.isoformat(), "offline_chargers": [c["identity"] for c in live["offline_chargers"]]},
        "series": {
            "labels": [timezone.localtime(h, zone).strftime("%H:%M") for h in hours],
            "energy_kwh": [round(wh / 1000, 3) for wh in energy_wh],
            "sessions": [points[h]["sessions_started"] if h in points else 0 for h in hours],
            "charged": charged,
            "failed": [e - c for e, c in zip(ended, charged, strict=True)],
            "success_rate": [round(100 * c / e, 1) if e else None for e, c in zip(ended, charged, strict=True)],
        },
        "success": {
            "charged": total_charged,
            "ended": total_ended,
            "rate": round(100 * total_charged / total_ended, 1) if total_ended else None,
        },
        "chargers": [
            cp | {"url": reverse("admin:stations_chargepoint_change", args=[cp["id"]])}
            for cp in selectors.chargers_by_state(scope)
        ],
    }


@admin.register(Dashboard)
class DashboardAdmin(StaffPageAdmin):
    """The ops dashboard page; every figure is scoped to the staff user's tenants (or one chosen tenant)."""

    def get_urls(self) -> list[URLPattern]:
        data = path("data/", self.admin_site.admin_view(self.data_view), name="analytics_dashboard_data")
        return [data, *super().get_urls()]

    def data_view(self, request: HttpRequest) -> JsonResponse:
        if not self.has_view_permission(request):
            return JsonResponse({"code": "forbidden", "message": "No access.", "fields": {}}, status=403)
        return JsonResponse(dashboard_data(request))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        access = access_for(request)
        tenants = Tenant.objects.all() if access.tenant_ids is None else Tenant.objects.filter(pk__in=access.tenant_ids)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ops dashboard"),
            "opts": self.model._meta,
            "tenants": list(tenants.values("id", "name")),
            "selected_tenant": request.GET.get("tenant", ""),
            "initial": dashboard_data(request),
        }
        return TemplateResponse(request, "admin/analytics/dashboard.html", context)


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    list_display = ("kind", "tenant", "enabled", "threshold_minutes", "power_margin_percent")
    list_filter = ("kind", "enabled")


@admin.action(description=_("Acknowledge the selected alerts"))
def acknowledge(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
    for alert in queryset:
        services.alert_acknowledge(alert=alert, user=request.user, comment="acknowledged in admin")
    count = queryset.count()
    modeladmin.message_user(
        request,
        ngettext("%(count)d alert acknowledged.", "%(count)d alerts acknowledged.", count) % {"count": count},
        messages.SUCCESS,
    )


@admin.register(Alert)
class AlertAdmin(TenantScopedAdmin):
    list_display = (
        "opened_at",
        "kind",
        "subject",
        "status",
        "message_text",
        "occurrences",
        "resolved_at",
        "acknowledged_at",
    )
    list_filter = ("status", "kind", ("acknowledged_at", admin.EmptyFieldListFilter), "tenant")
    search_fields = ("subject", "message")
    date_hierarchy = "opened_at"
    actions = [acknowledge]
    fields = (
        "tenant",
        "kind",
        "subject",
        "status",
        "message_text",
        "details",
        "occurrences",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
        "ack_comment",
    )
    readonly_fields = fields[:-1]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    @admin.display(description=_("Message"), ordering="message")
    def message_text(self, obj: Alert) -> str:
        return texts.alert_message(obj)

    def save_model(self, request: HttpRequest, obj: Alert, form: Any, change: bool) -> None:
        services.alert_acknowledge(alert=obj, user=request.user, comment=obj.ack_comment)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(TenantScopedAdmin):
    list_display = ("name", "tenant", "url", "is_active")
    readonly_fields = ("secret",)


@admin.action(description=_("Replay the selected deliveries"))
def replay(modeladmin: Any, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
    for delivery in queryset:
        notifications.webhook_delivery_replay(delivery=delivery)
    count = queryset.count()
    modeladmin.message_user(
        request,
        ngettext("%(count)d delivery replayed.", "%(count)d deliveries replayed.", count) % {"count": count},
        messages.SUCCESS,
    )


class AttemptInline(AuditInline):
    from apps.analytics.models import DeliveryAttempt

    model = DeliveryAttempt
    readonly_fields = ("number", "at", "status_code", "latency_ms", "error", "succeeded", "replay")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    list_display = ("created_at", "subscription", "event", "status", "attempts", "last_status_code", "delivered_at")
    list_filter = ("status", "subscription")
    actions = [replay]
    inlines = [AttemptInline]
    readonly_fields = (
        "tenant",
        "subscription",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
    )

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False
