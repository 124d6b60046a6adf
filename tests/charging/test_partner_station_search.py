"""Partner stations (eMSP) in the driver station search: listed beside ours nearest first, with their live OCPI
status, their operator, and the price our driver pays there (the CPO's tariff through our retail rule)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.stations import services as station_services
from apps.stations.models import Location, PartnerEvse
from apps.tariffs import services as tariff_services
from apps.tariffs.models import RoamingRetailRule
from apps.tenants.models import Role, Tenant
from tests.charging.partner_factories import THREE_PARTS, partner, partner_location, partner_tariff
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/driver/stations/"
POINT = {"lat": "52.50", "lon": "13.40"}


def own_site(tenant: Tenant, lat: str, lon: str = "13.400000", **fields: Any) -> Location:
    location = LocationFactory(tenant=tenant, latitude=Decimal(lat), longitude=Decimal(lon), **fields)
    evse = EvseFactory(charge_point=ChargePointFactory(tenant=tenant, location=location), status="Available")
    ConnectorFactory(evse=evse, max_electric_power=22_000)
    return location


def rows(client: APIClient, **query: str) -> list[dict[str, Any]]:
    response = client.get(URL, {**POINT, **query})
    assert response.status_code == 200, response.content
    return response.json()["results"]  # type: ignore[no-any-return]


def test_partner_stations_are_listed_beside_ours_nearest_first_with_status_operator_and_retail_price(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    cpo = partner(tenant_a, name="Fastned-like", country_code="NL", party_id="FNL")
    partner_tariff(cpo, "AC-1", THREE_PARTS)
    RoamingRetailRule.objects.create(
        tenant=tenant_a, partner=cpo, mode="markup", markup_percent=Decimal("10"), vat_rate=Decimal("19")
    )
    near = own_site(tenant_a, "52.51")  # 1.11 km
    middle = partner_location(cpo, lat="52.52", tariff_ids=["AC-1"], operator_name="Fast Op")  # 2.22 km
    far = own_site(tenant_a, "52.53")  # 3.34 km

    found = rows(client_for(tenant_a, Role.ADMIN))

    assert [(r["network"], r["id"]) for r in found] == [("own", near.pk), ("partner", middle.pk), ("own", far.pk)]
    assert [r["distance_km"] for r in found] == sorted(r["distance_km"] for r in found)
    station = found[1]
    assert station["operator"] == {"name": "Fast Op", "party": "NL*FNL", "partner": cpo.pk}
    assert station["summary"] == {
        "evses": 1,
        "available": 1,
        "connector_types": ["IEC_62196_T2"],
        "max_power_w": 11040,  # AC 3-phase 230 V x 16 A x 3
    }
    (evse,) = station["evses"]
    assert evse["status"] == "AVAILABLE"
    # the CPO's 0.30/kWh, 1.20/h, 0.50 per session, +10 % mark-up, our 19 % VAT (not the CPO's 20 %)
    assert evse["price"] == {
        "tariff_id": "AC-1",
        "currency": "EUR",
        "retail_mode": "markup",
        "vat_rate": "19.00",
        "per_kwh": {"excl_vat": "0.3300", "incl_vat": "0.3927"},
        "per_hour": {"excl_vat": "1.3200", "incl_vat": "1.5708"},
        "parking_per_hour": None,
        "per_session": {"excl_vat": "0.5500", "incl_vat": "0.6545"},
        "text": "0.3927 EUR/kWh + 1.5708 EUR/h + 0.6545 EUR per session incl. VAT",
    }
    assert found[0]["operator"]["partner"] is None


def test_pass_through_without_a_rule_and_unknown_price_without_a_tariff(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    cpo = partner(tenant_a)
    partner_tariff(cpo, "AC-1", THREE_PARTS)
    priced = partner_location(cpo, lat="52.51", tariff_ids=["AC-1"])
    unknown_id = partner_location(cpo, lat="52.52", tariff_ids=["NOT-SENT"])
    no_ids = partner_location(cpo, lat="52.53")

    found = {r["id"]: r["evses"][0]["price"] for r in rows(client_for(tenant_a))}

    assert found[priced.pk]["retail_mode"] == "pass_through"  # type: ignore[index]
    assert found[priced.pk]["per_kwh"] == {"excl_vat": "0.3000", "incl_vat": "0.3000"}  # type: ignore[index]
    assert found[unknown_id.pk] is None  # unknown, never 0
    assert found[no_ids.pk] is None


def test_a_fixed_price_per_kwh_replaces_the_cpo_prices(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    cpo = partner(tenant_a)
    partner_tariff(cpo, "AC-1", THREE_PARTS)
    tariff_services.roaming_retail_rule_create(
        tenant=tenant_a,
        partner=cpo,
        mode="fixed_kwh",
        price_per_kwh_excl_vat=Decimal("0.45"),
        vat_rate=Decimal("19"),
        currency="EUR",
    )
    with_tariff = partner_location(cpo, lat="52.51", tariff_ids=["AC-1"])
    without = partner_location(cpo, lat="52.52")

    found = {r["id"]: r["evses"][0]["price"] for r in rows(client_for(tenant_a))}

    for pk in (with_tariff.pk, without.pk):
        price = found[pk]
        assert price["per_kwh"] == {"excl_vat": "0.4500", "incl_vat": "0.5355"}  # type: ignore[index]
        assert (price["per_hour"], price["per_session"], price["currency"]) == (None, None, "EUR")  # type: ignore[index]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["own", "ac", "dc", "busy"]),
        ({"operator": "own"}, ["own"]),
        ({"operator": "partners"}, ["ac", "dc", "busy"]),
        ({"operator": "ionity-like"}, ["dc"]),  # the location's operator name, any case
        ({"operator": "nl*p01"}, ["ac", "busy"]),  # the CPO's party
        ({"operator": "Second CPO"}, ["dc"]),  # the roaming partner's name
        ({"connector_type": "IEC_62196_T2_COMBO"}, ["dc"]),
        ({"min_power_kw": "50"}, ["dc"]),
        ({"min_power_kw": "11"}, ["own", "ac", "dc", "busy"]),  # 230 V x 16 A x 3 phases is 11.04 kW
        ({"available": "true"}, ["own", "ac", "dc"]),
        ({"available": "false"}, ["busy"]),
        ({"radius_km": "2.5"}, ["own", "ac"]),
        ({"bbox": "13.3,52.507,13.5,52.535"}, ["ac", "dc"]),
    ],
)
def test_filters_apply_to_partner_stations_as_to_ours(
    tenant_a: Tenant, client_for: Callable[..., APIClient], query: dict[str, str], expected: list[str]
) -> None:
    first = partner(tenant_a, name="First CPO", country_code="NL", party_id="P01")
    second = partner(tenant_a, name="Second CPO", country_code="DE", party_id="ION")
    names = {
        ("own", own_site(tenant_a, "52.505").pk): "own",
        ("partner", partner_location(first, lat="52.51").pk): "ac",
        (
            "partner",
            partner_location(
                second,
                lat="52.53",
                standard="IEC_62196_T2_COMBO",
                power_type="DC",
                voltage=920,
                amperage=500,
                max_electric_power=300_000,
                operator_name="Ionity-like",
            ).pk,
        ): "dc",
        ("partner", partner_location(first, lat="52.54", status="CHARGING").pk): "busy",
    }

    found = rows(client_for(tenant_a), **query)

    assert [names[(r["network"], r["id"])] for r in found] == expected


def test_unpublished_removed_and_other_tenants_partner_stations_never_show(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    ours = partner(tenant_a)
    theirs = partner(tenant_b)
    shown = partner_location(ours, lat="52.51", evses=2)
    PartnerEvse.objects.filter(location=shown, uid__endswith="-1").update(status="REMOVED")
    partner_location(ours, lat="52.52", publish=False)
    partner_location(ours, lat="52.53", status="REMOVED")
    partner_location(theirs, lat="52.51")

    found = rows(client_for(tenant_a))

    assert [r["id"] for r in found] == [shown.pk]
    assert [e["uid"] for e in found[0]["evses"]] == [f"{found[0]['evses'][0]['uid']}"]
    assert found[0]["summary"]["evses"] == 1


@pytest.mark.parametrize("extra", [{}, {"radius_km": "50"}, {"lat": None}])
def test_one_cursor_pages_through_both_networks_once_each_in_order(
    tenant_a: Tenant, client_for: Callable[..., APIClient], extra: dict[str, Any]
) -> None:
    cpo = partner(tenant_a)
    own = [own_site(tenant_a, f"52.5{i}1") for i in range(5)]
    own.append(own_site(tenant_a, "52.521"))  # the same place as a partner station: a tie across the networks
    theirs = [partner_location(cpo, lat=f"52.5{i}1") for i in range(1, 5)]
    theirs += [partner_location(cpo, lat="52.561") for _ in range(3)]  # ties within one network
    client = client_for(tenant_a)
    params: dict[str, str] = {**POINT, "page_size": "2", **{k: v for k, v in extra.items() if v is not None}}
    if "lat" in extra:
        params = {"page_size": "2"}

    seen: list[tuple[str, int]] = []
    distances: list[float] = []
    url: str | None = URL
    while url:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["results"]) <= 2
        seen += [(r["network"], r["id"]) for r in body["results"]]
        distances += [r["distance_km"] for r in body["results"] if r["distance_km"] is not None]
        url, params = body["next"], {}

    assert sorted(seen) == sorted([("own", loc.pk) for loc in own] + [("partner", loc.pk) for loc in theirs])
    assert len(seen) == len(set(seen))
    if "lat" in extra:  # without a point: ours by id, then the partners' by id
        assert seen == [("own", loc.pk) for loc in own] + [("partner", loc.pk) for loc in theirs]
    else:
        assert distances == sorted(distances)


@pytest.mark.parametrize(
    "cursor", ["%%%", "bm90IGpzb24=", "eyJkIjoiYSIsIm8iOjAsInAiOjB9", "eyJkIjoxLCJvIjotMSwicCI6MH0="]
)
def test_a_cursor_this_api_did_not_hand_out_is_a_400(
    tenant_a: Tenant, client_for: Callable[..., APIClient], cursor: str
) -> None:
    partner_location(partner(tenant_a))

    response = client_for(tenant_a).get(URL, {**POINT, "cursor": cursor})

    assert response.status_code == 400, response.content
    assert response.json()["fields"] == {"cursor": ["Invalid cursor."]}


def test_bad_operator_is_a_400(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    response = client_for(tenant_a).get(URL, {**POINT, "operator": "x" * 101})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["operator"]


def test_query_count_does_not_grow_with_the_partner_stations(
    tenant_a: Tenant, client_for: Callable[..., APIClient], settings: Any
) -> None:
    settings.HOT_READ_CACHE = False
    cpo = partner(tenant_a)
    partner_tariff(cpo, "AC-1", THREE_PARTS)
    own_site(tenant_a, "52.51")
    partner_location(cpo, lat="52.52", tariff_ids=["AC-1"], evses=2)
    client = client_for(tenant_a)
    client.get(URL, POINT)  # warm-up (session, permissions)

    with CaptureQueriesContext(connection) as few:
        assert len(client.get(URL, POINT).json()["results"]) == 2
    for i in range(6):
        partner_location(cpo, lat=f"52.53{i}", tariff_ids=["AC-1"], evses=3)
        own_site(tenant_a, f"52.54{i}")
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(URL, POINT).json()["results"]) == 14

    assert len(many) == len(few)


# --------------------------------------------------------------------------- the cache


@pytest.mark.django_db(transaction=True)
def test_a_partner_evse_status_change_drops_the_cached_search(
    tenant_a: Tenant, key_client_for: Callable[..., APIClient]
) -> None:
    cpo = partner(tenant_a)
    location = partner_location(cpo, lat="52.51")
    evse = PartnerEvse.objects.get(location=location)
    client = key_client_for(tenant_a)
    first = client.get(URL, POINT).json()["results"][0]["evses"][0]["status"]
    PartnerEvse.objects.filter(pk=evse.pk).update(status="OUTOFORDER")  # behind the service's back: still cached
    cached = client.get(URL, POINT).json()["results"][0]["evses"][0]["status"]

    station_services.partner_evse_status_set(evse=evse, status="CHARGING")
    after = client.get(URL, POINT).json()["results"][0]["evses"][0]["status"]

    assert (first, cached, after) == ("AVAILABLE", "AVAILABLE", "CHARGING")


@pytest.mark.django_db(transaction=True)
def test_a_retail_rule_change_drops_the_cached_prices(
    tenant_a: Tenant, key_client_for: Callable[..., APIClient]
) -> None:
    cpo = partner(tenant_a)
    partner_tariff(cpo, "AC-1", THREE_PARTS)
    partner_location(cpo, lat="52.51", tariff_ids=["AC-1"])
    client = key_client_for(tenant_a)
    before = client.get(URL, POINT).json()["results"][0]["evses"][0]["price"]["per_kwh"]

    tariff_services.roaming_retail_rule_create(tenant=tenant_a, partner=cpo, mode="markup", markup_percent=Decimal(50))
    after = client.get(URL, POINT).json()["results"][0]["evses"][0]["price"]["per_kwh"]

    assert (before["excl_vat"], after["excl_vat"]) == ("0.3000", "0.4500")


def test_an_unknown_status_is_refused_and_nothing_changes(tenant_a: Tenant) -> None:
    evse = PartnerEvse.objects.get(location=partner_location(partner(tenant_a)))

    with pytest.raises(Exception, match="Unknown EVSE status"):
        station_services.partner_evse_status_set(evse=evse, status="BROKEN")

    assert PartnerEvse.objects.get(pk=evse.pk).status == "AVAILABLE"
