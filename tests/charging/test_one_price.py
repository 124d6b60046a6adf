"""One price per session: what completion computes and stores (session + CDR) is what the driver was shown, what
the receipt or invoice bills and what the driver API says; idle time comes from what the charger reported.

Sessions go through the real services a charger's messages call (StartTransaction, MeterValues,
StatusNotification, StopTransaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.billing import services as billing_services
from apps.billing.models import Invoice, InvoiceKind
from apps.core.errors import ApplicationError
from apps.customers.models import TokenType
from apps.sessions import services
from apps.sessions.models import Cdr, ChargingSession
from apps.stations import services as station_services
from apps.tenants.models import Role, Tenant
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory, TariffFactory
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 9, 9, 0, tzinfo=dt.UTC)  # Monday 10:00 in Berlin


def _component(kind: str, price: str, step: int = 1) -> dict[str, Any]:
    return {"type": kind, "price": price, "vat": "19", "step_size": step}


STANDARD = [
    {
        "price_components": [
            _component("ENERGY", "0.39"),
            _component("TIME", "0.60", 60),
            _component("PARKING_TIME", "6.00", 900),
        ]
    }
]
AD_HOC = [{"price_components": [_component("FLAT", "1.00"), _component("ENERGY", "0.69")]}]


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.fixture
def site(tenant_a: Tenant) -> dict[str, Any]:
    charge_point = ChargePointFactory(tenant=tenant_a)
    evse = EvseFactory(charge_point=charge_point, connector_id=1)
    ConnectorFactory(evse=evse, max_electric_power=22_000)
    return {"charge_point": charge_point, "evse": evse, "location": charge_point.location}


def charge(
    charge_point_id: int,
    id_tag: str,
    *,
    minutes: int = 30,
    kw: int = 11,
    statuses: tuple[tuple[float, str], ...] = ((0, "Charging"),),
    parked: float = 0,
    stop_after_last_reading: dt.timedelta = dt.timedelta(milliseconds=50),
    complete: bool = True,
) -> ChargingSession:
    """A session as a charger reports it: StartTransaction, a MeterValues reading (register + power) every minute
    while charging (and every minute while parked), StatusNotifications at the given minutes, StopTransaction
    `stop_after_last_reading` after the last reading; then (`complete`) its pricing and CDR, as the stop's
    SessionStopped delivery does."""
    session, info = services.session_start(
        charge_point_id=charge_point_id, connector_id=1, id_tag=id_tag, meter_start=100_000, timestamp=T0
    )
    assert info.status == "Accepted"
    for minute, status in statuses:
        station_services.status_record(
            charge_point_id=charge_point_id, connector_id=1, status=status, timestamp=at(minute)
        )
    register = 100_000
    for minute in range(1, int(minutes + parked) + 1):
        drawing = minute <= minutes
        register += kw * 1000 // 60 if drawing else 0
        services.session_add_meter_values(
            charge_point_id=charge_point_id,
            connector_id=1,
            transaction_id=session.pk,
            meter_value=[
                {
                    "timestamp": at(minute).isoformat(),
                    "sampled_value": [
                        {"value": str(register), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                        {"value": str(kw * 1000 if drawing else 0), "measurand": "Power.Active.Import", "unit": "W"},
                    ],
                }
            ],
        )
    services.session_stop(
        charge_point_id=charge_point_id,
        transaction_id=session.pk,
        meter_stop=register,
        timestamp=at(minutes + parked) + stop_after_last_reading,
        reason="Local",
    )
    if complete:
        services.session_completion(session_id=session.pk)
    return ChargingSession.objects.get(pk=session.pk)


def test_the_receipt_of_a_registered_driver_is_the_sessions_price_not_the_ad_hoc_tariffs(
    tenant_a: Tenant, site: dict[str, Any]
) -> None:
    # given the regular tariff and an ad hoc tariff (card payers) as the tenant's defaults, and a driver with a card
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="STD", elements=STANDARD))
    TariffAssignmentFactory(
        tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="ADHOC", elements=AD_HOC), ad_hoc=True
    )
    driver = DriverFactory(tenant=tenant_a)
    token = TokenFactory(tenant=tenant_a, driver=driver)

    session = charge(site["charge_point"].pk, token.uid)
    receipt = billing_services.session_receipt_issue(session=session)

    # 30 min at 11 kW: 183 Wh a minute = 5.49 kWh x 0.39 = 2.1411 -> 2.14 (x 1.19 = 2.5479 -> 2.55);
    # 30 min 0.05 s -> 31 min (step 60 s) x 0.60/h = 0.31 (x 1.19 = 0.3689 -> 0.37)
    assert session.tariff is not None
    assert session.tariff.ocpi_id == "STD"
    assert (session.cost_excl_vat, session.cost_incl_vat) == (Decimal("2.45"), Decimal("2.92"))
    assert receipt is not None
    assert (receipt.total_excl_vat, receipt.total_incl_vat) == (session.cost_excl_vat, session.cost_incl_vat)
    cdr = Cdr.objects.get(session=session)
    assert cdr.total_cost == {"excl_vat": receipt.total_excl_vat, "incl_vat": receipt.total_incl_vat}
    assert [c["dimension"] for c in receipt.lines.get().components] == ["ENERGY", "TIME"]


def test_a_card_payers_one_time_token_gets_the_ad_hoc_tariff_on_the_session_and_the_receipt(
    tenant_a: Tenant, site: dict[str, Any]
) -> None:
    # an OCPI AD_HOC_USER token: issued once by the card terminal / payment page, no driver behind it
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="STD", elements=STANDARD))
    TariffAssignmentFactory(
        tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="ADHOC", elements=AD_HOC), ad_hoc=True
    )
    token = TokenFactory(tenant=tenant_a, uid="PAY-7F3A", type=TokenType.AD_HOC_USER)

    session = charge(site["charge_point"].pk, token.uid)
    receipt = billing_services.session_receipt_issue(session=session)

    # FLAT 1.00 + 5.49 kWh x 0.69 = 3.7881 -> 3.79: 4.79 excl.; 1.19 + 4.5081 -> 4.51 = 5.70 incl.
    assert session.tariff is not None
    assert session.tariff.ocpi_id == "ADHOC"
    assert (session.cost_excl_vat, session.cost_incl_vat) == (Decimal("4.79"), Decimal("5.70"))
    assert receipt is not None
    assert (receipt.total_excl_vat, receipt.total_incl_vat) == (Decimal("4.79"), Decimal("5.70"))
    assert receipt.customer_name == "Ad hoc customer"


def test_the_price_a_fleet_driver_is_shown_is_the_price_applied_and_invoiced(
    tenant_a: Tenant, site: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    # given a driver who works for a fleet (the card is the driver's, not the fleet's) and the fleet's price list
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="STD", elements=STANDARD))
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    ContractPriceListFactory(
        tenant=tenant_a,
        business_customer=fleet,
        energy_price_per_kwh=Decimal("0.30"),
        discount_percent=Decimal("50"),
        session_fee=Decimal("0"),
        monthly_fee=Decimal("0"),
    )
    driver = DriverFactory(tenant=tenant_a, business_customer=fleet)
    token = TokenFactory(tenant=tenant_a, driver=driver)

    shown = client_for(tenant_a, Role.ADMIN).get("/api/v1/driver/stations/", {"driver": driver.pk})
    session = charge(site["charge_point"].pk, token.uid)
    report = billing_services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    assert shown.status_code == 200, shown.content
    price = shown.json()["results"][0]["evses"][0]["price"]
    assert (price["tariff_id"], price["per_kwh"]["excl_vat"], price["per_minute"]["excl_vat"]) == (
        "STD",
        "0.3000",  # the contract's energy price
        "0.0050",  # 0.60/h less 50 % = 0.30/h
    )
    # 5.49 kWh x 0.30 = 1.647 -> 1.65 (x 1.19 = 1.95993 -> 1.96); 31 min x 0.30/h = 0.155 -> 0.16 (0.18445 -> 0.18)
    assert session.business_customer_id == fleet.pk
    assert (session.cost_excl_vat, session.cost_incl_vat) == (Decimal("1.81"), Decimal("2.14"))
    assert len(report.issued) == 1
    assert report.unpriced_sessions == {}
    line = Invoice.objects.get(business_customer=fleet).lines.get(session_id=session.pk)
    assert (line.total_excl_vat, line.total_incl_vat) == (session.cost_excl_vat, session.cost_incl_vat)
    assert not Invoice.objects.filter(kind=InvoiceKind.RECEIPT).exists()


def test_the_seconds_between_the_last_meter_value_and_the_stop_are_not_parking(
    tenant_a: Tenant, site: dict[str, Any]
) -> None:
    # the demo's simulated chargers: readings every minute while charging, StopTransaction 50 ms after the last
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, elements=STANDARD))
    token = TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a))

    session = charge(site["charge_point"].pk, token.uid)

    cdr = Cdr.objects.get(session=session)
    assert cdr.total_parking_cost is None  # was a 15-minute block: 1.50 / 1.79
    assert cdr.total_parking_time == Decimal("0")
    assert set(session.cost_breakdown["by_dimension"]) == {"ENERGY", "TIME"}
    assert session.cost_breakdown["idle"] == []


def test_parking_starts_when_the_charger_says_suspended_ev_and_after_the_grace_period(
    tenant_a: Tenant, site: dict[str, Any]
) -> None:
    # charging 30 min, the charger reports SuspendedEV at 30 min, the car stays 60 min; the tariff gives 15 min
    TariffAssignmentFactory(
        tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, elements=STANDARD, parking_grace_minutes=15)
    )
    token = TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a))

    session = charge(site["charge_point"].pk, token.uid, statuses=((0, "Charging"), (30, "SuspendedEV")), parked=60)

    cdr = Cdr.objects.get(session=session)
    # idle 60 min 0.05 s, 15 min free: 45 min 0.05 s -> 60 min (step 900) x 6.00/h = 6.00 / 7.14
    assert cdr.total_parking_cost == {"excl_vat": Decimal("6.00"), "incl_vat": Decimal("7.14")}
    assert cdr.total_parking_time == Decimal("1.000014")
    assert session.cost_breakdown["parking_grace_minutes"] == 15
    assert [span["evidence"] for span in session.cost_breakdown["idle"]] == ["status:SuspendedEV+meter"]
    assert session.cost_breakdown["idle"][0]["start"] == at(30).isoformat()


def test_the_tenants_grace_period_applies_where_the_tariff_sets_none(tenant_a: Tenant, site: dict[str, Any]) -> None:
    tenant_a.parking_grace_minutes = 90
    tenant_a.save(update_fields=["parking_grace_minutes"])
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, elements=STANDARD))
    token = TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a))

    session = charge(site["charge_point"].pk, token.uid, statuses=((0, "Charging"), (30, "Finishing")), parked=60)

    cdr = Cdr.objects.get(session=session)
    assert cdr.total_parking_cost is None
    assert cdr.total_parking_time == Decimal("1.000014")


def test_a_session_no_tariff_prices_is_visible_as_not_priced_and_never_billed(
    tenant_a: Tenant, site: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    token = TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a))

    session = charge(site["charge_point"].pk, token.uid)
    api = client_for(tenant_a, Role.ADMIN).get(f"/api/v1/driver/sessions/{session.pk}/")

    assert (session.cost_excl_vat, session.cost_incl_vat, session.tariff_id) == (None, None, None)
    assert session.pricing_error == "no tariff applies"
    assert Cdr.objects.get(session=session).remark == "not priced: no tariff applies"
    assert api.status_code == 200
    body = api.json()
    assert (body["cost_excl_vat"], body["cost_so_far"], body["pricing_error"]) == (None, None, "no tariff applies")
    with pytest.raises(ApplicationError) as exc:
        billing_services.session_receipt_issue(session=session)
    assert exc.value.code == "session_not_priced"
    assert not Invoice.objects.exists()
    # ops find it in the admin
    admin = Client()
    admin.force_login(MembershipFactory(tenant=tenant_a, role=Role.READ_ONLY, user=UserFactory()).user)
    page = admin.get("/admin/charging/chargingsession/", {"priced": "no"})
    assert [obj.pk for obj in page.context["cl"].result_list] == [session.pk]


def test_a_contract_price_list_in_another_currency_is_not_applied_silently(
    tenant_a: Tenant, site: dict[str, Any], client_for: Callable[..., APIClient]
) -> None:
    tariff = TariffFactory(tenant=tenant_a, ocpi_id="STD", elements=STANDARD)
    TariffAssignmentFactory(tenant=tenant_a, tariff=tariff)
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    ContractPriceListFactory(tenant=tenant_a, business_customer=fleet, name="Fleet CHF", currency="CHF")
    driver = DriverFactory(tenant=tenant_a, business_customer=fleet)
    token = TokenFactory(tenant=tenant_a, driver=driver)

    shown = client_for(tenant_a, Role.ADMIN).get("/api/v1/driver/stations/", {"driver": driver.pk})
    session = charge(site["charge_point"].pk, token.uid)

    # the driver is shown no price (none can be applied), and the session is not priced: not billed at the
    # site's price without the contract, not converted
    assert shown.json()["results"][0]["evses"][0]["price"] is None
    assert (session.cost_excl_vat, session.cost_incl_vat) == (None, None)
    assert session.pricing_error == "the contract price list 'Fleet CHF' is in CHF, the tariff STD in EUR"
