"""Admin building blocks shared by every app (nothing is registered here).

- `refuse_protected`: the admin's delete view and "delete selected" action list what depends on each object
  (counted, see `apps.core.deletion`) instead of deleting it;
- `protect_inline_deletes`: an inline formset whose deleted rows have dependents is invalid, with the same message;
- `AuditInline`: an inline of audit rows, read-only for every user (no add, change or delete).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest

from apps.core.deletion import dependents, describe


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
                    raise ValidationError(describe(form.instance, counts) + " It cannot be deleted.", code="protected")
            super().clean()

    ProtectedFormSet.__name__ = formset.__name__
    return ProtectedFormSet


class AuditInline(admin.TabularInline):  # type: ignore[type-arg]
    """Audit rows shown under their parent: read-only for every user, superusers included."""

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

    title = "service"
    parameter_name = "decommissioned"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "In service"), ("yes", "Decommissioned")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in ("yes", "no"):
            return queryset.filter(decommissioned_at__isnull=self.value() == "no")
        return queryset
