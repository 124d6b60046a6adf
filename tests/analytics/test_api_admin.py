"""Analytics API and admin: alerts acknowledged with a comment, KPI documents scoped to the caller's tenants,
query-count guards on the lists, the dashboard page and its data in the admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.analytics import services
from apps.analytics.models import Alert, AlertKind, AlertStatus
from apps.stations.models import ChargePoint
from apps.tenants.models import Role, Tenant, User
from tests.analytics.factories import AlertFactory, AlertRuleFactory, WebhookDeliveryFactory
from tests.stations.factories import ChargePointFactory, EvseFactory

pytestmark = pytest.mark.usefixtures("eager_celery")


def test_acknowledge_with_comment(tenant_a: Tenant, make_staff: Callable[..., User]) -> None:
    alert = AlertFactory(tenant=tenant_a)
    staff = make_staff(tenant_a, Role.OPERATIONS)
    client = APIClient()
    client.force_authenticate(staff)

    response = client.post(
        f"/api/v1/analytics/alerts/{alert.pk}/acknowledge/", {"comment": "Technician on the way"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["ack_comment"] == "Technician on the way"
    assert response.json()["acknowledged_by"] == staff.username
    alert.refresh_from_db()
    assert (alert.status, alert.ack_comment, alert.acknowledged_by_id) == (
        AlertStatus.OPEN,
        "Technician on the way",
        staff.pk,
    )


def test_read_only_role_cannot_acknowledge(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    alert = AlertFactory(tenant=tenant_a)

    response = client_for(tenant_a, Role.READ_ONLY).post(
        f"/api/v1/analytics/alerts/{alert.pk}/acknowledge/", {"comment": "x"}, format="json"
    )

    assert response.status_code == 403
    alert.refresh_from_db()
    assert (alert.acknowledged_at, alert.ack_comment) == (None, "")


def test_alert_opens_once_while_condition_holds(tenant_a: Tenant) -> None:
    AlertRuleFactory(tenant=tenant_a, kind=AlertKind.PROFILE_REJECTED)

    first = services.raise_alert(tenant_id=tenant_a.pk, kind=AlertKind.PROFILE_REJECTED, subject="cp:1", message="x")
    second = services.raise_alert(tenant_id=tenant_a.pk, kind=AlertKind.PROFILE_REJECTED, subject="cp:1", message="x")
    services.alert_resolve(tenant_id=tenant_a.pk, kind=AlertKind.PROFILE_REJECTED, subject="cp:1")
    third = services.raise_alert(tenant_id=tenant_a.pk, kind=AlertKind.PROFILE_REJECTED, subject="cp:1", message="x")

    assert first is not None
    assert second is not None
    assert third is not None
    assert first.pk == second.pk != third.pk
    assert list(Alert.objects.order_by("id").values_list("status", "occurrences")) == [
        (AlertStatus.RESOLVED, 2),
        (AlertStatus.OPEN, 1),
    ]


def test_no_rule_no_alert(tenant_a: Tenant) -> None:
    assert services.raise_alert(tenant_id=tenant_a.pk, kind=AlertKind.COMMAND_FAILED, subject="s", message="m") is None
    assert not Alert.objects.exists()


def test_alert_list_is_scoped_filtered_and_guarded(
    tenant_a: Tenant,
    tenant_b: Tenant,
    client_for: Callable[..., APIClient],
    django_assert_num_queries: Any,
) -> None:
    mine = [AlertFactory(tenant=tenant_a) for _ in range(3)]
    AlertFactory(tenant=tenant_a, status=AlertStatus.RESOLVED)
    AlertFactory(tenant=tenant_b)
    client = client_for(tenant_a, Role.READ_ONLY)
    client.get("/api/v1/analytics/alerts/")  # warm the caller's access cache

    with django_assert_num_queries(2):  # constant, whatever the number of alerts
        response = client.get("/api/v1/analytics/alerts/?status=open")

    assert response.status_code == 200
    assert sorted(a["id"] for a in response.json()["results"]) == sorted(a.pk for a in mine)


def test_delivery_list_is_guarded(
    tenant_a: Tenant, client_for: Callable[..., APIClient], django_assert_num_queries: Any
) -> None:
    for _ in range(3):
        WebhookDeliveryFactory(tenant=tenant_a)
    client = client_for(tenant_a, Role.READ_ONLY)
    client.get("/api/v1/analytics/deliveries/")

    with django_assert_num_queries(3):  # constant: the page and its attempt logs (prefetched)
        response = client.get("/api/v1/analytics/deliveries/")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_live_kpis_are_scoped_to_the_callers_tenants(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient], key_client_for: Callable[..., APIClient]
) -> None:
    mine = ChargePointFactory(tenant=tenant_a, online=True)
    EvseFactory(charge_point=mine, status="Faulted", error_code="GroundFailure")
    ChargePointFactory(tenant=tenant_b, online=False)

    response = client_for(tenant_a, Role.READ_ONLY).get("/api/v1/analytics/kpis/live/")
    by_key = key_client_for(tenant_a, ["analytics:read"]).get("/api/v1/analytics/kpis/live/")
    other = client_for(tenant_a, Role.READ_ONLY).get(f"/api/v1/analytics/kpis/live/?tenant={tenant_b.pk}")
    no_scope = key_client_for(tenant_a, ["billing:read"]).get("/api/v1/analytics/kpis/live/")

    assert response.status_code == 200
    body = response.json()
    assert (body["chargers"], body["chargers_online"], body["offline_chargers"]) == (1, 1, [])
    assert [(f["identity"], f["error_code"]) for f in body["faulted_connectors"]] == [(mine.identity, "GroundFailure")]
    assert by_key.json() | {"at": None} == body | {"at": None}
    assert other.status_code == 404
    assert no_scope.status_code == 403


def test_period_kpis_validate_the_window(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    client = client_for(tenant_a, Role.READ_ONLY)

    bad = client.get("/api/v1/analytics/kpis/period/?start=2026-11-02T00:00:00Z&end=2026-11-01T00:00:00Z")
    unknown = client.get("/api/v1/analytics/kpis/series/?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z&x=1")
    good = client.get("/api/v1/analytics/kpis/series/?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z")

    assert bad.status_code == 400
    assert bad.json()["fields"] == {"end": ["Must be after start."]}
    assert unknown.status_code == 400
    assert "x" in unknown.json()["fields"]
    assert (good.status_code, good.json()) == (200, [])


def test_dashboard_is_linked_from_the_admin_index_and_scoped(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    ChargePointFactory(tenant=tenant_a, identity="ALPHA-1")
    ChargePointFactory(tenant=tenant_b, identity="BETA-1")
    staff = make_staff(tenant_a, Role.READ_ONLY, is_staff=True)
    client.force_login(staff)

    index = client.get("/admin/")
    page = client.get("/admin/analytics/dashboard/")
    data = client.get("/admin/analytics/dashboard/data/")
    other = client.get(f"/admin/analytics/dashboard/data/?tenant={tenant_b.pk}")

    assert index.status_code == 200
    assert b'href="/admin/analytics/dashboard/"' in index.content
    assert page.status_code == 200
    assert b"vendor/chartjs/chart.umd.min.js" in page.content
    assert [c["identity"] for c in data.json()["chargers"]] == ["ALPHA-1"]
    assert [c["identity"] for c in other.json()["chargers"]] == ["ALPHA-1"]  # not theirs: own tenants instead
    assert ChargePoint.objects.count() == 2
