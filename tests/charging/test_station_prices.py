"""Station search with prices: per EVSE, the tariff that would price the caller's session (tariffs precedence:
EVSE > charge point > location > tenant default; ad hoc for a caller without a driver; the driver's contract
price list applied), summarised per kWh / per minute / per session incl. VAT, in a constant number of queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.sessions import selectors
from apps.tariffs import pricing
from apps.tenants.models import Role, Tenant
from tests.customers.factories import BusinessCustomerFactory, DriverFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/driver/stations/"
# caller access, driver, the page's location ids, those locations with their EVSEs and connectors (one statement),
# tariff assignments, tariffs, and the roaming partners' location ids (eMSP: none here)
QUERIES = 7


def _elements(*components: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"price_components": [{"type": t, "price": p, "vat": "19", "step_size": 1} for t, p in components]}]


@pytest.fixture
def network(tenant_a: Tenant) -> dict[str, Any]:
    location = LocationFactory(tenant=tenant_a, name="Mitte")
    ac = ChargePointFactory(tenant=tenant_a, location=location)
    ac_evses = [EvseFactory(charge_point=ac, connector_id=n, evse_uid=f"DE*ALP*E1*{n}") for n in (1, 2)]
    for evse in ac_evses:
        ConnectorFactory(evse=evse, max_electric_power=11_000)
    dc = ChargePointFactory(tenant=tenant_a, location=location)
    dc_evse = EvseFactory(charge_point=dc, connector_id=1, evse_uid="DE*ALP*E2*1")
    ConnectorFactory(evse=dc_evse, standard="IEC_62196_T2_COMBO", power_type="DC", max_electric_power=150_000)
    regular = TariffFactory(
        tenant=tenant_a, ocpi_id="REGULAR", elements=_elements(("ENERGY", "0.39"), ("FLAT", "0.50"))
    )
    adhoc = TariffFactory(tenant=tenant_a, ocpi_id="ADHOC", elements=_elements(("ENERGY", "0.59")))
    fast = TariffFactory(tenant=tenant_a, ocpi_id="FAST", elements=_elements(("ENERGY", "0.69"), ("TIME", "6.00")))
    TariffAssignmentFactory(tenant=tenant_a, tariff=regular)  # tenant default
    TariffAssignmentFactory(tenant=tenant_a, tariff=adhoc, ad_hoc=True)  # tenant default for ad hoc drivers
    TariffAssignmentFactory(tenant=tenant_a, tariff=fast, evse=dc_evse)  # the fast EVSE
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    return {
        "location": location,
        "ac": ac_evses,
        "dc": dc_evse,
        "driver": DriverFactory(tenant=tenant_a),
        "fleet_driver": DriverFactory(tenant=tenant_a, business_customer=fleet),
        "fleet": fleet,
    }


def _prices(response: Any, location_id: int) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    row = next(r for r in response.json()["results"] if r["id"] == location_id)
    return {e["evse_id"]: e["price"] for e in row["evses"]}


def _p(excl: str, incl: str) -> dict[str, str]:
    return {"excl_vat": excl, "incl_vat": incl}


def test_a_driver_sees_the_tariff_of_each_evse_with_a_price_summary(
    network: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    response = client_for(tenant_a, Role.ADMIN).get(
        URL, {"lat": "52.52", "lon": "13.40", "driver": network["driver"].pk}
    )

    regular = {
        "tariff_id": "REGULAR",
        "currency": "EUR",
        "per_kwh": _p("0.3900", "0.4641"),
        "per_minute": None,
        "parking_per_minute": None,
        "parking_grace_minutes": 0,
        "per_session": _p("0.5000", "0.5950"),
        "text": "0.4641 EUR/kWh + 0.5950 EUR per session incl. VAT",
    }
    assert _prices(response, network["location"].pk) == {
        "DE*ALP*E1*1": regular,
        "DE*ALP*E1*2": regular,
        "DE*ALP*E2*1": {  # the EVSE's own tariff wins over the tenant default
            "tariff_id": "FAST",
            "currency": "EUR",
            "per_kwh": _p("0.6900", "0.8211"),
            "per_minute": _p("0.1000", "0.1190"),  # 6.00 per hour
            "parking_per_minute": None,
            "parking_grace_minutes": 0,
            "per_session": None,
            "text": "0.8211 EUR/kWh + 0.1190 EUR/min incl. VAT",
        },
    }


def test_a_caller_without_a_driver_gets_the_ad_hoc_price(
    network: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    response = client_for(tenant_a, Role.ADMIN).get(URL, {"lat": "52.52", "lon": "13.40"})

    prices = _prices(response, network["location"].pk)
    # an ad hoc assignment anywhere beats the regular chain (tariffs precedence), even the EVSE's own tariff
    assert {evse: (p["tariff_id"], p["per_kwh"]) for evse, p in prices.items()} == {
        "DE*ALP*E1*1": ("ADHOC", _p("0.5900", "0.7021")),
        "DE*ALP*E1*2": ("ADHOC", _p("0.5900", "0.7021")),
        "DE*ALP*E2*1": ("ADHOC", _p("0.5900", "0.7021")),
    }


def test_a_fleet_driver_gets_the_contract_price_list(
    network: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    ContractPriceListFactory(
        tenant=tenant_a,
        business_customer=network["fleet"],
        discount_percent=Decimal("10"),
        energy_price_per_kwh=Decimal("0.30"),
        valid_from=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )

    response = client_for(tenant_a, Role.ADMIN).get(URL, {"driver": network["fleet_driver"].pk})

    ac = _prices(response, network["location"].pk)["DE*ALP*E1*1"]
    assert (ac["tariff_id"], ac["per_kwh"], ac["per_session"]) == (
        "REGULAR",
        _p("0.3000", "0.3570"),  # the contract's energy price
        _p("0.4500", "0.5355"),  # the site's flat fee less 10 %
    )


def test_no_tariff_means_no_price(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    location = LocationFactory(tenant=tenant_a)
    ConnectorFactory(evse=EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a, location=location)))

    response = client_for(tenant_a, Role.ADMIN).get(URL)

    assert list(_prices(response, location.pk).values()) == [None]


@pytest.mark.parametrize(
    ("driver", "status", "code"), [("abc", 400, "validation_error"), ("other", 404, "driver_not_found")]
)
def test_a_bad_or_foreign_driver_is_refused(
    driver: str, status: int, code: str, tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient]
) -> None:
    value = str(DriverFactory(tenant=tenant_b).pk) if driver == "other" else driver

    response = client_for(tenant_a, Role.ADMIN).get(URL, {"driver": value})

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_prices_keep_a_constant_number_of_queries(
    network: dict[str, Any], tenant_a: Tenant, client_for: Callable[..., APIClient], settings: Any
) -> None:
    settings.HOT_READ_CACHE = False  # what a cache miss reads (a hit reads no station or tariff at all)
    client = client_for(tenant_a, Role.ADMIN)
    params = {"lat": "52.52", "lon": "13.40", "driver": network["driver"].pk}
    client.get(URL, params)  # warm caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(URL, params).status_code == 200
    for n in range(6):  # more locations, charge points, EVSEs and EVSE-level tariffs
        location = LocationFactory(tenant=tenant_a)
        cp = ChargePointFactory(tenant=tenant_a, location=location)
        for c in (1, 2):
            evse = EvseFactory(charge_point=cp, connector_id=c)
            ConnectorFactory(evse=evse)
            tariff = TariffFactory(tenant=tenant_a, elements=_elements(("ENERGY", f"0.{40 + n}")))
            TariffAssignmentFactory(tenant=tenant_a, tariff=tariff, evse=evse)
    with CaptureQueriesContext(connection) as many:
        response = client.get(URL, params)

    assert len(response.json()["results"]) == 7
    assert len(many) == len(few) == QUERIES


def test_the_summary_follows_time_restrictions_in_local_time() -> None:
    tariff = pricing.tariff_from_ocpi(
        {
            "currency": "EUR",
            "elements": [
                {
                    "price_components": [{"type": "ENERGY", "price": "0.25", "vat": "19", "step_size": 1}],
                    "restrictions": {"start_time": "22:00", "end_time": "06:00"},
                },
                {
                    "price_components": [{"type": "ENERGY", "price": "0.45", "vat": "19", "step_size": 1}],
                    "restrictions": {"min_power": "50"},
                },
                {"price_components": [{"type": "ENERGY", "price": "0.39", "step_size": 1}]},
            ],
        }
    )
    night = dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC)
    day = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

    def per_kwh(local: dt.datetime, power_w: int) -> dict[str, str] | None:
        summary = selectors.price_summary(tariff, local=local, vat_default=Decimal("20"), power_w=power_w)
        return summary["per_kwh"]  # type: ignore[no-any-return]

    assert per_kwh(night, 11_000) == _p("0.2500", "0.2975")
    assert per_kwh(day, 150_000) == _p("0.4500", "0.5355")  # fast-charging element, the EVSE can do 50 kW
    assert per_kwh(day, 11_000) == _p("0.3900", "0.4680")  # no VAT on the component: the tenant's 20 %
