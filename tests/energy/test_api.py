"""Energy API: the grid-signal endpoint (API key scope, validity window, audit), building load, the tree."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.energy.models import BuildingLoadReading, GridNode, GridSignal, NodeKind
from apps.tenants.models import ApiKey, Tenant
from tests.energy.factories import GridNodeFactory, GridSignalFactory
from tests.stations.factories import ChargePointFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/energy/grid-signals/"


def _body(node: GridNode, over: dict[str, Any] | None = None) -> dict[str, Any]:
    now = timezone.now().replace(microsecond=0)
    return {
        "node": node.pk,
        "max_power_w": 50_000,
        "valid_from": now.isoformat(),
        "valid_until": (now + dt.timedelta(hours=2)).isoformat(),
        "source": "Stromnetz Berlin",
        "reference": "CURT-1",
    } | (over or {})


def test_grid_operator_posts_a_signal_with_an_energy_write_key(
    key_client_for: Callable[..., APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    # given the energy company's API key with energy:write
    node = GridNodeFactory()
    client = key_client_for(node.tenant, ["energy:write"])

    # when it posts a curtailment
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(URL, _body(node), format="json")

    # then it is stored with who sent it (the audit trail), and a recompute of the site is requested after commit
    assert response.status_code == 201, response.content
    signal = GridSignal.objects.get()
    key = ApiKey.objects.get(tenant=node.tenant)
    assert (signal.node_id, signal.max_power_w, signal.max_current_a, signal.source, signal.reference) == (
        node.pk,
        50_000,
        None,
        "Stromnetz Berlin",
        "CURT-1",
    )
    assert (signal.api_key_id, signal.created_by_id) == (key.pk, None)
    assert signal.valid_until - signal.valid_from == dt.timedelta(hours=2)
    assert response.json()["api_key"] == key.pk
    assert len(callbacks) == 1


@pytest.mark.parametrize("scopes", [["energy:read"], ["stations:write"]])
def test_a_key_without_energy_write_is_refused_and_nothing_stored(
    key_client_for: Callable[..., APIClient], scopes: list[str]
) -> None:
    node = GridNodeFactory()
    client = key_client_for(node.tenant, scopes)

    response = client.post(URL, _body(node), format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert GridSignal.objects.count() == 0


def test_an_anonymous_caller_is_refused() -> None:
    node = GridNodeFactory()

    response = APIClient().post(URL, _body(node), format="json")

    assert response.status_code in (401, 403)
    assert GridSignal.objects.count() == 0


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"valid_until": "2020-01-01T00:00:00Z"}, "valid_until"),  # before valid_from
        ({"max_power_w": None}, "max_power_w"),  # no limit at all
        ({"max_power_w": -5}, "max_power_w"),
        ({"valid_from": "tomorrow"}, "valid_from"),
        ({"node": 999_999}, "node"),
        ({"colour": "red"}, "colour"),  # unknown field
    ],
)
def test_bad_signals_are_400_and_nothing_is_stored(
    key_client_for: Callable[..., APIClient], over: dict[str, Any], field: str
) -> None:
    node = GridNodeFactory()
    client = key_client_for(node.tenant, ["energy:write"])

    response = client.post(URL, _body(node, over), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert GridSignal.objects.count() == 0


def test_a_signal_for_another_tenants_node_is_refused(key_client_for: Callable[..., APIClient]) -> None:
    ours = GridNodeFactory()
    theirs = GridNodeFactory(tenant=TenantFactory())
    client = key_client_for(ours.tenant, ["energy:write"])

    response = client.post(URL, _body(theirs), format="json")

    assert response.status_code == 400
    assert "node" in response.json()["fields"]
    assert GridSignal.objects.count() == 0


def test_signals_list_has_a_constant_query_count(
    client_for: Callable[..., APIClient], django_assert_num_queries: Any
) -> None:
    node = GridNodeFactory()
    for _ in range(5):
        GridSignalFactory(node=node)
    client = client_for(node.tenant)
    client.get(URL)  # warm up (auth, content types)

    with django_assert_num_queries(2):  # the caller's memberships + one page (cursor; node and tenant joined)
        response = client.get(URL)

    assert response.status_code == 200
    assert len(response.json()["results"]) == 5


def test_signals_cannot_be_changed_or_deleted(client_for: Callable[..., APIClient]) -> None:
    signal = GridSignalFactory()
    client = client_for(signal.tenant)

    put = client.put(f"{URL}{signal.pk}/", {"max_power_w": 1}, format="json")
    delete = client.delete(f"{URL}{signal.pk}/")

    assert (put.status_code, delete.status_code) == (405, 405)
    assert GridSignal.objects.get().max_power_w == 20_000


def test_building_load_feed_takes_power_or_three_currents(key_client_for: Callable[..., APIClient]) -> None:
    node = GridNodeFactory()
    client = key_client_for(node.tenant, ["energy:write"])
    at = timezone.now().isoformat()

    ok_power = client.post(
        "/api/v1/energy/load-readings/", {"node": node.pk, "at": at, "power_w": 7_000}, format="json"
    )
    ok_amps = client.post(
        "/api/v1/energy/load-readings/",
        {"node": node.pk, "at": at, "current_l1_a": "10.5", "current_l2_a": "9", "current_l3_a": "8"},
        format="json",
    )
    bad = client.post("/api/v1/energy/load-readings/", {"node": node.pk, "at": at, "current_l1_a": "10"}, format="json")

    assert (ok_power.status_code, ok_amps.status_code, bad.status_code) == (201, 201, 400)
    assert "power_w" in bad.json()["fields"]
    assert BuildingLoadReading.objects.count() == 2


def test_charge_point_nodes_name_a_charger_of_their_site(client_for: Callable[..., APIClient]) -> None:
    root = GridNodeFactory()
    tenant: Tenant = root.tenant
    here = ChargePointFactory(tenant=tenant, location=root.location)
    elsewhere = ChargePointFactory(tenant=tenant)
    client = client_for(tenant)
    body = {"location": root.location_id, "parent": root.pk, "name": "CP", "kind": NodeKind.CHARGE_POINT}

    ok = client.post("/api/v1/energy/nodes/", body | {"charge_point": here.pk}, format="json")
    missing = client.post("/api/v1/energy/nodes/", body, format="json")
    other_site = client.post("/api/v1/energy/nodes/", body | {"charge_point": elsewhere.pk}, format="json")

    assert ok.status_code == 201, ok.content
    assert (missing.status_code, other_site.status_code) == (400, 400)
    assert "charge_point" in missing.json()["fields"]
    assert "charge_point" in other_site.json()["fields"]
    assert GridNode.objects.filter(kind=NodeKind.CHARGE_POINT).count() == 1


def test_editing_a_time_of_use_limit_asks_for_a_recompute(
    client_for: Callable[..., APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    node = GridNodeFactory()
    client = client_for(node.tenant)
    body = {"node": node.pk, "weekdays": [4, 0, 0], "start": "17:00", "end": "20:00", "percent": 60}

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        created = client.post("/api/v1/energy/tou-limits/", body, format="json")
    bad = client.post("/api/v1/energy/tou-limits/", body | {"weekdays": [7]}, format="json")
    no_limit = client.post("/api/v1/energy/tou-limits/", body | {"percent": None}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["weekdays"] == [0, 4]
    assert len(callbacks) == 1
    assert (bad.status_code, no_limit.status_code) == (400, 400)
    assert "weekdays" in bad.json()["fields"]
    assert "percent" in no_limit.json()["fields"]
