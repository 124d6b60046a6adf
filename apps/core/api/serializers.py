"""Serializer bases: strict input (unknown fields are an error) and the documented error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions, serializers


class ErrorSerializer(serializers.Serializer[Any]):
    """The one error shape (documentation only)."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(), help_text="Per-field messages, keyed by field name (nested for nested input)."
    )


class StrictSerializerMixin:
    """Reject fields the serializer does not know, instead of silently ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = set(self.fields)  # type: ignore[attr-defined]
            unknown = sorted(str(key) for key in data if key not in known)
            if unknown:
                raise exceptions.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer[Any]):
    pass


class StrictSerializer(StrictSerializerMixin, serializers.Serializer[Any]):
    pass
