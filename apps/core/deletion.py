"""What keeps a row from being deleted, counted per kind, and the one refusal every delete path gives.

Django enforces `on_delete=PROTECT` by loading every protected row; on a location with a year of sessions that
is millions of rows for a "no". Here the same walk is done with COUNT queries: the relations a delete would
cascade through are followed (as subqueries), and the PROTECT/RESTRICT relations met on the way are counted
once per model. The API (`TenantScopedViewSet.perform_destroy`), the admin (delete view, "delete selected",
inlines) and services call `ensure_deletable` before they delete.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import models
from django.db.models import Q
from django.db.models.deletion import get_candidate_relations_to_delete
from django.utils.formats import number_format
from django.utils.text import capfirst
from django.utils.translation import gettext

from apps.core.errors import Conflict

MAX_CASCADE_DEPTH = 6  # deeper trees (a grid node's children) stop here; the database constraints still hold


def _blocking(on_delete: Any) -> bool:
    return on_delete in (models.PROTECT, models.RESTRICT)


def dependents(obj: models.Model) -> dict[type[models.Model], int]:
    """Rows that would keep `obj` from being deleted, counted per model (empty: it may be deleted)."""
    model = type(obj)._meta.concrete_model
    assert model is not None
    filters: dict[type[models.Model], list[Q]] = defaultdict(list)

    def walk(current: type[models.Model], rows: Any, depth: int) -> None:
        for relation in get_candidate_relations_to_delete(current._meta):
            field: Any = relation.field  # type: ignore[attr-defined]  # a reverse relation: the FK pointing here
            related: type[models.Model] = field.model
            condition = Q(**{f"{field.name}__in": rows})
            on_delete = field.remote_field.on_delete
            if _blocking(on_delete):
                filters[related].append(condition)
            elif on_delete is models.CASCADE and depth < MAX_CASCADE_DEPTH:
                walk(related, related._base_manager.filter(condition).values("pk"), depth + 1)

    walk(model, model._base_manager.filter(pk=obj.pk).values("pk"), 0)
    counts: dict[type[models.Model], int] = {}
    for related, conditions in filters.items():
        condition = conditions[0]
        for other in conditions[1:]:
            condition |= other
        count = related._base_manager.filter(condition).count()
        if count:
            counts[related] = count
    return counts


def name_of(obj: models.Model) -> str:
    return gettext("%(kind)s %(pk)s") % {"kind": capfirst(str(obj._meta.verbose_name)), "pk": obj.pk}


def count_text(model: type[models.Model], count: int) -> str:
    name = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
    return f"{number_format(count, force_grouping=True)} {name}"


def describe(obj: models.Model, counts: dict[type[models.Model], int]) -> str:
    """'Location 12 has 338 charging sessions and 2 charge points.'"""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]._meta.verbose_name)))
    parts = [count_text(model, count) for model, count in ordered]
    if len(parts) == 1:
        listed = parts[0]
    else:
        listed = gettext("%(first)s and %(last)s") % {"first": ", ".join(parts[:-1]), "last": parts[-1]}
    return gettext("%(object)s has %(dependents)s.") % {"object": name_of(obj), "dependents": listed}


def cannot_delete(obj: models.Model, counts: dict[type[models.Model], int], *, instead: str = "") -> str:
    """The sentence shown when `obj` has dependents: what depends on it, and what to do instead, if anything."""
    described = describe(obj, counts)
    if not instead:
        return gettext("%(described)s It cannot be deleted.") % {"described": described}
    message = gettext("%(described)s It cannot be deleted; %(instead)s") % {"described": described, "instead": instead}
    return message if message.endswith(".") else message + "."


class DeletionProtected(Conflict):
    """409 `protected`: the message names what depends on the object, `fields.dependents` counts it per kind
    (model label: count), and `fields.instead` says what to do instead, where there is something."""

    def __init__(self, obj: models.Model, counts: dict[type[models.Model], int], *, instead: str = "") -> None:
        message = cannot_delete(obj, counts, instead=instead)
        fields: dict[str, Any] = {
            "dependents": {model._meta.label_lower: count for model, count in sorted(counts.items(), key=str)},
        }
        if instead:
            fields["instead"] = instead
        super().__init__(message, code="protected", fields=fields)
        self.counts = counts


def ensure_deletable(obj: models.Model, *, instead: str = "", ignore: tuple[type[models.Model], ...] = ()) -> None:
    """Raise `DeletionProtected` (409) when anything depends on `obj`. `ignore`: kinds of rows the caller deletes
    itself first (a draft invoice's lines)."""
    counts = {model: count for model, count in dependents(obj).items() if model not in ignore}
    if counts:
        raise DeletionProtected(obj, counts, instead=instead)
