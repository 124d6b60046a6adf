"""Kernel admin: the event outbox (platform superusers only: rows of every tenant, subscribers' tracebacks)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core import events, outbox
from apps.core.models import OutboxDelivery


class _ChoicesFilter(admin.SimpleListFilter):
    """A filter whose choices come from the code, not from a DISTINCT over a table of a million rows."""

    def choices_from_code(self) -> list[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, value) for value in self.choices_from_code()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset


class EventTypeFilter(_ChoicesFilter):
    title = "event type"
    parameter_name = "event_type"

    def choices_from_code(self) -> list[str]:
        return sorted(events.Event.types)


class SubscriberFilter(_ChoicesFilter):
    title = "subscriber"
    parameter_name = "subscriber"

    def choices_from_code(self) -> list[str]:
        return sorted({path for paths in events.SUBSCRIBERS.values() for path in paths})


@admin.register(OutboxDelivery)
class OutboxDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only view of the outbox: what is pending, what failed and why, what was dead-lettered. "Retry" puts
    dead-lettered rows back in line."""

    list_display = (
        "id",
        "created_at",
        "event_type",
        "subject",
        "subscriber",
        "state",
        "attempts",
        "available_at",
        "delivered_at",
    )
    list_filter = ("state", EventTypeFilter, SubscriberFilter)
    search_fields = ("=subject",)
    ordering = ("-id",)
    show_full_result_count = False
    actions = ["retry"]
    readonly_fields = (
        "created_at",
        "event_type",
        "subject",
        "subscriber",
        "tenant_id",
        "payload",
        "state",
        "attempts",
        "available_at",
        "delivered_at",
        "last_error",
    )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # beat's core.outbox_purge deletes past the retention

    @admin.action(description="Retry the selected dead-lettered deliveries")
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboxDelivery]) -> None:
        count = outbox.retry_dead(ids=list(queryset.values_list("pk", flat=True)))
        messages.success(request, f"{count} dead-lettered deliveries queued again.")

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # the action is for superusers, who alone see this page; change permission is off for everyone
        actions = super().get_actions(request)
        return actions if request.user.is_superuser else {}
