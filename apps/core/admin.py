"""Admin building blocks shared by every app (nothing is registered here).

- `refuse_protected`: the admin's delete view and "delete selected" action list what depends on each object
  (counted, see `apps.core.deletion`) instead of deleting it;
- `protect_inline_deletes`: an inline formset whose deleted rows have dependents is invalid, with the same message;
- `AuditInline`: an inline of audit rows, read-only for every user (no add, change or delete).

Registered here: the event outbox (platform superusers only: rows of every tenant, subscribers' tracebacks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.core import events, outbox
from apps.core.admin_display import label_formfield
from apps.core.deletion import cannot_delete, dependents, describe
from apps.core.models import OutboxDelivery


def protected_messages(
    objs: Iterable[models.Model], *, instead: str = "", ignore: tuple[type[models.Model], ...] = ()
) -> list[str]:
    """One line per object that cannot be deleted, naming its dependents (empty: all may be deleted)."""
    found = []
    for obj in objs:
        counts = {model: count for model, count in dependents(obj).items() if model not in ignore}
        if counts:
            found.append(describe(obj, counts) + (f" {instead}" if instead else ""))
    return found


def refuse_protected(
    objs: Any, *, instead: str = "", ignore: tuple[type[models.Model], ...] = ()
) -> tuple[list[Any], dict[str, int], set[str], list[str]] | None:
    """`ModelAdmin.get_deleted_objects` for objects with dependents: nothing to delete, everything protected.
    None when every object may be deleted (the caller falls back to Django's own listing)."""
    protected = protected_messages(objs, instead=instead, ignore=ignore)
    if protected:
        return [], {}, set(), protected
    return None


def protect_inline_deletes(formset: type[Any]) -> type[Any]:
    """A formset class whose `clean` refuses to delete rows that have dependents, counted (Django's own check loads
    and lists every protected row)."""

    class ProtectedFormSet(formset):  # type: ignore[misc,valid-type]
        def clean(self) -> None:
            # before Django's own check (run from `validate_unique` in super().clean()), which loads every
            # protected row to list it
            for form in self.deleted_forms:
                if form.instance.pk is None:
                    continue
                counts = dependents(form.instance)
                if counts:
                    raise ValidationError(cannot_delete(form.instance, counts), code="protected")
            super().clean()

    ProtectedFormSet.__name__ = formset.__name__
    return ProtectedFormSet


class PagePermissionInline(admin.options.InlineModelAdmin):  # type: ignore[type-arg]
    """An inline seen and edited as its page is: the page's admin decides (the tenant role and scoping of
    `TenantScopedAdmin`), not Django's per-model permissions, which tenant staff do not hold (they saw no EVSEs on
    a charge point and no lines on an invoice). `obj` is the page's object, already scoped by the page."""

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return label_formfield(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def _page_admin(self) -> Any:
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self._page_admin().has_view_permission(request, obj))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self._page_admin().has_change_permission(request, obj))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self._page_admin().has_change_permission(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(self._page_admin().has_change_permission(request, obj))


class PageTabularInline(PagePermissionInline, admin.TabularInline):  # type: ignore[type-arg]
    pass


class AuditInline(PageTabularInline):
    """Audit rows shown under their parent, to whoever sees the page: read-only for every user, superusers
    included."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DecommissionedListFilter(admin.SimpleListFilter):
    """In service / decommissioned (a `decommissioned_at` column); the admin lists both unless filtered."""

    title = _("service")
    parameter_name = "decommissioned"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("In service")), ("yes", _("Decommissioned"))]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in ("yes", "no"):
            return queryset.filter(decommissioned_at__isnull=self.value() == "no")
        return queryset


# --------------------------------------------------------------------------- the event outbox


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
    title = _("event type")
    parameter_name = "event_type"

    def choices_from_code(self) -> list[str]:
        return sorted(events.Event.types)


class SubscriberFilter(_ChoicesFilter):
    title = _("subscriber")
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

    @admin.action(description=_("Retry the selected dead-lettered deliveries"))
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboxDelivery]) -> None:
        count = outbox.retry_dead(ids=list(queryset.values_list("pk", flat=True)))
        messages.success(
            request,
            ngettext(
                "%(count)d dead-lettered delivery queued again.",
                "%(count)d dead-lettered deliveries queued again.",
                count,
            )
            % {"count": count},
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # the action is for superusers, who alone see this page; change permission is off for everyone
        actions = super().get_actions(request)
        return actions if request.user.is_superuser else {}
