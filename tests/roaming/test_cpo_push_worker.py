"""Pushes through a real Celery worker process (a separate `celery worker` on the test Redis and the test database,
as tests/core/test_outbox_celery.py starts them): a StatusNotification and a location edit made in this process are
delivered by the worker (the outbox delivery and the push task both run there) to the partner simulator over HTTP,
in the order they changed."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from apps.roaming.models import PushState, RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.stations import services as station_services
from apps.stations.models import ChargePoint
from apps.tenants.models import Tenant
from tests.core.test_outbox_celery import Rig, database_url_of_this_test
from tests.roaming.factories import partner_for
from tests.roaming.test_cpo_locations import assert_valid
from tests.roaming.test_cpo_push_network import sent
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory

pytestmark = [pytest.mark.slow]


@pytest.fixture
def worker(ocpi_base: str, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """One worker process consuming a queue of its own, where this test's outbox deliveries and pushes go."""
    queue = f"test-push-{uuid.uuid4().hex[:8]}"
    key = f"evp-test-push-{uuid.uuid4().hex[:8]}"
    overrides = {
        "EVENTS_DELIVERY": "celery",
        "EVENTS_OUTBOX_QUEUE": queue,
        "EVENTS_OUTBOX_KICK_KEY": f"{key}:kick",
        "OCPI_TASK_QUEUE": queue,
    }
    for name, value in overrides.items():
        setattr(settings, name, value)
    env = {
        **os.environ,
        **overrides,
        "DJANGO_SETTINGS_MODULE": "evplatform.settings.test",
        "DATABASE_URL": database_url_of_this_test(),
    }
    client = redis.Redis.from_url(settings.REDIS_URL)
    rig = Rig(queue=queue, key=key, env=env, client=client)
    try:
        rig.start_worker()
        rig.wait_ready(seconds=120)
        yield rig
    finally:
        rig.stop()
        client.delete(queue, *client.keys(f"{key}:*"))
        client.close()


def wait_until(predicate: Callable[[], Any], rig: Rig, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        assert all(w.poll() is None for w in rig.workers), "the worker exited"
        time.sleep(0.1)


def test_a_status_change_and_a_location_edit_arrive_in_order_through_a_real_worker(
    ocpi_base: str, worker: Rig, tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    emsp = PartnerSimulator(country_code="NL", party_id="SIM", endpoint_ids=["credentials", "locations"]).start()
    try:
        partner, token_a = partner_for(
            tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["locations"]
        )
        assert emsp.register_with(f"{ocpi_base}/ocpi/versions", token_a)["status_code"] == 1000
        location = LocationFactory(tenant=tenant_a, ocpi_id="LOC-W")
        charge_point = ChargePointFactory(tenant=tenant_a, location=location)
        ChargePoint.objects.filter(pk=charge_point.pk).update(online=True)
        evse = EvseFactory(charge_point=charge_point, connector_id=1)
        ConnectorFactory(evse=evse)

        # when a charger reports a status and, right after, staff rename its location
        station_services.status_record(charge_point_id=charge_point.pk, connector_id=1, status="Charging")
        answer = client_for(tenant_a).patch(f"/api/v1/locations/{location.pk}/", {"name": "Worker"}, format="json")
        assert answer.status_code == 200, answer.content

        # then the worker sends the EVSE's PATCH, then the Location's PUT
        wait_until(lambda: len(sent(emsp)) >= 2, worker)
        received = sent(emsp)
        assert [(m, p) for m, p, _ in received] == [("PATCH", f"DE/ALP/LOC-W/{evse.pk}"), ("PUT", "DE/ALP/LOC-W")]
        assert received[0][2]["status"] == "CHARGING"
        assert received[1][2]["name"] == "Worker"
        assert_valid("mod_locations_location_object", received[1][2])
        assert emsp.locations["DE/ALP/LOC-W"]["evses"][0]["status"] == "CHARGING"
        # both settled (this process runs no Celery tasks: not eager, no worker thread), by the worker, still running
        wait_until(
            lambda: all(s.pushed_version == s.version for s in PushState.objects.filter(partner=partner)), worker
        )
        assert worker.workers[0].poll() is None
        partner = RoamingPartner.objects.get(pk=partner.pk)
        assert partner.last_pushes["locations"]["object"] == f"location:{location.pk}"
    finally:
        emsp.stop()
