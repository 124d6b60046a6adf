"""OpenAPI generation: the schema tells a tenant developer the truth about every operation.

`AutoSchema` (every view's schema class) adds, from what the platform really does:
- the error responses in the one shape, for every status an operation can answer: 400 (input: a body or
  query parameters), 401/403 (every operation), 404 (anything addressed by id, and lookups), 409 (every
  write: conflicts and integrity errors), 413 and 415 (every operation with a body);
- `additionalProperties: false` on request bodies of strict serializers (they refuse unknown fields);
- the API-key scope an operation needs, as `x-required-scopes` and in the description;
- a summary per operation; `time` fields as the `HH:MM[:SS]` they really are (no UTC offset).

`postprocess` (a drf-spectacular postprocessing hook) adds what needs the whole document: `maxItems` on
every request array, an example per error response, and OpenAPI links for the stateful flows (a created
object -> its detail operations; a remote start -> its command and session).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

from apps.core.api.middleware import STATUS_CODES
from apps.core.api.serializers import ErrorSerializer, StrictSerializerMixin, max_list_items

SAFE = ("GET", "HEAD", "OPTIONS")
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
ACTION_VERBS = {
    "list": "List",
    "retrieve": "Get",
    "create": "Create",
    "update": "Replace",
    "partial_update": "Update",
    "destroy": "Delete",
}


def _humanize(name: str) -> str:
    return re.sub(r"[_-]+", " ", name).strip()


class AutoSchema(SpectacularAutoSchema):
    def _has_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    def _has_path_parameters(self) -> bool:
        return "{" in self.path

    def error_statuses(self, operation: dict[str, Any]) -> list[str]:
        statuses = ["401", "403"]
        if self._has_body() or any(p.get("in") == "query" for p in operation.get("parameters", [])):
            statuses.append("400")
        if self._has_path_parameters() or not self._is_create_operation():
            statuses.append("404")
        if self.method not in SAFE:
            statuses.append("409")
        if self._has_body():
            statuses += ["413", "415"]
        return statuses

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in self.error_statuses(operation):
            responses.setdefault(status, self._get_response_for_code(ErrorSerializer, status, direction="response"))
            responses[status].setdefault("description", STATUS_CODES.get(int(status), ("", ""))[1])
        scopes = self.required_scopes()
        if scopes:
            operation["x-required-scopes"] = scopes
            note = "Required API-key scope: " + " or ".join(f"`{s}`" for s in scopes) + " (or `*`)."
            operation["description"] = (operation.get("description", "") + "\n\n" + note).strip()
        if self.superuser_only():
            operation["description"] += " Platform superusers only (API keys and staff get 403)."
        return operation

    def required_scopes(self) -> list[str]:
        area = getattr(self.view, "scope_area", None)
        if area is None:
            return []
        if self.method in SAFE:
            return [f"{area}:read", f"{area}:write"]
        return [f"{area}:write"]

    def superuser_only(self) -> bool:
        action = getattr(self.view, "action", None)
        return action is not None and action in getattr(self.view, "superuser_only_actions", ())

    def get_summary(self) -> str | None:
        summary = super().get_summary()
        if summary:
            return summary
        action = getattr(self.view, "action", None)
        model = getattr(getattr(getattr(self.view, "queryset", None), "model", None), "_meta", None)
        noun = str(model.verbose_name) if model is not None else _humanize(self.path.rstrip("/").split("/")[-1])
        plural = str(model.verbose_name_plural) if model is not None else noun
        if action in ACTION_VERBS:
            return f"{ACTION_VERBS[action]} {plural if action == 'list' else noun}".capitalize()
        if action:
            return f"{_humanize(action).capitalize()} ({noun})"
        doc = (self.get_description() or "").strip().splitlines()
        if doc and doc[0]:
            return doc[0].rstrip(".")[:120]
        return f"{self.method.capitalize()} {_humanize(self.path.rstrip('/').split('/')[-1])}"

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        # (a serializer without fields documents no body at all, so it gets no component to mark)
        if direction == "request" and isinstance(serializer, StrictSerializerMixin) and schema.get("properties"):
            schema["additionalProperties"] = False
        return schema

    def _map_serializer_field(self, field: Any, direction: Any, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            del schema["format"]
            schema["pattern"] = TIME_PATTERN
            schema.setdefault("example", "08:30:00")
            schema["description"] = (
                schema.get("description", "") + " Local time of day, HH:MM[:SS] (no UTC offset)."
            ).strip()
        return schema


# --------------------------------------------------------------------------- postprocessing hook


def _walk_request_arrays(node: Any, cap: int) -> None:
    if isinstance(node, dict):
        if node.get("type") == "array" and "maxItems" not in node and not node.get("readOnly"):
            node["maxItems"] = cap
        for value in node.values():
            _walk_request_arrays(value, cap)
    elif isinstance(node, list):
        for value in node:
            _walk_request_arrays(value, cap)


def _error_example(status: str) -> dict[str, Any]:
    code, message = STATUS_CODES.get(int(status), ("error", "The request failed."))
    fields: dict[str, Any] = {}
    if status == "400":
        code, message, fields = (
            "validation_error",
            "name: This field is required.",
            {"name": ["This field is required."]},
        )
    return {"code": code, "message": message, "fields": fields}


def _operation_ids(paths: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (path, method): operation["operationId"]
        for path, item in paths.items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def _links_to(ops: dict[tuple[str, str], str], detail: str, source: str, prefix: str) -> dict[str, Any]:
    """Links from a response holding an id (at `source`) to every operation on the detail path."""
    links = {}
    for (path, _method), operation_id in sorted(ops.items()):
        if path == detail or (path.startswith(detail) and path.count("{") == 1):
            links[f"{prefix}{operation_id}"] = {
                "operationId": operation_id,
                "parameters": {"id": f"$response.body#/{source}"},
            }
    return links


def postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    paths: dict[str, Any] = result.get("paths", {})
    ops = _operation_ids(paths)
    cap = max_list_items()
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _walk_request_arrays(component, cap)
    for path, item in paths.items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            body = operation.get("requestBody", {})
            for content in body.get("content", {}).values():
                _walk_request_arrays(content.get("schema"), cap)
            for status, response in operation.get("responses", {}).items():
                if status >= "400":
                    for content in response.get("content", {}).values():
                        content.setdefault("examples", {status: {"value": _error_example(status)}})
            # stateful flows: a created object -> its detail operations; a started session -> command, session
            if method == "post" and not path.endswith("}/"):
                for status in ("201", "202"):
                    if status not in operation.get("responses", {}):
                        continue
                    response = operation["responses"][status]
                    properties = _response_properties(result, response)
                    links: dict[str, Any] = {}
                    if "id" in properties and f"{path}{{id}}/" in paths:
                        links.update(_links_to(ops, f"{path}{{id}}/", "id", ""))
                    for field, target in (
                        ("command_id", "/api/v1/commands/{id}/"),
                        ("session_id", "/api/v1/driver/sessions/{id}/"),
                    ):
                        if field in properties and target in paths:
                            links.update(_links_to(ops, target, field, f"{field}_"))
                    if links:
                        response["links"] = links
    return result


def _response_properties(result: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = result.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    return dict(schema.get("properties", {}))
