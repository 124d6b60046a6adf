"""Keyset pagination (imported by DRF's settings: keep its imports light).

DRF's cursor pagination quietly falls back to the default page size on `page_size=0` or `page_size=abc`,
answers a broken cursor with 404, and lets a cursor whose position is not a number reach the database (a
500). Here both parameters are validated: anything but a positive integer up to the maximum, or a cursor
this API did not hand out, is a 400 naming the parameter.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

MAX_PAGE_SIZE = 500


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination on the primary key (indexed, unique, stable under inserts)."""

    ordering: Any = "-id"
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = f"Number of results per page: 1 to {MAX_PAGE_SIZE} (default 50)."
    cursor_query_description = "Opaque cursor from the `next` or `previous` link of a previous page."
    # ordering field -> how a cursor position on it is read (the database must never see anything else)
    position_types: dict[str, Any] = {"id": int, "pk": int}

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param or "page_size")
        if raw is None:
            return int(self.page_size or 0)
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise ValidationError({"page_size": [f"A whole number from 1 to {MAX_PAGE_SIZE}."]})
        return int(raw)

    def decode_cursor(self, request: Request) -> Any:
        encoded = request.query_params.get(self.cursor_query_param)
        try:
            if encoded is not None:  # DRF's decoder skips characters that are not base64 ("%%%" is a cursor)
                base64.b64decode(encoded.encode("ascii"), validate=True)
            cursor = super().decode_cursor(request)
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValidationError({"cursor": ["Invalid cursor."]}) from exc
        except NotFound as exc:  # DRF's answer to a cursor it cannot decode
            raise ValidationError({"cursor": ["Invalid cursor."]}) from exc
        if cursor is not None and cursor.position is not None:
            field = str(self.ordering[0]).lstrip("-")
            reader = self.position_types.get(field, str)
            try:
                value = reader(cursor.position)
            except (TypeError, ValueError):
                raise ValidationError({"cursor": ["Invalid cursor."]}) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError({"cursor": ["Invalid cursor."]})
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50}
        return parameters


class DistanceCursorPagination(CursorPagination):
    """Nearest first: a keyset on (distance, id) when the queryset is annotated with a distance, else on id.

    The distance is `geo_chord` (the straight-line distance of the spatial index, same order as the great-circle
    one; alone when the selector orders by it alone, see `stations_near`) when present, else `distance_km`. The
    cursor holds the last distance handed out (a float, exact through its repr) and DRF's offset breaks ties."""

    position_types: dict[str, Any] = {"id": int, "pk": int, "distance_km": float, "geo_chord": float}

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> tuple[str, ...]:
        if "geo_chord" in queryset.query.annotations:
            # as the selector orders: the distance alone when the spatial index's KNN order serves it
            return ("geo_chord",) if tuple(queryset.query.order_by) == ("geo_chord",) else ("geo_chord", "id")
        if "distance_km" in queryset.query.annotations:
            return ("distance_km", "id")
        return ("id",)
