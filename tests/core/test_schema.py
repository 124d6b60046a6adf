"""The OpenAPI schema generates with zero warnings and errors, and the docs are served."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client


def test_schema_generates_without_warnings(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    # --fail-on-warn turns every drf-spectacular warning or error into a failure
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", f"{tmp_path}/schema.yaml")

    captured = capsys.readouterr()
    assert "Warning" not in captured.err, captured.err
    assert "Error" not in captured.err, captured.err


@pytest.mark.django_db
def test_schema_and_swagger_ui_are_served(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    assert "/api/v1/tenants/" in body["paths"]
    assert "Error" in body["components"]["schemas"]
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


# --------------------------------------------------------------------------- the schema tells the truth


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-any-return]


def operations(schema: dict[str, object]) -> list[tuple[str, str, dict[str, object]]]:
    paths: dict[str, dict[str, dict[str, object]]] = schema["paths"]  # type: ignore[assignment]
    return [
        (path, method, op)
        for path, item in paths.items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_operation_has_a_summary_and_its_required_scopes(schema: dict[str, object]) -> None:
    missing_summary = [f"{m} {p}" for p, m, op in operations(schema) if not op.get("summary")]
    missing_scopes = [
        f"{m} {p}"
        for p, m, op in operations(schema)
        if not op.get("x-required-scopes") and p != "/api/v1/payment-notifications/fiserv/"
    ]

    assert missing_summary == []
    assert missing_scopes == []
    locations_post = schema["paths"]["/api/v1/locations/"]["post"]  # type: ignore[index]
    assert locations_post["summary"] == "Create location"
    assert locations_post["x-required-scopes"] == ["stations:write"]
    assert "Required API-key scope: `stations:write` (or `*`)." in locations_post["description"]
    assert schema["paths"]["/api/v1/locations/"]["get"]["x-required-scopes"] == ["stations:read", "stations:write"]  # type: ignore[index]


def test_every_operation_documents_the_errors_it_can_answer(schema: dict[str, object]) -> None:
    problems = []
    for path, method, op in operations(schema):
        responses: dict[str, dict[str, object]] = op["responses"]  # type: ignore[assignment]
        wanted = {"401", "403"}
        if method != "get":
            wanted.add("409")
        if "requestBody" in op:
            wanted |= {"400", "413", "415"}
        if "{" in path:
            wanted.add("404")
        missing = wanted - set(responses)
        if missing:
            problems.append(f"{method} {path}: {sorted(missing)}")
        for status, response in responses.items():
            if status >= "400":
                content = response["content"]["application/json"]  # type: ignore[index]
                if content["schema"] != {"$ref": "#/components/schemas/Error"}:  # type: ignore[index]
                    problems.append(f"{method} {path} {status}: not the Error shape")
                if "examples" not in content:  # type: ignore[operator]
                    problems.append(f"{method} {path} {status}: no example")
    assert problems == []


def test_request_bodies_refuse_unknown_fields_and_cap_their_lists(schema: dict[str, object]) -> None:
    components: dict[str, dict[str, object]] = schema["components"]["schemas"]  # type: ignore[index]

    assert components["LocationRequest"]["additionalProperties"] is False
    assert components["PatchedLocationRequest"]["additionalProperties"] is False
    assert components["ExportJobRequest"]["properties"]["location_ids"]["maxItems"] == 1000  # type: ignore[index]
    uncapped = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array" and "maxItems" not in node and not node.get("readOnly"):
                uncapped.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    for name, component in components.items():
        if name.endswith("Request"):
            walk(component, name)
    assert uncapped == []


def test_blank_choices_and_times_are_documented_as_they_are_answered(schema: dict[str, object]) -> None:
    components: dict[str, dict[str, object]] = schema["components"]["schemas"]  # type: ignore[index]
    limit_outcome = components["Session"]["properties"]["limit_outcome"]  # type: ignore[index]

    refs = [entry.get("$ref") for entry in limit_outcome["oneOf"]]  # type: ignore[index]
    assert "#/components/schemas/BlankEnum" in refs
    assert "'format': 'time'" not in str(schema)


def test_page_size_and_links_are_documented(schema: dict[str, object]) -> None:
    listing = schema["paths"]["/api/v1/locations/"]["get"]  # type: ignore[index]
    page_size = next(p for p in listing["parameters"] if p["name"] == "page_size")
    created = schema["paths"]["/api/v1/locations/"]["post"]["responses"]["201"]  # type: ignore[index]

    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
    assert created["links"]["locations_retrieve"] == {
        "operationId": "locations_retrieve",
        "parameters": {"id": "$response.body#/id"},
    }


@pytest.mark.django_db
def test_no_documented_operation_only_answers_405(schema: dict[str, object], superuser: object) -> None:
    client = Client()
    client.force_login(superuser)  # type: ignore[arg-type]
    refused = []
    for path, method, _ in operations(schema):
        url = path.replace("{id}", "0").replace("{token}", "x")
        if method in ("get", "delete"):
            response = getattr(client, method)(url)
        else:
            response = getattr(client, method)(url, data="{}", content_type="application/json")
        if response.status_code == 405:
            refused.append(f"{method} {path}")

    assert refused == []
