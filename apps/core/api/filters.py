"""The query filter backend of every list endpoint: one name per field, and unknown parameters refused.

- A foreign key filters under the field's own name, the name the responses use (`?charge_point=12`, as
  `"charge_point": 12` in a row): an `<fk>_id` alias next to it is dropped, and a filter declared only as
  `<fk>_id` is published as `<fk>`. A tenant developer meets one spelling on every list endpoint.
- Date-time values are turned to UTC before they reach the database: an offset such as `-17:30` is valid
  ISO 8601 but outside PostgreSQL's range (a 500 found by `make api-fuzz`).
- A query parameter a list endpoint does not know (a typo, a removed alias) is a 400 naming it, instead of
  being ignored and returning everything unfiltered. Views that read parameters of their own list them in
  `extra_query_params`.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError

ALWAYS_ALLOWED = frozenset({"cursor", "page_size"})


def _foreign_keys(model: Any) -> set[str]:
    if model is None:
        return set()
    return {f.name for f in model._meta.get_fields() if f.is_relation and (f.many_to_one or f.one_to_one)}


@cache
def canonical(filterset_class: type[filters.FilterSet]) -> type[filters.FilterSet]:
    """The filterset with one name per field: `<fk>` only, never `<fk>_id` beside it (a plain column that
    happens to end in `_id`, such as OCPI's `contract_id`, keeps its name)."""
    base = dict(filterset_class.base_filters)
    relations = _foreign_keys(filterset_class._meta.model)
    renamed: dict[str, Any] = {}
    for name, declared in base.items():
        plain = name.removesuffix("_id")
        if plain != name and plain in relations:
            if plain not in base:
                renamed[plain] = declared  # published under the field's own name
            continue  # else an alias of the plain filter
        renamed[name] = declared
    subclass = type(
        filterset_class.__name__,
        (filterset_class,),
        {"__module__": filterset_class.__module__, "filter_queryset": _filter_queryset_in_utc},
    )
    subclass.base_filters = renamed  # type: ignore[attr-defined]  # set after the metaclass, which would collect the declared ones again
    return subclass


def _filter_queryset_in_utc(self: Any, queryset: Any) -> Any:
    for name, value in list(self.form.cleaned_data.items()):
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            self.form.cleaned_data[name] = value.astimezone(dt.UTC)
    return super(type(self), self).filter_queryset(queryset)


class FilterBackend(filters.DjangoFilterBackend):
    def get_filterset_class(self, view: Any, queryset: Any = None) -> Any:
        filterset_class = super().get_filterset_class(view, queryset)
        return canonical(filterset_class) if filterset_class is not None else None

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        if getattr(view, "action", None) == "list":
            filterset_class = self.get_filterset_class(view, queryset)
            known = set(ALWAYS_ALLOWED) | set(getattr(view, "extra_query_params", ()))
            if filterset_class is not None:
                known |= set(filterset_class.base_filters)
            unknown = sorted(name for name in request.query_params if name not in known)
            if unknown:
                raise ValidationError({name: ["Unknown query parameter."] for name in unknown})
        return super().filter_queryset(request, queryset, view)
