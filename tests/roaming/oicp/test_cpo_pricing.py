"""Dynamic pricing at Hubject (apps/roaming/oicp/cpo_pricing.py): our tariffs as pricing products, and the products
at each of our EVSEs Hubject holds, against the local Hubject over real HTTPS with mutual TLS (every body checked
against the CPO file by the client before sending and by the hub on receipt)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.roaming.models import OicpConnection
from apps.roaming.oicp import cpo_pricing, cpo_push
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.tariffs import services as tariff_services
from apps.tariffs.models import Tariff
from apps.tenants.models import Tenant
from tests.roaming.conftest import wait_until
from tests.roaming.oicp.conftest import OPERATOR_ID, hubject_site
from tests.roaming.oicp.factories import oicp_connection_for

pytestmark = pytest.mark.django_db(transaction=True)


def _component(kind: str, price: str, step: int = 1) -> dict[str, Any]:
    return {"type": kind, "price": price, "vat": "19", "step_size": step}


def _tariff(ocpi_id: str, elements: list[dict[str, Any]], **fields: Any) -> Tariff:
    return Tariff(ocpi_id=ocpi_id, currency="EUR", elements=elements, **fields)


def test_a_night_tariff_is_two_products_that_never_overlap() -> None:
    night = _tariff(
        "NIGHT",
        [
            {
                "price_components": [_component("ENERGY", "0.29")],
                "restrictions": {"start_time": "22:00", "end_time": "06:00"},
            },
            {"price_components": [_component("ENERGY", "0.39"), _component("PARKING_TIME", "6.00", 900)]},
        ],
    )

    first, second = cpo_pricing.products(night, 22.0)

    assert (first["ProductID"], first["ReferenceUnit"], first["PricePerReferenceUnit"]) == (
        "NIGHT",
        "KILOWATT_HOUR",
        0.29,
    )
    assert first["IsValid24hours"] is False
    assert first["ProductAvailabilityTimes"] == [
        {"Periods": [{"begin": "00:00", "end": "06:00"}, {"begin": "22:00", "end": "24:00"}], "on": "Everyday"}
    ]
    assert (second["ProductID"], second["PricePerReferenceUnit"]) == ("NIGHT-2", 0.39)
    assert second["ProductAvailabilityTimes"] == [{"Periods": [{"begin": "06:00", "end": "22:00"}], "on": "Everyday"}]
    assert second["AdditionalReferences"] == [
        {
            "AdditionalReference": "PARKING FEE",
            "AdditionalReferenceUnit": "HOUR",
            "PricePerAdditionalReferenceUnit": 6.0,
        }
    ]
    assert first["MaximumProductChargingPower"] == second["MaximumProductChargingPower"] == 22.0


def test_weekend_prices_fees_and_what_oicp_cannot_say() -> None:
    weekend = _tariff(
        "WKND",
        [
            {"price_components": [_component("TIME", "3.00")], "restrictions": {"day_of_week": ["SATURDAY", "SUNDAY"]}},
            {
                "price_components": [_component("FLAT", "1.00"), _component("ENERGY", "0.45")],
                "restrictions": {"max_power": 11},
            },
        ],
        min_price_excl_vat=Decimal("2.00"),
    )
    saturday, workday = cpo_pricing.products(weekend, 50.0)
    assert (saturday["ReferenceUnit"], saturday["PricePerReferenceUnit"]) == ("HOUR", 3.0)
    assert saturday["ProductAvailabilityTimes"] == [{"Periods": [{"begin": "00:00", "end": "24:00"}], "on": "Weekend"}]
    assert workday["ProductAvailabilityTimes"] == [{"Periods": [{"begin": "00:00", "end": "24:00"}], "on": "Workdays"}]
    assert workday["MaximumProductChargingPower"] == 11.0
    assert [
        (r["AdditionalReference"], r["PricePerAdditionalReferenceUnit"]) for r in workday["AdditionalReferences"]
    ] == [
        ("START FEE", 1.0),
        ("MINIMUM FEE", 2.0),
    ]

    standard = _tariff("STD", [{"price_components": [_component("ENERGY", "0.39"), _component("TIME", "1.20", 60)]}])
    with pytest.raises(cpo_pricing.NotExpressible, match="energy and charging time together"):
        cpo_pricing.products(standard, 22.0)
    by_kwh = _tariff("KWH", [{"price_components": [_component("ENERGY", "0.3")], "restrictions": {"min_kwh": 5}}])
    with pytest.raises(cpo_pricing.NotExpressible, match="restricted by min_kwh"):
        cpo_pricing.products(by_kwh, 22.0)


@pytest.fixture
def site(tenant_a: Tenant) -> dict[str, Any]:
    """Two EVSEs of ours (AC 22 kW, DC 300 kW) and one of another operator."""
    return hubject_site(tenant_a)


@pytest.fixture
def connection(tenant_a: Tenant, hub: HubSimulator, pki: LocalCA) -> OicpConnection:
    hub.add_party("cpo.voltnet", operator_id=OPERATOR_ID)
    return oicp_connection_for(tenant_a, pki=pki, base_url=hub.url, hotline_phone_number="+4930123456")


def test_products_and_evse_pricing_reach_hubject_and_follow_tariff_changes(
    connection: OicpConnection,
    hub: HubSimulator,
    site: Any,
    tenant_a: Tenant,
) -> None:
    ac = tariff_services.tariff_create(
        tenant=tenant_a,
        ocpi_id="AC",
        currency="EUR",
        elements=[{"price_components": [_component("ENERGY", "0.39")]}],
    )
    dc = tariff_services.tariff_create(
        tenant=tenant_a,
        ocpi_id="DC",
        currency="EUR",
        elements=[{"price_components": [_component("FLAT", "0.50"), _component("ENERGY", "0.59")]}],
    )
    tariff_services.tariff_assignment_create(tenant=tenant_a, tariff=ac)  # the tenant's default
    tariff_services.tariff_assignment_create(tenant=tenant_a, tariff=dc, evse=site["dc"])
    # nothing priced before Hubject holds our EVSEs (no EVSE, no product)
    empty = cpo_pricing.pricing_sync(connection_id=connection.pk)
    assert (empty.products, empty.evses) == (0, 0)
    cpo_push.evse_data_sync(connection_id=connection.pk)

    result = cpo_pricing.pricing_sync(connection_id=connection.pk)

    assert (result.products, result.evses, result.sent, result.skipped) == (2, 2, True, [])
    products = hub.pricing_products[OPERATOR_ID.replace("*", "")]
    assert sorted(products) == ["AC", "DC"]
    assert products["DC"]["MaximumProductChargingPower"] == 300.0
    assert products["AC"]["MaximumProductChargingPower"] == 22.0
    assert products["DC"]["AdditionalReferences"][0]["AdditionalReference"] == "START FEE"
    pricing = hub.evse_pricing[OPERATOR_ID.replace("*", "")]
    assert {evse: record["EvseIDProductList"] for evse, record in pricing.items()} == {
        "DE*ABC*E1001*1": ["AC"],
        "DE*ABC*E1001*2": ["DC"],
    }
    call = hub.calls("PushPricingProductData")[-1]
    assert call.body["PricingProductData"]["ProviderID"] == "*"
    assert call.body["PricingProductData"]["PricingDefaultPrice"] == 0.39

    # unchanged: nothing sent again
    assert cpo_pricing.pricing_sync(connection_id=connection.pk).sent is False
    assert len(hub.calls("PushEVSEPricing")) == 2

    # the DC tariff now also prices charging time: OICP cannot say it, so the DC EVSE has no product at Hubject
    tariff_services.tariff_update(
        tariff=dc, elements=[{"price_components": [_component("ENERGY", "0.59"), _component("TIME", "1.20", 60)]}]
    )
    changed = cpo_pricing.pricing_sync(connection_id=connection.pk)
    assert (changed.sent, changed.products, changed.skipped) == (
        True,
        1,
        ["DC: element 1 prices energy and charging time together"],
    )
    assert sorted(hub.pricing_products[OPERATOR_ID.replace("*", "")]) == ["AC"]
    assert sorted(hub.evse_pricing[OPERATOR_ID.replace("*", "")]) == ["DE*ABC*E1001*1"]


def test_a_tariff_change_reaches_hubject_through_the_worker(
    connection: OicpConnection,
    hub: HubSimulator,
    site: Any,
    tenant_a: Tenant,
    celery_worker: str,
) -> None:
    ac = tariff_services.tariff_create(
        tenant=tenant_a, ocpi_id="AC", currency="EUR", elements=[{"price_components": [_component("ENERGY", "0.39")]}]
    )
    tariff_services.tariff_assignment_create(tenant=tenant_a, tariff=ac)
    cpo_push.evse_data_sync(connection_id=connection.pk)
    cpo_pricing.pricing_sync(connection_id=connection.pk)

    tariff_services.tariff_update(tariff=ac, elements=[{"price_components": [_component("ENERGY", "0.45")]}])

    wait_until(
        lambda: hub.pricing_products[OPERATOR_ID.replace("*", "")]["AC"]["PricePerReferenceUnit"] == 0.45,
        what="the new price at Hubject",
    )
