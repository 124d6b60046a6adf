"""Which tariff applies where (EVSE > charge point > location > tenant default, ad hoc), and pricing with a
stored tariff."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from apps.tariffs import pricing, selectors, services
from apps.tariffs.models import Tariff
from apps.tenants.models import Tenant
from tests.stations.factories import ChargePointFactory, EvseFactory
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def site(tenant_a: Tenant) -> dict[str, Any]:
    """An EVSE on a charge point at a location, with a tariff assigned on every level."""
    evse = EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a))
    charge_point = evse.charge_point
    location = charge_point.location
    tariffs = {name: TariffFactory(tenant=tenant_a, ocpi_id=name) for name in ("tenant", "location", "cp", "evse")}
    TariffAssignmentFactory(tenant=tenant_a, tariff=tariffs["tenant"])
    TariffAssignmentFactory(tenant=tenant_a, tariff=tariffs["location"], location=location)
    TariffAssignmentFactory(tenant=tenant_a, tariff=tariffs["cp"], charge_point=charge_point)
    TariffAssignmentFactory(tenant=tenant_a, tariff=tariffs["evse"], evse=evse)
    return {
        "evse": evse,
        "charge_point": charge_point,
        "location": location,
        **{f"t_{k}": v for k, v in tariffs.items()},
    }


def chosen(tenant: Tenant, **ids: Any) -> str | None:
    tariff = selectors.tariff_for(tenant_id=tenant.pk, at=NOW, **ids)
    return None if tariff is None else tariff.ocpi_id


def test_the_most_specific_assignment_wins(site: dict[str, Any], tenant_a: Tenant) -> None:
    evse, cp, loc = site["evse"].pk, site["charge_point"].pk, site["location"].pk

    assert chosen(tenant_a, evse_id=evse, charge_point_id=cp, location_id=loc) == "evse"
    assert chosen(tenant_a, charge_point_id=cp, location_id=loc) == "cp"
    assert chosen(tenant_a, location_id=loc) == "location"
    assert chosen(tenant_a) == "tenant"
    # another EVSE of the same charge point falls back to the charge point's tariff
    other = EvseFactory(charge_point=site["charge_point"], connector_id=2)
    assert chosen(tenant_a, evse_id=other.pk, charge_point_id=cp, location_id=loc) == "cp"


def test_tariff_for_takes_two_queries(site: dict[str, Any], tenant_a: Tenant, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(2):
        selectors.tariff_for(tenant_id=tenant_a.pk, at=NOW, evse_id=site["evse"].pk)


def test_ad_hoc_drivers_get_the_ad_hoc_chain_first(site: dict[str, Any], tenant_a: Tenant) -> None:
    evse = site["evse"].pk

    before = chosen(tenant_a, evse_id=evse, ad_hoc=True)  # no ad hoc tariff anywhere: the regular chain
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="adhoc"), ad_hoc=True)

    assert before == "evse"
    assert chosen(tenant_a, evse_id=evse, ad_hoc=True) == "adhoc"
    assert chosen(tenant_a, evse_id=evse) == "evse"  # contract drivers never get the ad hoc tariff


def test_validity_of_assignment_and_tariff(tenant_a: Tenant) -> None:
    old = TariffFactory(tenant=tenant_a, ocpi_id="old", end_date_time=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    new = TariffFactory(tenant=tenant_a, ocpi_id="new", start_date_time=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    later = TariffFactory(tenant=tenant_a, ocpi_id="later")
    TariffAssignmentFactory(tenant=tenant_a, tariff=old)
    TariffAssignmentFactory(tenant=tenant_a, tariff=new, valid_from=dt.datetime(2024, 4, 1, tzinfo=dt.UTC))
    TariffAssignmentFactory(tenant=tenant_a, tariff=later, valid_from=dt.datetime(2024, 7, 1, tzinfo=dt.UTC))

    def at(day: str) -> str | None:
        tariff = selectors.tariff_for(tenant_id=tenant_a.pk, at=dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC))
        return None if tariff is None else tariff.ocpi_id

    # March: only "old" is valid; April: "new"'s assignment started but the tariff itself starts in May
    assert [at("2024-03-01"), at("2024-04-15"), at("2024-06-01"), at("2024-07-02")] == ["old", "old", "new", "later"]


def test_other_tenants_assignments_never_apply(tenant_a: Tenant, tenant_b: Tenant) -> None:
    TariffAssignmentFactory(tenant=tenant_b)

    assert selectors.tariff_for(tenant_id=tenant_a.pk, at=NOW) is None


def test_price_list_for_picks_the_current_one(tenant_a: Tenant) -> None:
    first = ContractPriceListFactory(tenant=tenant_a, valid_from=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    second = ContractPriceListFactory(
        tenant=tenant_a, business_customer=first.business_customer, valid_from=dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    )
    customer = first.business_customer.pk

    assert selectors.price_list_for(business_customer_id=customer, at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC)) == first
    assert selectors.price_list_for(business_customer_id=customer, at=NOW) == second
    assert selectors.price_list_for(business_customer_id=customer, at=dt.datetime(2023, 1, 1, tzinfo=dt.UTC)) is None


def test_session_cost_prices_meter_values_with_a_stored_tariff_and_price_list(tenant_a: Tenant) -> None:
    # stored tariff: 0.39/kWh (19 %); 10 % contract discount and 0.50 session fee (19 %).
    #   11 kWh in one hour: 11 x 0.351 = 3.861 -> 3.86; x 1.19 = 4.59459 -> 4.59; fee 0.50 / 0.595 -> 0.60
    tariff = TariffFactory(tenant=tenant_a)
    price_list = ContractPriceListFactory(tenant=tenant_a, vat_rate=Decimal(19))
    start, stop = NOW, NOW + dt.timedelta(hours=1)
    meter = [pricing.MeterSample(start, 100000, 11000), pricing.MeterSample(stop, 111000, 0)]

    periods, cost = selectors.session_cost(
        tariff=tariff,
        samples=meter,
        start=start,
        stop=stop,
        time_zone="Europe/Berlin",
        vat_rate=Decimal(19),
        price_list=price_list,
    )

    assert len(periods) == 1
    assert [(x.group, x.excl_vat, x.incl_vat) for x in cost.lines] == [
        ("ENERGY", Decimal("3.86"), Decimal("4.59")),
        ("CONTRACT_FEE", Decimal("0.50"), Decimal("0.60")),
    ]
    assert (cost.total_excl_vat, cost.total_incl_vat) == (Decimal("4.36"), Decimal("5.19"))


def test_tariff_document_is_the_ocpi_object(tenant_a: Tenant) -> None:
    tariff = services.tariff_create(
        tenant=tenant_a,
        ocpi_id="12",
        currency="EUR",
        elements=[{"price_components": [{"type": "TIME", "price": 2.0, "vat": 10.0, "step_size": 300}]}],
        max_price={"excl_vat": Decimal("10")},
    )
    tariff = Tariff.objects.select_related("tenant").get(pk=tariff.pk)

    doc = selectors.tariff_document(tariff)

    assert doc == {
        "country_code": "DE",
        "party_id": "ALP",
        "id": "12",
        "currency": "EUR",
        "max_price": {"excl_vat": Decimal("10.0000")},
        "elements": [
            {"price_components": [{"type": "TIME", "price": Decimal(2), "vat": Decimal(10), "step_size": 300}]}
        ],
        "last_updated": tariff.updated_at,
    }
