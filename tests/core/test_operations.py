from __future__ import annotations

import pytest
from django.test import Client, override_settings


@pytest.mark.django_db
def test_healthz_is_alive(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_postgres_and_redis(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_readyz_reports_unreachable_redis(client: Client) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"].startswith("error")


@pytest.mark.django_db
def test_metrics_exposes_prometheus_text(client: Client) -> None:
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_method_total" in text
    assert "django_db_" in text


@pytest.mark.django_db
def test_unknown_api_path_answers_in_error_shape(client: Client) -> None:
    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No such endpoint.", "fields": {}}


@pytest.mark.django_db
def test_unauthenticated_api_call_is_401_in_error_shape(client: Client) -> None:
    response = client.get("/api/v1/tenants/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_platform_metrics_are_exposed_and_recorded(client: Client) -> None:
    from apps.core.metrics import JOB_DURATION, timed_job

    before = JOB_DURATION.labels(job="export")._sum.get()
    with timed_job("export"):
        pass

    text = client.get("/metrics").content.decode()

    assert JOB_DURATION.labels(job="export")._sum.get() > before
    for name in (
        "evp_connected_chargers",
        "evp_ocpp_messages_total",
        "evp_command_results_total",
        "evp_job_duration_seconds",
    ):
        assert name in text, name
