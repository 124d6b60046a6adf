"""OpenAPI generation defaults."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from apps.core.api.serializers import ErrorSerializer


class AutoSchema(SpectacularAutoSchema):
    """Adds the shared error responses to every operation, so clients see the one error shape."""

    error_statuses = ("400", "401", "403", "404")

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        for status in self.error_statuses:
            if status == "400" and self.method in ("GET", "HEAD", "DELETE") and not self._is_list_view():
                continue
            if status == "404" and self._is_create_operation():
                continue
            responses.setdefault(status, self._get_response_for_code(ErrorSerializer, status, direction=direction))
        return responses
