"""Platform metrics appear on django-prometheus' /metrics, recorded from analytics' code paths."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.analytics import tasks
from apps.analytics.subscribers import command_finished
from apps.core import events
from apps.tenants.models import Tenant
from tests.stations.factories import ChargePointFactory


@pytest.mark.django_db
def test_metrics_endpoint_exposes_platform_metrics(tenant_a: Tenant, client: Client) -> None:
    ChargePointFactory.create_batch(2, tenant=tenant_a, online=True)
    ChargePointFactory(tenant=tenant_a, online=False)
    tasks.sample_platform_metrics()
    command_finished(
        events.CommandFinished(
            tenant_id=tenant_a.pk, command_id=1, charge_point_id=1, action="TriggerMessage", status="timeout"
        )
    )

    text = client.get("/metrics").content.decode()

    assert "evp_connected_chargers 2.0" in text
    assert 'evp_celery_queue_depth{queue="celery"}' in text
    assert 'evp_command_results_total{action="TriggerMessage",status="timeout"}' in text
    assert "evp_ocpp_messages_total" in text
    assert "evp_job_duration_seconds" in text
