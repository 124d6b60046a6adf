"""Driver geo search: stations near a point or in a map view, nearest first on the sphere, from the GiST index
of stations migration 0007, filtered by plug standard, power and availability; checked against a brute-force
haversine over random points (a few hundred km, and across the antimeridian)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.sessions import selectors
from apps.sessions.selectors import BoundingBox
from apps.stations.models import Location
from apps.tenants.models import Role, Tenant
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/driver/stations/"
R = selectors.EARTH_RADIUS_KM


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(math.sqrt(a))


def _scatter(tenant: Tenant, centres: list[tuple[float, float]], n: int, spread: float, seed: int) -> list[Location]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lat0, lon0 = centres[i % len(centres)]
        lat = max(-90.0, min(90.0, lat0 + rng.uniform(-spread, spread)))
        lon = (lon0 + rng.uniform(-spread, spread) + 540) % 360 - 180
        rows.append(
            Location(
                tenant=tenant,
                name=f"P{i}",
                address="x",
                city="y",
                latitude=Decimal(f"{lat:.6f}"),
                longitude=Decimal(f"{lon:.6f}"),
            )
        )
    return Location.objects.bulk_create(rows)


def _expected(locations: list[Location], lat: float, lon: float, radius_km: float) -> list[tuple[int, float]]:
    found = [(loc.pk, haversine_km(lat, lon, float(loc.latitude), float(loc.longitude))) for loc in locations]
    return sorted(((pk, d) for pk, d in found if d <= radius_km), key=lambda r: (r[1], r[0]))


@pytest.mark.parametrize(
    ("centre", "radius_km"),
    [
        ((52.52, 13.40), 150.0),  # Berlin, a few hundred km of scatter
        ((60.39, 5.32), 300.0),  # Bergen: far north, longitudes shrink
        ((-16.5, 179.9), 250.0),  # Fiji: across the antimeridian
    ],
)
def test_radius_search_matches_a_brute_force_haversine(
    tenant_a: Tenant, centre: tuple[float, float], radius_km: float
) -> None:
    locations = _scatter(tenant_a, [centre], 400, 4.0, seed=int(radius_km))
    lat, lon = centre

    found = list(
        selectors.stations_near(Location.objects.filter(tenant=tenant_a), lat=lat, lon=lon, radius_km=radius_km)
    )

    expected = _expected(locations, lat, lon, radius_km)
    assert 20 < len(expected) < 400  # the radius cuts through the scatter
    assert [loc.pk for loc in found] == [pk for pk, _ in expected]
    for loc, (_, km) in zip(found, expected, strict=True):
        assert loc.distance_km == pytest.approx(km, rel=1e-9, abs=1e-6)


def test_nearest_first_without_a_radius_is_haversine_order_across_the_antimeridian(tenant_a: Tenant) -> None:
    locations = _scatter(tenant_a, [(0.0, 179.5), (0.0, -179.5), (10.0, 170.0)], 300, 3.0, seed=7)

    found = list(selectors.stations_near(Location.objects.all(), lat=0.0, lon=180.0, radius_km=None)[:50])

    expected = _expected(locations, 0.0, 180.0, 1e9)[:50]
    assert [loc.pk for loc in found] == [pk for pk, _ in expected]


@pytest.mark.parametrize(
    "box",
    [
        BoundingBox(west=12.0, south=51.5, east=14.5, north=53.0),
        BoundingBox(west=179.0, south=-18.0, east=-179.0, north=-15.0),  # crosses the antimeridian
        BoundingBox(west=-180.0, south=84.0, east=180.0, north=89.0),  # all the way round, near the pole
    ],
)
def test_map_view_keeps_exactly_the_stations_inside_nearest_to_its_centre_first(
    tenant_a: Tenant, box: BoundingBox
) -> None:
    lat, lon = box.centre()
    locations = _scatter(tenant_a, [(lat, lon)], 400, 3.0, seed=11)

    found = list(selectors.stations_near(Location.objects.all(), lat=None, lon=None, radius_km=None, bbox=box))

    inside = [
        loc
        for loc in locations
        if box.south <= float(loc.latitude) <= box.north and box.contains_lon(float(loc.longitude))
    ]
    expected = sorted(
        inside, key=lambda loc: (haversine_km(lat, lon, float(loc.latitude), float(loc.longitude)), loc.pk)
    )
    assert 10 < len(expected) < 400
    assert [loc.pk for loc in found] == [loc.pk for loc in expected]


def test_the_spatial_index_answers_nearest_first_the_radius_and_the_map_box(tenant_a: Tenant) -> None:
    _scatter(tenant_a, [(52.52, 13.40)], 5000, 5.0, seed=3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE stations_location")
    queryset = selectors.stations_near(Location.objects.filter(tenant=tenant_a), lat=52.5, lon=13.4, radius_km=20)[:20]

    plan = queryset.explain()
    box_plan = selectors.stations_near(
        Location.objects.filter(tenant=tenant_a),
        lat=None,
        lon=None,
        radius_km=None,
        bbox=BoundingBox(west=13.3, south=52.4, east=13.5, north=52.6),
    )[:20].explain()

    near_plan = selectors.stations_near(Location.objects.filter(tenant=tenant_a), lat=52.5, lon=13.4, radius_km=None)[
        :20
    ].explain()

    for p in (plan, box_plan, near_plan):
        assert "location_geo" in p, p
        assert "Seq Scan on stations_location" not in p, p
    assert "Order By: (geo_ecef(" in near_plan, near_plan  # KNN: the index hands out rows nearest first


@pytest.fixture
def plugs(tenant_a: Tenant) -> dict[str, Any]:
    """Three sites 1, 2 and 3 km north of the point: a free 11 kW Type 2, a busy 150 kW CCS, a free CHAdeMO
    50 kW next to a faulted 300 kW CCS."""

    def site(km: float, *evses: tuple[str, int, str]) -> Location:
        location = LocationFactory(
            tenant=tenant_a, latitude=Decimal(f"{52.5 + km / 111.195:.6f}"), longitude=Decimal("13.400000")
        )
        cp = ChargePointFactory(tenant=tenant_a, location=location)
        for n, (standard, power, status) in enumerate(evses, start=1):
            evse = EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*ALP*E{location.pk}*{n}", status=status)
            ConnectorFactory(evse=evse, standard=standard, max_electric_power=power)
        return location

    return {
        "ac": site(1, ("IEC_62196_T2", 11_000, "Available")),
        "ccs": site(2, ("IEC_62196_T2_COMBO", 150_000, "Charging")),
        "mixed": site(3, ("CHADEMO", 50_000, "Available"), ("IEC_62196_T2_COMBO", 300_000, "Faulted")),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["ac", "ccs", "mixed"]),
        ({"connector_type": "IEC_62196_T2_COMBO"}, ["ccs", "mixed"]),
        ({"min_power_kw": "100"}, ["ccs", "mixed"]),
        ({"min_power_kw": "200"}, ["mixed"]),
        ({"available": "true"}, ["ac", "mixed"]),
        ({"available": "false"}, ["ccs"]),
        # the filters hold for one and the same EVSE: the free plug of "mixed" is a 50 kW CHAdeMO
        ({"available": "true", "min_power_kw": "100"}, []),
        ({"available": "true", "connector_type": "CHADEMO"}, ["mixed"]),
        ({"radius_km": "2.5"}, ["ac", "ccs"]),
        ({"bbox": "13.3,52.5,13.5,52.52"}, ["ac", "ccs"]),
    ],
)
def test_driver_api_filters_by_plug_power_and_availability(
    plugs: dict[str, Location],
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
    query: dict[str, str],
    expected: list[str],
) -> None:
    response = client_for(tenant_a, Role.ADMIN).get(URL, {"lat": "52.5", "lon": "13.4", **query})

    assert response.status_code == 200, response.content
    names = {loc.pk: name for name, loc in plugs.items()}
    assert [names[row["id"]] for row in response.json()["results"]] == expected


def test_pages_follow_the_distance_and_another_tenant_never_shows(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    mine = _scatter(tenant_a, [(52.52, 13.40)], 30, 0.5, seed=5)
    _scatter(tenant_b, [(52.52, 13.40)], 30, 0.5, seed=5)  # the same places, another tenant
    client = client_for(tenant_a, Role.ADMIN)

    seen: list[int] = []
    distances: list[float] = []
    params: dict[str, str] = {"lat": "52.52", "lon": "13.40", "page_size": "7"}
    url: str | None = URL
    while url:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [row["id"] for row in body["results"]]
        distances += [row["distance_km"] for row in body["results"]]
        url, params = body["next"], {}

    assert seen == [pk for pk, _ in _expected(mine, 52.52, 13.40, 1e9)]
    assert distances == sorted(distances)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"bbox": "13,52,14"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "13,53,14,52"}, "bbox"),  # south above north
        ({"bbox": "190,52,14,53"}, "bbox"),
        ({"bbox": "nan,52,14,53"}, "bbox"),
        ({"connector_type": "TYPE_9"}, "connector_type"),
        ({"min_power_kw": "-1"}, "min_power_kw"),
        ({"min_power_kw": "lots"}, "min_power_kw"),
        ({"available": "maybe"}, "available"),
    ],
)
def test_bad_search_input_is_a_400_naming_the_parameter(
    tenant_a: Tenant, client_for: Callable[..., APIClient], query: dict[str, str], field: str
) -> None:
    LocationFactory(tenant=tenant_a)
    count = Location.objects.count()

    response = client_for(tenant_a, Role.ADMIN).get(URL, query)

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "validation_error"
    assert list(body["fields"]) == [field]
    assert Location.objects.count() == count


@pytest.mark.parametrize("radius", [None, "50"])
def test_locations_at_the_same_place_page_once_each(
    tenant_a: Tenant, client_for: Callable[..., APIClient], radius: str | None
) -> None:
    # nearest first without a radius is the index's KNN order (ties in index order), with one sorted by (distance, id)
    twins = [
        LocationFactory(tenant=tenant_a, latitude=Decimal("52.510000"), longitude=Decimal("13.400000"))
        for _ in range(4)
    ]
    others = _scatter(tenant_a, [(52.52, 13.40)], 6, 0.05, seed=9)
    params = {"lat": "52.50", "lon": "13.40", "page_size": "1", **({"radius_km": radius} if radius else {})}
    client = client_for(tenant_a, Role.ADMIN)

    seen: list[int] = []
    url: str | None = URL
    while url:
        body = client.get(url, params).json()
        seen += [row["id"] for row in body["results"]]
        url, params = body["next"], {}

    assert sorted(seen) == sorted(loc.pk for loc in [*twins, *others])
    if radius:
        twin_ids = [pk for pk in seen if pk in {t.pk for t in twins}]
        assert twin_ids == sorted(twin_ids)
