"""Serializer bases: strict input (unknown fields are an error) and the documented error shape."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, serializers
from rest_framework.relations import ManyRelatedField

LIST_FIELDS = (serializers.ListField, serializers.ListSerializer, ManyRelatedField, serializers.MultipleChoiceField)


def max_list_items() -> int:
    return int(getattr(settings, "API_MAX_LIST_ITEMS", 1000))


def list_cap(field: Any) -> int | None:
    """How many items a list-valued input field takes (its own max_length, else API_MAX_LIST_ITEMS)."""
    if not isinstance(field, LIST_FIELDS):
        return None
    own = getattr(field, "max_length", None)
    return int(own) if own is not None else max_list_items()


class ErrorSerializer(serializers.Serializer[Any]):
    """The one error shape (documentation only)."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), help_text="Per-field messages, keyed by field name (nested for nested input)."
    )


class StrictSerializerMixin:
    """Reject fields the serializer does not know, instead of silently ignoring them; refuse a list longer than
    its field takes before converting a single item (a 1.2M-id list used to take seconds and pass)."""

    def get_fields(self) -> Any:
        fields = super().get_fields()  # type: ignore[misc]
        for field in fields.values():
            if isinstance(field, serializers.ListField) and field.max_length is None and not field.read_only:
                field.max_length = max_list_items()  # documented as maxItems by drf-spectacular
        return fields

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            fields = self.fields  # type: ignore[attr-defined]
            unknown = sorted(str(key) for key in data if key not in fields)
            if unknown:
                raise exceptions.ValidationError({name: ["Unknown field."] for name in unknown})
            too_long = {}
            for name, value in data.items():
                cap = list_cap(fields[name])
                if cap is not None and isinstance(value, list) and len(value) > cap:
                    too_long[name] = [f"Ensure this field has no more than {cap} elements."]
            if too_long:
                raise exceptions.ValidationError(too_long)
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer[Any]):
    def include_extra_kwargs(
        self, kwargs: MutableMapping[str, Any], extra_kwargs: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Read-only choice fields keep `allow_blank` of a `blank=True` model field, so the schema's enum lists
        the "" the API really returns (DRF drops it for read-only fields)."""
        allow_blank = kwargs.get("allow_blank", False)
        kwargs = super().include_extra_kwargs(kwargs, extra_kwargs)
        if allow_blank and "choices" in kwargs:
            kwargs["allow_blank"] = True
        return kwargs


class StrictSerializer(StrictSerializerMixin, serializers.Serializer[Any]):
    pass
