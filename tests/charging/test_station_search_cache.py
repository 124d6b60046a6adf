"""The driver station search's Redis cache (`apps/sessions/cache.py`, `apps/core/cache.py`): a repeated search is
answered from Redis without reading the network, never across tenants, and every write path of what the search
shows (locations, charge points, EVSEs and their status, connectors, tariffs, assignments, contract price lists,
the tenant's VAT rate) shows in the next search right after its commit.

The tests commit for real (`transaction=True`): invalidation runs on commit, which a test wrapped in one
transaction never reaches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from apps.stations import decommission
from apps.stations import services as station_services
from apps.tariffs import services as tariff_services
from apps.tariffs.models import Tariff
from apps.tenants.models import Membership, Role, Tenant, User
from tests.customers.factories import BusinessCustomerFactory, DriverFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/driver/stations/"
QUERY = {"lat": "52.52", "lon": "13.40", "radius_km": "5"}


def _elements(price: str, vat: str | None = "19") -> list[dict[str, Any]]:
    component: dict[str, Any] = {"type": "ENERGY", "price": price, "step_size": 1}
    if vat is not None:
        component["vat"] = vat
    return [{"price_components": [component]}]


def _site(tenant: Tenant, name: str, uid: str) -> dict[str, Any]:
    location = LocationFactory(tenant=tenant, name=name)
    charge_point = ChargePointFactory(tenant=tenant, location=location, identity=f"{uid}-CP")
    evse = EvseFactory(charge_point=charge_point, connector_id=1, evse_uid=f"{uid}*1", status="Available")
    connector = ConnectorFactory(evse=evse, max_electric_power=11_000)
    tariff = TariffFactory(tenant=tenant, ocpi_id=f"{uid}-T", elements=_elements("0.39"))
    assignment = TariffAssignmentFactory(tenant=tenant, tariff=tariff)  # the tenant default
    return {
        "location": location,
        "charge_point": charge_point,
        "evse": evse,
        "connector": connector,
        "tariff": tariff,
        "assignment": assignment,
    }


@pytest.fixture
def site(tenant_a: Tenant) -> dict[str, Any]:
    return _site(tenant_a, "Mitte", "DE*AAA*E1")


@pytest.fixture
def api(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> APIClient:
    return key_client_for(tenant_a)


@pytest.fixture
def admin_client(client: Client, make_staff: Callable[..., User], tenant_a: Tenant) -> Client:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    return client


def _count(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"cache": "station_search"}) or 0.0


def _search(client: APIClient, **extra: Any) -> dict[str, Any]:
    response = client.get(URL, {**QUERY, **extra})
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def _cached_search(client: APIClient, **extra: Any) -> dict[str, Any]:
    """Search until the answer comes from the cache (the second time), checking that it did."""
    _search(client, **extra)
    hits = _count("evp_cache_hits_total")
    body = _search(client, **extra)
    assert _count("evp_cache_hits_total") == hits + 1
    return body


def _evses(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["evse_id"]: e for row in body["results"] for e in row["evses"]}


def _names(body: dict[str, Any]) -> list[str]:
    return [row["name"] for row in body["results"]]


# --------------------------------------------------------------------------- hits, misses, metrics


def test_a_repeated_search_is_answered_from_redis_without_reading_the_network(
    site: dict[str, Any], api: APIClient, client: Client
) -> None:
    hits, misses = _count("evp_cache_hits_total"), _count("evp_cache_misses_total")

    first = _search(api)
    with CaptureQueriesContext(connection) as queries:
        second = _search(api)

    assert second == first
    assert _names(first) == ["Mitte"]
    assert (_count("evp_cache_hits_total"), _count("evp_cache_misses_total")) == (hits + 1, misses + 1)
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert "stations_location" not in read
    assert "tariffs_tariff" not in read
    metrics = client.get("/metrics").content.decode()
    assert 'evp_cache_hits_total{cache="station_search"}' in metrics
    assert 'evp_cache_misses_total{cache="station_search"}' in metrics


def test_every_query_page_and_pricing_party_is_its_own_entry(
    site: dict[str, Any], tenant_a: Tenant, api: APIClient
) -> None:
    near = _cached_search(api)
    far = _search(api, lat="48.1", lon="11.6")  # Munich: nothing within 5 km
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    ContractPriceListFactory(tenant=tenant_a, business_customer=fleet, discount_percent=Decimal("50"))
    fleet_driver = DriverFactory(tenant=tenant_a, business_customer=fleet)

    with_contract = _search(api, driver=fleet_driver.pk)

    assert _names(near) == ["Mitte"]
    assert far["results"] == []
    assert _evses(near)["DE*AAA*E1*1"]["price"]["per_kwh"]["excl_vat"] == "0.3900"
    assert _evses(with_contract)["DE*AAA*E1*1"]["price"]["per_kwh"]["excl_vat"] == "0.1950"  # the contract's 50 %


def test_without_the_cache_every_search_reads_postgresql(site: dict[str, Any], api: APIClient) -> None:
    with override_settings(HOT_READ_CACHE=False):
        hits, misses = _count("evp_cache_hits_total"), _count("evp_cache_misses_total")
        _search(api)
        with CaptureQueriesContext(connection) as queries:
            _search(api)
    assert (_count("evp_cache_hits_total"), _count("evp_cache_misses_total")) == (hits, misses)
    assert any("stations_location" in q["sql"] for q in queries.captured_queries)


# --------------------------------------------------------------------------- tenants


def test_a_tenant_is_never_answered_from_another_tenants_entries(
    tenant_a: Tenant,
    tenant_b: Tenant,
    key_client_for: Callable[..., APIClient],
    make_staff: Callable[..., User],
) -> None:
    _site(tenant_a, "A-Mitte", "DE*AAA*E1")
    b = _site(tenant_b, "B-Mitte", "DE*BBB*E1")  # the same place, the same query
    a_client, b_client = key_client_for(tenant_a), key_client_for(tenant_b)
    staff = make_staff(tenant_b, Role.ADMIN)
    Membership.objects.create(user=staff, tenant=tenant_a, role=Role.ADMIN)
    both = APIClient()
    both.force_authenticate(staff)

    assert _names(_cached_search(a_client)) == ["A-Mitte"]
    assert _names(_search(b_client)) == ["B-Mitte"]  # same query string: B's own entry
    assert sorted(_names(_search(both))) == ["A-Mitte", "B-Mitte"]  # a staff user of both: an entry of both
    assert _names(_cached_search(b_client)) == ["B-Mitte"]

    # a write of B's network drops B's entries only
    station_services.status_record(charge_point_id=b["charge_point"].pk, connector_id=1, status="Charging")
    hits = _count("evp_cache_hits_total")
    assert _evses(_search(b_client))["DE*BBB*E1*1"]["status"] == "Charging"
    assert _count("evp_cache_hits_total") == hits  # B: recomputed
    assert _names(_search(a_client)) == ["A-Mitte"]
    assert _count("evp_cache_hits_total") == hits + 1  # A: still cached
    assert "DE*BBB*E1*1" not in _evses(_search(a_client))


# --------------------------------------------------------------------------- every write path


def _form_data(form: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in form:
        if field.field.disabled:
            continue
        value = field.value()
        if isinstance(value, bool):
            if value:
                data[field.html_name] = "on"
            continue
        if isinstance(value, list | tuple):
            data[field.html_name] = [v for v in value if v is not None]
            continue
        data[field.html_name] = "" if value is None else value
    return data


def _admin_change(admin_client: Client, url: str, **changes: Any) -> None:
    """Post the admin change form as the page shows it (inlines included), with `changes` (False: unticked)."""
    response = admin_client.get(url)
    assert response.status_code == 200
    data = _form_data(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_form_data(formset.management_form))
        for form in formset.forms:
            data.update(_form_data(form))
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = value
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response


def _status_notification(s: dict[str, Any], **_: Any) -> None:
    # what the OCPP handler of StatusNotification calls (apps/ocpp/central.py)
    station_services.status_record(charge_point_id=s["charge_point"].pk, connector_id=1, status="Charging")


def _api(method: str, path: str, payload: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Any:
    def write(s: dict[str, Any], api: APIClient, **_: Any) -> None:
        url = path.format(**{k: getattr(v, "pk", v) for k, v in s.items()})
        response = getattr(api, method)(url, payload(s) if payload else {}, format="json")
        assert response.status_code in (200, 201, 204), response.content

    return write


def _admin_location_unpublished(s: dict[str, Any], admin_client: Client, **_: Any) -> None:
    _admin_change(admin_client, f"/admin/stations/location/{s['location'].pk}/change/", publish=False)


def _admin_charge_point_moved(s: dict[str, Any], admin_client: Client, **_: Any) -> None:
    elsewhere = LocationFactory(tenant=s["location"].tenant, name="Elsewhere")
    _admin_change(admin_client, f"/admin/stations/chargepoint/{s['charge_point'].pk}/change/", location=elsewhere.pk)


def _admin_connector_changed(s: dict[str, Any], admin_client: Client, **_: Any) -> None:
    url = f"/admin/stations/evse/{s['evse'].pk}/change/"
    _admin_change(admin_client, url, **{"connectors-0-max_electric_power": "50000"})


def _admin_evse_deleted(s: dict[str, Any], admin_client: Client, **_: Any) -> None:
    response = admin_client.post(
        "/admin/stations/evse/", {"action": "delete_selected", "_selected_action": [s["evse"].pk], "post": "yes"}
    )
    assert response.status_code == 302


def _admin_charge_point_decommissioned(s: dict[str, Any], admin_client: Client, **_: Any) -> None:
    response = admin_client.post(
        "/admin/stations/chargepoint/",
        {"action": "decommission_selected", "_selected_action": [s["charge_point"].pk]},
    )
    assert response.status_code == 302


def _admin_assignment_deleted(s: dict[str, Any], admin_client: Client, **_: Any) -> None:
    response = admin_client.post(
        "/admin/tariffs/tariffassignment/",
        {"action": "delete_selected", "_selected_action": [s["assignment"].pk], "post": "yes"},
    )
    assert response.status_code == 302


def _tariff_updated(s: dict[str, Any], **_: Any) -> None:
    tariff_services.tariff_update(tariff=s["tariff"], elements=_elements("0.49"))


def _evse_tariff_assigned(s: dict[str, Any], **_: Any) -> None:
    fast = tariff_services.tariff_create(tenant=s["location"].tenant, currency="EUR", elements=_elements("0.69"))
    tariff_services.tariff_assignment_create(tenant=s["location"].tenant, tariff=fast, evse=s["evse"])


def _assignment_ended(s: dict[str, Any], **_: Any) -> None:
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    tariff_services.tariff_assignment_update(assignment=s["assignment"], valid_until=past + dt.timedelta(days=1))


def _vat_changed(s: dict[str, Any], api: APIClient, **_: Any) -> None:
    Tariff.objects.filter(pk=s["tariff"].pk).update(elements=_elements("0.40", vat=None))  # the tenant's VAT applies
    tariff_services.tariffs_changed(tenant_id=s["location"].tenant_id)
    _api("patch", "/api/v1/tenants/{tenant_id}/", lambda _: {"default_vat_rate": "25.00"})(
        {**s, "tenant_id": s["location"].tenant_id}, api
    )


def _tenant_vat_check(before: dict[str, Any], after: dict[str, Any]) -> Any:
    return _evses(after)["DE*AAA*E1*1"]["price"]["per_kwh"]


def _evse(uid: str, key: str) -> Callable[[dict[str, Any], dict[str, Any]], Any]:
    def check(before: dict[str, Any], after: dict[str, Any]) -> Any:
        return _evses(after).get(uid, {}).get(key) if key else (uid in _evses(after))

    return check


WRITES: list[tuple[str, Callable[..., None], Callable[[dict[str, Any], dict[str, Any]], Any], Any]] = [
    # (write path, the write, what the next search shows, expected)
    ("ocpp StatusNotification", _status_notification, _evse("DE*AAA*E1*1", "status"), "Charging"),
    (
        "api PATCH location",
        _api("patch", "/api/v1/locations/{location}/", lambda _: {"name": "Mitte Nord"}),
        lambda b, a: _names(a),
        ["Mitte Nord"],
    ),
    (
        "api PATCH location publish",
        _api("patch", "/api/v1/locations/{location}/", lambda _: {"publish": False}),
        lambda b, a: _names(a),
        [],
    ),
    (
        "api POST location decommission",
        _api("post", "/api/v1/locations/{location}/decommission/"),
        lambda b, a: _names(a),
        [],
    ),
    (
        "api POST charge point decommission",
        _api("post", "/api/v1/charge-points/{charge_point}/decommission/"),
        _evse("DE*AAA*E1*1", ""),
        False,
    ),
    (
        "api PATCH charge point location",
        _api(
            "patch",
            "/api/v1/charge-points/{charge_point}/",
            lambda s: {"location": LocationFactory(tenant=s["location"].tenant, name="Elsewhere").pk},
        ),
        lambda b, a: sorted((row["name"], len(row["evses"])) for row in a["results"]),
        [("Elsewhere", 1), ("Mitte", 0)],
    ),
    (
        "api POST evse",
        _api(
            "post",
            "/api/v1/evses/",
            lambda s: {"charge_point": s["charge_point"].pk, "connector_id": 2, "evse_uid": "DE*AAA*E1*2"},
        ),
        _evse("DE*AAA*E1*2", ""),
        True,
    ),
    (
        "api POST evse decommission",
        _api("post", "/api/v1/evses/{evse}/decommission/"),
        _evse("DE*AAA*E1*1", ""),
        False,
    ),
    (
        "api POST connector",
        _api(
            "post",
            "/api/v1/connectors/",
            lambda s: {
                "evse": s["evse"].pk,
                "standard": "CHADEMO",
                "format": "CABLE",
                "power_type": "DC",
                "max_voltage": 500,
                "max_amperage": 100,
                "max_electric_power": 50_000,
            },
        ),
        _evse("DE*AAA*E1*1", "connector_types"),
        ["CHADEMO", "IEC_62196_T2"],
    ),
    (
        "api PATCH connector",
        _api("patch", "/api/v1/connectors/{connector}/", lambda _: {"max_electric_power": 22_000}),
        _evse("DE*AAA*E1*1", "max_power_w"),
        22_000,
    ),
    (
        "api DELETE connector",
        _api("delete", "/api/v1/connectors/{connector}/"),
        _evse("DE*AAA*E1*1", "connector_types"),
        [],
    ),
    (
        "service decommission location",
        lambda s, **_: decommission.location_decommission(location=s["location"]),
        lambda b, a: _names(a),
        [],
    ),
    ("admin change location", _admin_location_unpublished, lambda b, a: _names(a), []),
    (
        "admin change charge point",
        _admin_charge_point_moved,
        lambda b, a: sorted((row["name"], len(row["evses"])) for row in a["results"]),
        [("Elsewhere", 1), ("Mitte", 0)],
    ),
    ("admin change connector inline", _admin_connector_changed, _evse("DE*AAA*E1*1", "max_power_w"), 50_000),
    ("admin delete evse", _admin_evse_deleted, _evse("DE*AAA*E1*1", ""), False),
    ("admin decommission charge point", _admin_charge_point_decommissioned, _evse("DE*AAA*E1*1", ""), False),
    (
        "service tariff update",
        _tariff_updated,
        lambda b, a: _evses(a)["DE*AAA*E1*1"]["price"]["per_kwh"]["excl_vat"],
        "0.4900",
    ),
    (
        "api PATCH tariff",
        _api("patch", "/api/v1/tariffs/{tariff}/", lambda _: {"elements": _elements("0.49")}),
        lambda b, a: _evses(a)["DE*AAA*E1*1"]["price"]["per_kwh"]["excl_vat"],
        "0.4900",
    ),
    (
        "service evse assignment",
        _evse_tariff_assigned,
        lambda b, a: _evses(a)["DE*AAA*E1*1"]["price"]["per_kwh"]["excl_vat"],
        "0.6900",
    ),
    ("service assignment ended", _assignment_ended, _evse("DE*AAA*E1*1", "price"), None),
    (
        "api DELETE assignment",
        _api("delete", "/api/v1/tariff-assignments/{assignment}/"),
        _evse("DE*AAA*E1*1", "price"),
        None,
    ),
    ("admin delete assignment", _admin_assignment_deleted, _evse("DE*AAA*E1*1", "price"), None),
    ("api PATCH tenant VAT", _vat_changed, _tenant_vat_check, {"excl_vat": "0.4000", "incl_vat": "0.5000"}),
]


@pytest.mark.parametrize(("write", "shown", "expected"), [w[1:] for w in WRITES], ids=[w[0] for w in WRITES])
def test_every_write_path_shows_in_the_next_search_after_its_commit(
    site: dict[str, Any],
    api: APIClient,
    admin_client: Client,
    write: Callable[..., None],
    shown: Callable[[dict[str, Any], dict[str, Any]], Any],
    expected: Any,
) -> None:
    before = _cached_search(api)
    assert _evses(before)["DE*AAA*E1*1"]["status"] == "Available"

    write(site, api=api, admin_client=admin_client)
    after = _search(api)

    assert after != before
    assert shown(before, after) == expected
