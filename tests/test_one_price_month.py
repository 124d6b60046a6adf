"""Issue 12's done-when test for money: over every session of a generated month, the CDR total = the receipt or
invoice line = the export's cost columns = the driver API's cost (and the session.ended webhook's), to the cent.

The month (March 2026, Europe/Berlin, with its DST change) is generated with a seeded random generator and
driven through the real services a charger's messages call: StartTransaction (`session_start`), a MeterValues
reading every 10 minutes (`session_add_meter_values`: register and power), StatusNotifications (`status_record`:
Charging, SuspendedEV, Finishing) and StopTransaction (`session_stop`, 30 ms after the last reading), so the
pricing evidence is real. Then the real receipt job (what the SessionEnded subscriber queues), the real monthly
invoicing run, the real export (stored lines, its own REPEATABLE READ connection) and the real driver API.

Tariff kinds: energy only; energy + charging time; energy + time + parking with a grace period; flat fee;
minimum / maximum price; time-of-day restrictions (night price, parking only by day); the ad hoc tariff. Drivers:
private drivers (receipts), one-time ad hoc payment tokens (receipts at the ad hoc tariff), a fleet with a contract
price list (monthly invoice, price list applied at completion), a fleet driver without a price list (invoice).
Sessions with no idle time, idle reported by SuspendedEV or Finishing, idle seen by the meter alone, idle inside
the grace period.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from apps.analytics.models import NotificationEvent, WebhookSubscription
from apps.billing import tasks as billing_tasks
from apps.billing.models import Invoice, InvoiceKind, InvoiceLine
from apps.customers.models import TokenType
from apps.reports import services as report_services
from apps.reports.models import ExportStatus, PendingLine
from apps.sessions import services as charging
from apps.sessions.models import Cdr, ChargingSession, SessionStatus
from apps.stations import services as station_services
from apps.tariffs import services as tariff_services
from apps.tenants.models import Tenant
from tests.customers.factories import BusinessCustomerFactory, ContractFactory, DriverFactory, TokenFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import ContractPriceListFactory
from tests.tenants.factories import TenantFactory, api_key_for

pytestmark = pytest.mark.django_db(transaction=True)

CENT = Decimal("0.01")
MONTH_START = dt.datetime(2026, 3, 1, 0, 0, tzinfo=dt.UTC)
READING_EVERY = dt.timedelta(minutes=10)


def component(kind: str, price: str, step: int = 1) -> dict[str, Any]:
    return {"type": kind, "price": price, "vat": "19", "step_size": step}


TARIFFS: dict[str, dict[str, Any]] = {
    "ENERGY": {"elements": [{"price_components": [component("ENERGY", "0.39")]}]},
    "TIME": {"elements": [{"price_components": [component("ENERGY", "0.25"), component("TIME", "1.20", 60)]}]},
    "PARKING": {
        "parking_grace_minutes": 10,
        "elements": [
            {
                "price_components": [
                    component("ENERGY", "0.39"),
                    component("TIME", "0.60", 60),
                    component("PARKING_TIME", "6.00", 900),
                ]
            }
        ],
    },
    "FLAT": {"elements": [{"price_components": [component("FLAT", "1.50"), component("ENERGY", "0.35")]}]},
    "MINMAX": {
        "min_price": {"excl_vat": "3.00", "incl_vat": "3.57"},
        "max_price": {"excl_vat": "9.00", "incl_vat": "10.71"},
        "elements": [{"price_components": [component("ENERGY", "0.59")]}],
    },
    "TOD": {
        "elements": [
            {
                "price_components": [component("ENERGY", "0.29")],
                "restrictions": {"start_time": "22:00", "end_time": "06:00"},
            },
            {
                "price_components": [component("ENERGY", "0.49"), component("PARKING_TIME", "3.00", 60)],
                "restrictions": {"start_time": "06:00", "end_time": "22:00"},
            },
        ]
    },
    "ADHOC": {
        "type": "AD_HOC_PAYMENT",
        "elements": [{"price_components": [component("FLAT", "1.00"), component("ENERGY", "0.69")]}],
    },
}


@dataclass
class Network:
    tenant: Tenant
    chargers: dict[str, Any]  # tariff kind -> charge point (its connector 1)
    evses: dict[str, Any]
    payers: dict[str, list[Any]]  # payer kind -> tokens ("private", "fleet_contract", "fleet_driver")
    fleets: dict[str, Any]
    drivers: dict[str, Any]


def build_network() -> Network:
    tenant = TenantFactory(
        name="Month Charge", slug="month", ocpi_country_code="DE", ocpi_party_id="MON", timezone="Europe/Berlin"
    )
    tariffs = {
        kind: tariff_services.tariff_create(tenant=tenant, currency="EUR", ocpi_id=f"MON-{kind}", **spec)
        for kind, spec in TARIFFS.items()
    }
    north = LocationFactory(tenant=tenant, name="Nord", timezone="Europe/Berlin")
    south = LocationFactory(tenant=tenant, name="Süd", timezone="Europe/Berlin")
    chargers, evses = {}, {}
    for kind in ("ENERGY", "TIME", "PARKING", "FLAT", "MINMAX", "TOD"):
        cp = ChargePointFactory(tenant=tenant, location=south if kind == "FLAT" else north, identity=f"MON-{kind}")
        evse = EvseFactory(charge_point=cp, connector_id=1, evse_uid=f"DE*MON*E{kind}*1")
        ConnectorFactory(evse=evse, max_electric_power=22_000)
        chargers[kind], evses[kind] = cp, evse
    # every level of the precedence: tenant default, location, charge point, EVSE; the ad hoc default
    tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariffs["ENERGY"])
    tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariffs["ADHOC"], ad_hoc=True)
    tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariffs["FLAT"], location=south)
    for kind in ("TIME", "MINMAX", "TOD"):
        tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariffs[kind], charge_point=chargers[kind])
    tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariffs["PARKING"], evse=evses["PARKING"])

    contract_fleet = BusinessCustomerFactory(tenant=tenant, name="Fuhrpark")
    ContractPriceListFactory(
        tenant=tenant,
        business_customer=contract_fleet,
        energy_price_per_kwh=Decimal("0.30"),
        discount_percent=Decimal("10"),
        session_fee=Decimal("0.25"),
        monthly_fee=Decimal("9.90"),
    )
    contract = ContractFactory(tenant=tenant, business_customer=contract_fleet)
    plain_fleet = BusinessCustomerFactory(tenant=tenant, name="Kurier")
    private = [DriverFactory(tenant=tenant) for _ in range(3)]
    fleet_contract_driver = DriverFactory(tenant=tenant, business_customer=contract_fleet)
    fleet_driver = DriverFactory(tenant=tenant, business_customer=plain_fleet)
    payers = {
        "private": [TokenFactory(tenant=tenant, driver=d) for d in private],
        "fleet_contract": [
            TokenFactory(tenant=tenant, driver=fleet_contract_driver, business_contract=contract) for _ in range(2)
        ],
        "fleet_driver": [TokenFactory(tenant=tenant, driver=fleet_driver)],
    }
    return Network(
        tenant=tenant,
        chargers=chargers,
        evses=evses,
        payers=payers,
        fleets={"fleet_contract": contract_fleet, "fleet_driver": plain_fleet},
        drivers={"private": private[0], "fleet_contract": fleet_contract_driver, "fleet_driver": fleet_driver},
    )


@dataclass(frozen=True)
class Plan:
    charger: str
    payer: str  # private / fleet_contract / fleet_driver / ad_hoc
    start: dt.datetime
    charging_minutes: int
    kw: int
    idle: str  # none / suspended_ev / finishing / meter / grace
    idle_minutes: int


def month_plan(rng: random.Random) -> list[Plan]:
    """About 35 sessions, one after another through March, every tariff kind with every payer kind and idle kind
    at least once where it matters."""
    plans: list[Plan] = []
    at = MONTH_START + dt.timedelta(hours=7)
    chargers = ["ENERGY", "TIME", "PARKING", "FLAT", "MINMAX", "TOD"]
    payers = ["private", "fleet_contract", "fleet_driver", "ad_hoc"]
    idles = ["none", "suspended_ev", "finishing", "meter", "grace"]
    n = 0
    while at < dt.datetime(2026, 3, 30, 12, tzinfo=dt.UTC):
        charger = chargers[n % len(chargers)]
        payer = payers[(n // len(chargers)) % len(payers)]
        idle = idles[n % len(idles)] if charger in ("PARKING", "TOD", "ENERGY") else rng.choice(idles)
        minutes = rng.randint(15, 150)
        idle_minutes = rng.randint(3, 8) if idle == "grace" else rng.randint(12, 95) if idle != "none" else 0
        # a third of the sessions start in the evening, so the night price (from 22:00 local) is crossed
        start = at.replace(hour=rng.choice([6, 9, 13, 16, 19, 20, 20]), minute=rng.randint(0, 59), second=0)
        if start < at:
            start += dt.timedelta(days=1)
        kw = 50 if charger == "MINMAX" and n % 4 == 0 else rng.choice([4, 7, 11, 22])
        plans.append(Plan(charger, payer, start, minutes, kw, idle, idle_minutes))
        at = start + dt.timedelta(minutes=minutes + idle_minutes + 30)
        at += dt.timedelta(hours=rng.randint(2, 14))
        n += 1
    return plans


def drive(network: Network, plan: Plan, index: int, meter: int) -> tuple[ChargingSession, int]:
    """One session as a charger reports it; returns the session and the charger's register after it."""
    cp = network.chargers[plan.charger]
    if plan.payer == "ad_hoc":  # a one-time token of the card terminal / payment page (OCPI AD_HOC_USER)
        token = TokenFactory(tenant=network.tenant, uid=f"PAY{index:06d}", type=TokenType.AD_HOC_USER)
    else:
        tokens = network.payers[plan.payer]
        token = tokens[index % len(tokens)]
    session, info = charging.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag=token.uid, meter_start=meter, timestamp=plan.start
    )
    assert info.status == "Accepted", (plan, info)
    station_services.status_record(charge_point_id=cp.pk, connector_id=1, status="Charging", timestamp=plan.start)
    charging_until = plan.start + dt.timedelta(minutes=plan.charging_minutes)
    stop_at = charging_until + dt.timedelta(minutes=plan.idle_minutes)
    if plan.idle in ("suspended_ev", "finishing", "grace"):
        status = "Finishing" if plan.idle == "finishing" else "SuspendedEV"
        station_services.status_record(charge_point_id=cp.pk, connector_id=1, status=status, timestamp=charging_until)
    at, last = plan.start, plan.start
    while at + READING_EVERY <= stop_at:
        at += READING_EVERY
        drawing = at <= charging_until
        if drawing:
            meter += plan.kw * 1000 * int(READING_EVERY.total_seconds()) // 3600
        charging.session_add_meter_values(
            charge_point_id=cp.pk,
            connector_id=1,
            transaction_id=session.pk,
            meter_value=[
                {
                    "timestamp": at.isoformat(),
                    "sampled_value": [
                        {"value": str(meter), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                        {"value": str(plan.kw * 1000 if drawing else 0), "measurand": "Power.Active.Import"},
                    ],
                }
            ],
        )
        last = at
    charging.session_stop(
        charge_point_id=cp.pk,
        transaction_id=session.pk,
        meter_stop=meter,
        timestamp=max(last, stop_at) + dt.timedelta(milliseconds=30),
        reason="EVDisconnected",
    )
    station_services.status_record(
        charge_point_id=cp.pk, connector_id=1, status="Available", timestamp=stop_at + dt.timedelta(seconds=5)
    )
    return ChargingSession.objects.get(pk=session.pk), meter


def price_pair(value: dict[str, Any]) -> tuple[Decimal, Decimal]:
    return Decimal(str(value["excl_vat"])).quantize(CENT), Decimal(str(value["incl_vat"])).quantize(CENT)


def test_every_session_of_a_month_has_one_price_from_cdr_to_bill_export_driver_api_and_webhook(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    settings.REPORTS_EXPORT_DIR = tmp_path / "exports"
    settings.MEDIA_ROOT = tmp_path / "media"
    network = build_network()
    tenant = network.tenant
    WebhookSubscription.objects.create(tenant=tenant, name="ERP", url="http://127.0.0.1:9/hook", event_types=[])
    rng = random.Random(20260301)
    plans = month_plan(rng)

    # what the driver app shows now, per EVSE: no driver (ad hoc), a private driver, each fleet's driver
    _, raw_key = api_key_for(tenant, ["driver:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    shown: dict[tuple[str, str], dict[str, Any] | None] = {}
    for payer, driver in (("ad_hoc", None), *network.drivers.items()):
        query = {"driver": driver.pk} if driver is not None else {}
        body = api.get("/api/v1/driver/stations/", {**query, "page_size": 50}).json()
        for location in body["results"]:
            for evse in location["evses"]:
                kind = evse["evse_id"].split("*")[2][1:]
                shown[(kind, payer)] = evse["price"]

    # when a month of sessions is charged through the real services
    sessions: list[ChargingSession] = []
    meters = dict.fromkeys(network.chargers, 1_000_000)
    for index, plan in enumerate(plans):
        session, meters[plan.charger] = drive(network, plan, index, meters[plan.charger])
        sessions.append(session)
    # ... the receipt job runs for each (what the SessionEnded subscriber queues), the monthly run, the export
    for session in sessions:
        billing_tasks.session_receipt(session.pk, send=False)
    summary = billing_tasks.invoicing_run_month(tenant_id=tenant.pk, year=2026, month=3)
    report_services.session_lines_render()
    assert not PendingLine.objects.filter(tenant_id=tenant.pk).exists()  # the export reads the stored lines
    job = report_services.export_job_create(
        tenant=tenant,
        requested_by=None,
        personal_data=True,
        date_from=MONTH_START,
        date_to=MONTH_START + dt.timedelta(days=31),
    )
    done = report_services.export_job_run(job_id=job.pk)

    # then every session completed and was priced
    assert len(sessions) >= 30
    assert {s.status for s in sessions} == {SessionStatus.COMPLETED}
    assert [s.pk for s in sessions if s.cost_excl_vat is None] == []
    assert summary == {"issued": 2, "skipped": 0, "failed": 0}

    cdrs = {c.session_id: c for c in Cdr.objects.filter(session__in=sessions)}
    billed: dict[int, InvoiceLine] = {}
    for line in InvoiceLine.objects.filter(invoice__tenant=tenant, session_id__isnull=False).select_related("invoice"):
        assert line.session_id not in billed  # billed once
        billed[line.session_id] = line
    assert done is not None
    assert done.status == ExportStatus.DONE, done.error
    with (Path(settings.REPORTS_EXPORT_DIR) / done.file_name).open(encoding="utf-8-sig", newline="") as handle:
        exported = {int(row["Session id"]): row for row in csv.DictReader(handle)}
    webhooks = {
        event.payload["session_id"]: event.payload
        for event in NotificationEvent.objects.filter(tenant=tenant, type="session.ended")
    }
    history: dict[int, dict[str, Any]] = {}
    for driver in [*network.payers["private"], *network.payers["fleet_contract"], *network.payers["fleet_driver"]]:
        page = api.get("/api/v1/driver/sessions/", {"driver": driver.driver_id, "page_size": 500}).json()
        history |= {row["id"]: row for row in page["results"]}

    seen: Counter[str] = Counter()
    for plan, session in zip(plans, sessions, strict=True):
        cdr = cdrs[session.pk]
        total = price_pair(cdr.total_cost)
        where = (session.pk, plan)
        # the session and its CDR
        assert (session.cost_excl_vat, session.cost_incl_vat) == total, where
        assert cdr.currency == session.currency == "EUR", where
        # the receipt, or the line of the fleet's monthly invoice
        line = billed[session.pk]
        assert (line.total_excl_vat, line.total_incl_vat) == total, where
        kind = line.invoice.kind
        if plan.payer in ("fleet_contract", "fleet_driver"):
            assert (kind, line.invoice.business_customer_id) == (InvoiceKind.INVOICE, network.fleets[plan.payer].pk)
        else:
            assert (kind, line.invoice.total_incl_vat) == (InvoiceKind.RECEIPT, total[1]), where
        # the export's cost columns (stored lines)
        row = exported[session.pk]
        assert (Decimal(row["Cost excl. VAT"]), Decimal(row["Cost incl. VAT"])) == total, where
        assert Decimal(row["VAT"]) == total[1] - total[0], where
        assert (row["Currency"], row["Tariff"]) == ("EUR", session.tariff.ocpi_id if session.tariff else ""), where
        # the driver API: the live view of the ended session, and the driver's history
        detail = api.get(f"/api/v1/driver/sessions/{session.pk}/").json()
        assert detail["cost_so_far"] == {"currency": "EUR", "excl_vat": str(total[0]), "incl_vat": str(total[1])}
        assert price_pair({"excl_vat": detail["cost_excl_vat"], "incl_vat": detail["cost_incl_vat"]}) == total
        if plan.payer != "ad_hoc":
            listed = history[session.pk]
            assert price_pair({"excl_vat": listed["cost_excl_vat"], "incl_vat": listed["cost_incl_vat"]}) == total
        # the session.ended webhook
        assert webhooks[session.pk]["cost"] == {"currency": "EUR", "excl_vat": str(total[0]), "incl_vat": str(total[1])}
        assert webhooks[session.pk]["energy_wh"] == session.energy_wh  # the KPI fact's totals ride along
        # the tariff the driver app showed for this EVSE and payer is the tariff that priced the session
        assert session.tariff is not None
        price_shown = shown[(plan.charger, plan.payer)]
        assert price_shown is not None
        assert price_shown["tariff_id"] == session.tariff.ocpi_id, where
        # what the month covered
        groups = set(session.cost_breakdown["by_dimension"])
        seen.update(f"group:{g}" for g in groups)
        seen[f"tariff:{session.tariff.ocpi_id}"] += 1
        seen[f"payer:{plan.payer}"] += 1
        seen[f"idle:{plan.idle}"] += 1
        if session.cost_breakdown["idle"] and "PARKING_TIME" not in groups and plan.charger == "PARKING":
            seen["idle inside the grace period"] += 1
        if "PARKING_TIME" in groups:
            seen["parking billed"] += 1
        elements = {line["description"] for line in session.cost_breakdown["lines"]}
        if plan.charger == "TOD" and any("0.29/kWh" in e for e in elements):
            seen["night price"] += 1

    # the contract's price was shown to the fleet's driver, and applied
    assert shown[("ENERGY", "fleet_contract")]["per_kwh"] == {"excl_vat": "0.3000", "incl_vat": "0.3570"}  # type: ignore[index]
    assert shown[("ENERGY", "private")]["per_kwh"] == {"excl_vat": "0.3900", "incl_vat": "0.4641"}  # type: ignore[index]
    # every kind of tariff, payer and idle time was in the month
    for key in (
        *(f"tariff:MON-{k}" for k in TARIFFS),
        *(f"group:{g}" for g in ("ENERGY", "TIME", "PARKING_TIME", "FLAT", "PRICE_LIMIT", "CONTRACT_FEE")),
        *(f"payer:{p}" for p in ("private", "fleet_contract", "fleet_driver", "ad_hoc")),
        *(f"idle:{i}" for i in ("none", "suspended_ev", "finishing", "meter", "grace")),
        "idle inside the grace period",
        "parking billed",
        "night price",
    ):
        assert seen[key] > 0, (key, seen)
    # and the money adds up: receipts + invoice session lines = every CDR
    assert sum((billed[s.pk].total_incl_vat for s in sessions), Decimal(0)) == sum(
        (price_pair(c.total_cost)[1] for c in cdrs.values()), Decimal(0)
    )
    fees = InvoiceLine.objects.filter(invoice__tenant=tenant, session_id__isnull=True)
    assert [(f.invoice.business_customer_id, f.total_excl_vat) for f in fees] == [
        (network.fleets["fleet_contract"].pk, Decimal("9.90"))  # the contract's monthly fee, once
    ]
    assert Invoice.objects.filter(tenant=tenant, kind=InvoiceKind.RECEIPT).count() == sum(
        1 for p in plans if p.payer in ("private", "ad_hoc")
    )
