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
