"""The locations Sender interface over real HTTP (mod_locations.asciidoc, transport_and_format.asciidoc pagination):
the partner simulator registers with us, then GETs our tenant's locations as an eMSP would. Every object we emit
is checked against the spec's field tables (tests/roaming/ocpi_rules.py)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from django.utils import timezone

from apps.roaming.models import RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.stations.models import ChargePoint, Connector, Evse, Location
from apps.tariffs import services as tariff_services
from apps.tenants.models import Tenant
from tests.roaming import ocpi_rules
from tests.roaming.factories import partner_for
from tests.roaming.test_credentials import assert_envelope
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory

ENERGY = [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}]
LINK = re.compile(r'^<([^>]+)>; rel="next"$')


@pytest.fixture
def registered(ocpi_base: str, sim: PartnerSimulator, tenant_a: Tenant) -> tuple[RoamingPartner, PartnerSimulator]:
    """The simulator registered with tenant A (it holds our token C) with the locations module enabled."""
    partner, token_a = partner_for(
        tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["locations"]
    )
    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    partner.refresh_from_db()
    return partner, sim


def get(sim: PartnerSimulator, url: str) -> requests.Response:
    return sim.call("GET", url)


def locations_url(sim: PartnerSimulator) -> str:
    return sim.peer_endpoint("locations")


def assert_valid(anchor: str, document: dict[str, Any]) -> None:
    errors = ocpi_rules.check(anchor, document)
    assert errors == [], errors


def _bulk_locations(tenant: Tenant, count: int) -> None:
    """`count` published locations in one INSERT; last_updated spread over 50 minutes so that many share a
    timestamp (the stable order must then fall back on the id)."""
    Location.objects.bulk_create(
        Location(
            tenant=tenant,
            name=f"Bulk {n}",
            address=f"Hauptstraße {n}",
            postal_code="10115",
            city="Berlin",
            country="DE",
            latitude=Decimal("52.520008"),
            longitude=Decimal("13.404954"),
        )
        for n in range(count)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE stations_location SET updated_at = %s + (id %% 50) * interval '1 minute' WHERE tenant_id = %s",
            [dt.datetime(2026, 1, 1, tzinfo=dt.UTC), tenant.pk],
        )


def _walk(sim: PartnerSimulator, url: str) -> tuple[list[dict[str, Any]], list[requests.Response]]:
    items: list[dict[str, Any]] = []
    responses: list[requests.Response] = []
    next_url: str | None = url
    while next_url:
        response = get(sim, next_url)
        body = assert_envelope(response, 200, 1000)
        items.extend(body["data"])
        responses.append(response)
        link = response.headers.get("Link")
        next_url = LINK.match(link).group(1) if link else None  # type: ignore[union-attr]
        assert len(responses) <= 200, "pagination does not end"
    return items, responses


def test_version_details_list_locations_as_sender(registered: tuple[RoamingPartner, PartnerSimulator]) -> None:
    _, sim = registered

    endpoint = next(e for e in sim.peer_endpoints if e["identifier"] == "locations")

    assert endpoint["role"] == "SENDER"
    assert endpoint["url"].endswith("/ocpi/cpo/2.2.1/locations")


def test_list_of_10000_locations_pages_with_headers_link_and_stable_order(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant, tenant_b: Tenant, settings: Any
) -> None:
    _, sim = registered
    settings.OCPI_PAGE_LIMIT = 1000
    _bulk_locations(tenant_a, 10_000)
    _bulk_locations(tenant_b, 30)  # another tenant's: never shown to tenant A's partner
    expected = list(Location.objects.filter(tenant=tenant_a).order_by("updated_at", "pk").values_list("pk", flat=True))

    items, responses = _walk(sim, f"{locations_url(sim)}?limit=5000")

    assert [int(item["id"]) for item in items] == expected  # every one once, in (last_updated, id) order
    assert len(responses) == 10
    for index, response in enumerate(responses):
        assert response.headers["X-Total-Count"] == "10000"
        assert response.headers["X-Limit"] == "1000"  # the asked 5000 capped at the server's limit
        if index < 9:
            query = parse_qs(urlsplit(LINK.match(response.headers["Link"]).group(1)).query)  # type: ignore[union-attr]
            assert query == {"offset": [str((index + 1) * 1000)], "limit": ["1000"]}
        else:
            assert "Link" not in response.headers
    assert [item["last_updated"] for item in items] == sorted(item["last_updated"] for item in items)
    for item in items[:50]:
        assert_valid("mod_locations_location_object", item)


def test_date_filters_from_inclusive_to_exclusive_carried_by_the_link(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant, settings: Any
) -> None:
    _, sim = registered
    settings.OCPI_PAGE_LIMIT = 100
    _bulk_locations(tenant_a, 1000)  # 20 per minute, from 2026-01-01T00:00:00Z
    date_from, date_to = "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"
    expected = list(
        Location.objects.filter(
            tenant=tenant_a,
            updated_at__gte=dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC),
            updated_at__lt=dt.datetime(2026, 1, 1, 0, 20, tzinfo=dt.UTC),
        )
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)
    )
    assert len(expected) == 200

    items, responses = _walk(sim, f"{locations_url(sim)}?date_from={date_from}&date_to={date_to}&limit=150")

    assert [int(item["id"]) for item in items] == expected
    assert {item["last_updated"] for item in items} == {f"2026-01-01T00:{m:02d}:00Z" for m in range(10, 20)}
    assert [r.headers["X-Total-Count"] for r in responses] == ["200", "200"]
    assert [r.headers["X-Limit"] for r in responses] == ["100", "100"]
    query = parse_qs(urlsplit(LINK.match(responses[0].headers["Link"]).group(1)).query)  # type: ignore[union-attr]
    assert query == {"offset": ["100"], "limit": ["100"], "date_from": [date_from], "date_to": [date_to]}


@pytest.mark.parametrize(
    "query",
    ["offset=-1", "limit=abc", "date_from=yesterday", "date_to=2026-13-01T00:00:00Z", "country=DE"],
)
def test_bad_list_parameters_are_2001(registered: tuple[RoamingPartner, PartnerSimulator], query: str) -> None:
    _, sim = registered

    body = assert_envelope(get(sim, f"{locations_url(sim)}?{query}"), 200, 2001)

    assert "data" not in body


def _site(tenant: Tenant) -> tuple[Location, ChargePoint, Evse, Connector]:
    location = LocationFactory(
        tenant=tenant,
        ocpi_id="LOC-1",
        name="Parkhaus Mitte",
        address="Sehr lange Straßenbezeichnung mit Hausnummer und Zusatz 123-125",  # > 45 characters
        postal_code="",
        country="NO",
        latitude=Decimal("-59.9"),
        longitude=Decimal("-10.75"),
        timezone="Europe/Oslo",
        parking_type=Location.ParkingType.PARKING_GARAGE,
        opening_24_7=False,
    )
    charge_point = ChargePointFactory(tenant=tenant, location=location, identity="CP-OCPI-VERY-LONG-IDENTITY")
    ChargePoint.objects.filter(pk=charge_point.pk).update(online=True)
    charge_point.refresh_from_db()
    evse = EvseFactory(charge_point=charge_point, connector_id=1, evse_uid="NO*ALP*E1*1", status="Charging")
    connector = ConnectorFactory(evse=evse, power_type=Connector.PowerType.DC, max_electric_power=150_000)
    ConnectorFactory(evse=evse, standard=Connector.Standard.CHADEMO, format=Connector.Format.CABLE)
    # a second EVSE with a 40-character eMI3 id (longer than EVSE.uid's 36) and no connector described yet
    EvseFactory(charge_point=charge_point, connector_id=2, evse_uid="NO*ALP*E" + "9" * 30 + "*2", status="Faulted")
    # a decommissioned one: REMOVED, without its evse_id
    EvseFactory(charge_point=charge_point, connector_id=3, evse_uid="NO*ALP*E1*3", decommissioned_at=timezone.now())
    return location, charge_point, evse, connector


def test_every_emitted_location_evse_and_connector_follows_the_spec(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant
) -> None:
    partner, sim = registered
    location, _cp, evse, connector = _site(tenant_a)
    LocationFactory(tenant=tenant_a, ocpi_id="", parking_type="")  # defaults: id from our key, Berlin

    items, _ = _walk(sim, locations_url(sim))
    base = locations_url(sim)
    single = assert_envelope(get(sim, f"{base}/LOC-1"), 200, 1000)["data"]
    one_evse = assert_envelope(get(sim, f"{base}/LOC-1/{evse.pk}"), 200, 1000)["data"]
    one_connector = assert_envelope(get(sim, f"{base}/LOC-1/{evse.pk}/{connector.pk}"), 200, 1000)["data"]

    assert len(items) == 2
    for item in items:
        assert_valid("mod_locations_location_object", item)
    assert_valid("mod_locations_location_object", single)
    assert_valid("mod_locations_evse_object", one_evse)
    assert_valid("mod_locations_connector_object", one_connector)
    site = next(item for item in items if item["id"] == "LOC-1")
    assert site == single
    assert (site["country_code"], site["party_id"]) == (partner.our_country_code, partner.our_party_id)
    assert site["country"] == "NOR"
    assert site["coordinates"] == {"latitude": "-59.900000", "longitude": "-10.750000"}
    assert site["address"] == location.address[:45]
    assert "postal_code" not in site
    assert "opening_times" not in site
    evses = list(Evse.objects.filter(charge_point__location=location).order_by("connector_id"))
    assert [(e["uid"], e["status"], e.get("evse_id")) for e in site["evses"]] == [
        (str(evses[0].pk), "CHARGING", "NO*ALP*E1*1"),
        (str(evses[1].pk), "OUTOFORDER", "NO*ALP*E" + "9" * 30 + "*2"),
        (str(evses[2].pk), "REMOVED", None),
    ]
    assert one_evse == site["evses"][0]
    assert [c["standard"] for c in one_evse["connectors"]] == ["IEC_62196_T2", "CHADEMO"]
    assert one_connector == {
        "id": str(connector.pk),
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "DC",
        "max_voltage": 400,
        "max_amperage": 32,
        "max_electric_power": 150000,
        "last_updated": connector.updated_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    plain = next(item for item in items if item["id"] != "LOC-1")
    assert plain["country"] == "DEU"
    assert plain["opening_times"] == {"twentyfourseven": True}


def test_connectors_name_the_tariff_that_applies_there_when_the_partner_sees_it(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant
) -> None:
    partner, sim = registered
    _location, charge_point, evse, _connector = _site(tenant_a)
    other = EvseFactory(charge_point=charge_point, connector_id=4, evse_uid="NO*ALP*E1*4")
    ConnectorFactory(evse=other)
    default = tariff_services.tariff_create(tenant=tenant_a, ocpi_id="AC-DEFAULT", currency="EUR", elements=ENERGY)
    fast = tariff_services.tariff_create(tenant=tenant_a, ocpi_id="DC-FAST", currency="EUR", elements=ENERGY)
    ad_hoc = tariff_services.tariff_create(tenant=tenant_a, ocpi_id="AD-HOC", currency="EUR", elements=ENERGY)
    tariff_services.tariff_assignment_create(tenant=tenant_a, tariff=default)
    tariff_services.tariff_assignment_create(tenant=tenant_a, tariff=fast, evse=evse)
    tariff_services.tariff_assignment_create(tenant=tenant_a, tariff=ad_hoc, charge_point=charge_point, ad_hoc=True)
    base = locations_url(sim)

    def named() -> dict[str, list[list[str] | None]]:
        site = assert_envelope(get(sim, f"{base}/LOC-1"), 200, 1000)["data"]
        assert_valid("mod_locations_location_object", site)
        return {e["uid"]: [c.get("tariff_ids") for c in e["connectors"]] for e in site["evses"]}

    # the most specific regular tariff: the EVSE's own, else the tenant default (ad hoc is not for roaming drivers)
    found = named()
    assert found[str(evse.pk)] == [["DC-FAST"], ["DC-FAST"]]
    assert found[str(other.pk)] == [["AC-DEFAULT"]]
    one_evse = assert_envelope(get(sim, f"{base}/LOC-1/{other.pk}"), 200, 1000)["data"]
    assert [c["tariff_ids"] for c in one_evse["connectors"]] == [["AC-DEFAULT"]]
    connector = other.connectors.get()
    one = assert_envelope(get(sim, f"{base}/LOC-1/{other.pk}/{connector.pk}"), 200, 1000)["data"]
    assert one["tariff_ids"] == ["AC-DEFAULT"]

    # a partner shown only some tariffs is never sent an id it cannot fetch
    partner.tariffs.set([fast])
    found = named()
    assert found[str(evse.pk)] == [["DC-FAST"], ["DC-FAST"]]
    assert found[str(other.pk)] == [None]


def test_offline_charger_shows_unknown_and_status_change_moves_last_updated(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant
) -> None:
    _, sim = registered
    location, charge_point, evse, _ = _site(tenant_a)
    Location.objects.filter(pk=location.pk).update(updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    Evse.objects.filter(charge_point=charge_point).update(updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    Connector.objects.filter(evse__charge_point=charge_point).update(updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    seen = dt.datetime(2026, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    Evse.objects.filter(pk=evse.pk).update(status_received_at=seen)
    ChargePoint.objects.filter(pk=charge_point.pk).update(online=False)
    base = locations_url(sim)

    site = assert_envelope(get(sim, f"{base}/LOC-1"), 200, 1000)["data"]
    newer = assert_envelope(get(sim, f"{base}?date_from=2026-02-03T04:05:06Z"), 200, 1000)
    older = assert_envelope(get(sim, f"{base}?date_from=2026-02-03T04:05:07Z"), 200, 1000)

    assert {e["status"] for e in site["evses"]} == {"UNKNOWN", "REMOVED"}
    assert site["last_updated"] == "2026-02-03T04:05:06Z"  # the EVSE's status is part of the location's
    assert [item["id"] for item in newer["data"]] == ["LOC-1"]
    assert older["data"] == []


@pytest.mark.parametrize(
    "path",
    ["/NOPE", "/LOC-1/NOPE", "/LOC-1/NO*ALP*E1*1", "/LOC-1/{evse}/999999999", "/OTHER-TENANT", "/UNPUBLISHED"],
)
def test_unknown_objects_are_404_in_the_envelope(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant, tenant_b: Tenant, path: str
) -> None:
    _, sim = registered
    _location, _cp, evse, _connector = _site(tenant_a)
    LocationFactory(tenant=tenant_b, ocpi_id="OTHER-TENANT")
    LocationFactory(tenant=tenant_a, ocpi_id="UNPUBLISHED", publish=False)

    body = assert_envelope(get(sim, f"{locations_url(sim)}{path.format(evse=evse.pk)}"), 404, 2003)

    assert "data" not in body


def test_locations_need_the_module_and_a_registered_token(
    ocpi_base: str, registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant
) -> None:
    partner, sim = registered
    _pending, token_a = partner_for(tenant_a, country_code="NL", party_id="AAA", enabled_modules=["locations"])
    url = locations_url(sim)

    with_token_a = sim.call("GET", url, token=token_a)
    RoamingPartner.objects.filter(pk=partner.pk).update(enabled_modules=["tokens"])
    not_enabled = get(sim, url)

    assert_envelope(with_token_a, 401, 2000)
    assert_envelope(not_enabled, 404, 2000)
