"""Demo tariffs, 60 days of completed sessions (priced, with CDRs) and last month's fleet invoices.

Idempotent: tariffs and price lists are looked up by their natural key (OCPI id, fleet + start) before they
are created through the tariffs services; the session history is skipped when the tenant already has
sessions flagged `DEMO_FLAG`; the monthly invoicing run skips invoices it already issued.

Fast: the session rows are bulk-created (one INSERT), then each goes through the sessions app's real
completion (`completion.session_complete`: pricing engine, cost, quality flags, immutable CDR), exactly
what a StopTransaction runs. Invoices are issued without rendering PDFs (they render on download).
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.analytics import services as analytics_services
from apps.billing import services as billing_services
from apps.customers import selectors as customer_selectors
from apps.customers.models import BusinessCustomer, Token, Vehicle
from apps.demo.customers_demo import CONTRACT_START
from apps.demo.stations_demo import demo_charger_ids
from apps.sessions import completion
from apps.sessions.models import ChargingSession, MeterValue, SessionStatus
from apps.stations.models import ChargePoint, Connector, Evse, Location, StatusEvent
from apps.tariffs import services as tariff_services
from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment, TariffType
from apps.tenants.models import Tenant

DEMO_FLAG = "demo_history"  # marks generated history sessions (idempotency, and to tell them apart)
HISTORY_DAYS = 60
PRICE_LIST_FLEET = "Stadtwerke Fuhrpark"
ADHOC_TAGS = ("ADHOC-CARD-0001", "ADHOC-CARD-0002")  # anonymous card payers: no token, priced ad hoc
ENERGY_REGISTER = "Energy.Active.Import.Register"
# prices per currency: (energy/kWh, time/h, parking/h, night energy/kWh, day energy/kWh, fast energy/kWh,
# fast min price, ad hoc energy/kWh, ad hoc flat, fleet energy/kWh, fleet session fee, fleet monthly fee)
PRICES = {
    "EUR": ("0.39", "0.60", "6.00", "0.29", "0.44", "0.59", "2.00", "0.69", "1.00", "0.34", "0.25", "19.00"),
    "NOK": ("3.90", "6.00", "60.00", "2.90", "4.40", "5.90", "20.00", "6.90", "10.00", "3.40", "2.50", "190.00"),
}


def _d(value: str) -> Decimal:
    return Decimal(value)


def _component(kind: str, price: str, vat: Decimal, step: int) -> dict[str, Any]:
    return {"type": kind, "price": price, "vat": str(vat), "step_size": step}


def _tariff_specs(tenant: Tenant) -> list[dict[str, Any]]:
    p = PRICES.get(tenant.currency, PRICES["EUR"])
    vat = tenant.default_vat_rate
    party = tenant.ocpi_party_id or tenant.slug[:3].upper()
    min_excl = _d(p[6])
    return [
        {
            "ocpi_id": f"{party}-STANDARD",
            "tariff_alt_text": [
                {"language": "en", "text": "Energy, charging time and parking from 15 minutes after charging."}
            ],
            "parking_grace_minutes": 15,
            "elements": [
                {
                    "price_components": [
                        _component("ENERGY", p[0], vat, 1),
                        _component("TIME", p[1], vat, 60),
                        _component("PARKING_TIME", p[2], vat, 900),
                    ]
                }
            ],
        },
        {
            "ocpi_id": f"{party}-NIGHT",
            "tariff_alt_text": [{"language": "en", "text": "Cheaper at night (22:00-06:00)."}],
            "elements": [
                {
                    "price_components": [_component("ENERGY", p[3], vat, 1)],
                    "restrictions": {"start_time": "22:00", "end_time": "06:00"},
                },
                {"price_components": [_component("ENERGY", p[4], vat, 1), _component("PARKING_TIME", p[2], vat, 900)]},
            ],
        },
        {
            "ocpi_id": f"{party}-FAST",
            "tariff_alt_text": [{"language": "en", "text": "DC fast charging, minimum price per session."}],
            "min_price": {"excl_vat": str(min_excl), "incl_vat": str((min_excl * (1 + vat / 100)).quantize(min_excl))},
            "elements": [{"price_components": [_component("ENERGY", p[5], vat, 1)]}],
        },
        {
            "ocpi_id": f"{party}-ADHOC",
            "type": TariffType.AD_HOC_PAYMENT,
            "tariff_alt_text": [{"language": "en", "text": "Pay by card: session fee plus energy."}],
            "elements": [{"price_components": [_component("FLAT", p[8], vat, 1), _component("ENERGY", p[7], vat, 1)]}],
        },
    ]


def _tariffs(tenant: Tenant) -> dict[str, Tariff]:
    tariffs: dict[str, Tariff] = {}
    for spec in _tariff_specs(tenant):
        tariff = Tariff.objects.filter(tenant=tenant, ocpi_id=spec["ocpi_id"]).first()
        tariffs[spec["ocpi_id"].rsplit("-", 1)[1]] = tariff or tariff_services.tariff_create(
            tenant=tenant, currency=tenant.currency, **spec
        )
    return tariffs


def _assign(tenant: Tenant, tariff: Tariff, **target: Any) -> None:
    if not TariffAssignment.objects.filter(tenant=tenant, tariff=tariff, **target).exists():
        tariff_services.tariff_assignment_create(tenant=tenant, tariff=tariff, **target)


def seed_tariffs(tenant: Tenant, *, since: dt.datetime) -> None:
    """Default STANDARD; NIGHT on the demo location from `since` + 30 days; FAST on the DC charger; ADHOC."""
    tariffs = _tariffs(tenant)
    _assign(tenant, tariffs["STANDARD"])
    _assign(tenant, tariffs["ADHOC"], ad_hoc=True)
    charge_points = {cp.identity: cp for cp in _charge_points(tenant)}
    if charge_points:
        dc = charge_points[demo_charger_ids(tenant)[-1]]
        _assign(tenant, tariffs["FAST"], charge_point=dc)
        location = dc.location
        if location is not None and not TariffAssignment.objects.filter(location=location).exists():
            # a tariff change half way through the history: the first 30 days are priced by the default
            switch = (since + dt.timedelta(days=HISTORY_DAYS // 2)).replace(hour=0, minute=0, second=0, microsecond=0)
            _assign(tenant, tariffs["NIGHT"], location=location, valid_from=switch)
    fleet = BusinessCustomer.objects.filter(tenant=tenant, name=PRICE_LIST_FLEET).first()
    if fleet is not None and not ContractPriceList.objects.filter(business_customer=fleet).exists():
        p = PRICES.get(tenant.currency, PRICES["EUR"])
        tariff_services.contract_price_list_create(
            tenant=tenant,
            business_customer=fleet,
            name=f"{PRICE_LIST_FLEET} fleet prices",
            currency=tenant.currency,
            energy_price_per_kwh=_d(p[9]),
            discount_percent=Decimal("10"),
            session_fee=_d(p[10]),
            monthly_fee=_d(p[11]),
            valid_from=CONTRACT_START,
        )


def _charge_points(tenant: Tenant) -> list[ChargePoint]:
    return list(
        ChargePoint.objects.filter(tenant=tenant, identity__in=demo_charger_ids(tenant)).select_related("location")
    )


# --------------------------------------------------------------------------- session history


@dataclass(frozen=True)
class _Driver:
    id_tag: str
    token: Token | None
    vehicle: Vehicle | None
    weight: int


def _demo_drivers(tenant: Tenant) -> list[_Driver]:
    tokens = Token.objects.filter(tenant=tenant, blocked=False, valid=True).select_related(
        "driver", "business_contract", "business_customer"
    )
    vehicles = {v.driver_id: v for v in Vehicle.objects.filter(tenant=tenant).order_by("pk")}
    drivers = [
        # fleet drivers charge most often (they make the invoices)
        _Driver(t.uid, t, vehicles.get(t.driver_id), 4 if t.business_contract_id else 2)
        for t in sorted(tokens, key=lambda t: t.uid)
    ]
    return drivers + [_Driver(tag, None, None, 1) for tag in ADHOC_TAGS]


def _session_row(
    *,
    tenant: Tenant,
    evse: Evse,
    connector: Connector,
    location: Location | None,
    driver: _Driver,
    start: dt.datetime,
    meter_start: int,
    rng: random.Random,
) -> tuple[ChargingSession, dt.datetime | None]:
    """One completed session (and when charging ended, when the car then stayed parked)."""
    dc = connector.power_type == Connector.PowerType.DC
    max_power = int(connector.max_electric_power or 22_000)
    vehicle = driver.vehicle
    if dc:
        car = vehicle.dc_max_power_w if vehicle is not None and vehicle.dc_max_power_w else 100_000
        power = int(min(max_power, car) * rng.uniform(0.45, 0.75))
        charging = dt.timedelta(minutes=rng.randint(12, 45))
        parked = dt.timedelta(minutes=rng.choice([0, 0, 0, 2, 5]))
    else:
        car = (vehicle.ac_max_current_a * 690) if vehicle is not None and vehicle.ac_max_current_a else 11_000
        power = int(min(max_power, car) * rng.uniform(0.7, 0.95))
        charging = dt.timedelta(minutes=rng.randint(40, 240))
        parked = dt.timedelta(minutes=rng.choice([0, 10, 25, 45, 90]))
    contract = driver.token.business_contract if driver.token is not None else None
    energy = int(power * charging.total_seconds() / 3600)
    limit_reached = ""
    if contract is not None and contract.max_session_energy_wh and energy > contract.max_session_energy_wh:
        energy, limit_reached = contract.max_session_energy_wh, "energy"  # held at 0 A, then parked
        charging = dt.timedelta(seconds=int(energy * 3600 / power))
    duration = charging + parked
    if contract is not None and contract.max_session_duration and duration > contract.max_session_duration:
        duration, limit_reached = contract.max_session_duration, "duration"  # stopped by the platform
        charging = min(charging, duration)
        energy = int(power * charging.total_seconds() / 3600)
    stop = start + duration
    token = driver.token
    session = ChargingSession(
        tenant=tenant,
        charge_point_id=evse.charge_point_id,
        evse=evse,
        connector_id=evse.connector_id,
        id_tag=driver.id_tag,
        auth_status="Accepted",
        status=SessionStatus.COMPLETED,
        started_at=start,
        stopped_at=stop,
        meter_start_wh=meter_start,
        meter_stop_wh=meter_start + energy,
        energy_wh=energy,
        last_meter_wh=meter_start + energy,
        last_meter_at=stop,
        stop_reason="Remote" if limit_reached == "duration" else rng.choice(["EVDisconnected", "Local"]),
        stop_id_tag=driver.id_tag,
        flags=[DEMO_FLAG],
        location=location,
        evse_connector=connector,
        token=token,
        driver=token.driver if token is not None else None,
        business_customer_id=customer_selectors.token_business_customer_id(token) if token is not None else None,
        contract=contract,
        vehicle=vehicle,
        auth_method="WHITELIST" if token is not None else "AUTH_REQUEST",
        max_power_w=max_power,
        last_power_w=0,
        limit_duration=contract.max_session_duration if contract is not None else None,
        limit_energy_wh=contract.max_session_energy_wh if contract is not None else None,
        limit_action=contract.limit_action if contract is not None and limit_reached else "",
        limit_reached=limit_reached,
        limit_reached_at=start + charging if limit_reached else None,
    )
    return session, (start + charging if charging < duration else None)


def seed_history(tenant: Tenant, *, now: dt.datetime) -> int:
    """A few hundred completed sessions over the last HISTORY_DAYS days; returns how many were created."""
    if ChargingSession.objects.filter(tenant=tenant, flags__contains=[DEMO_FLAG]).exists():
        return 0
    evses = list(
        Evse.objects.filter(tenant=tenant, charge_point__identity__in=demo_charger_ids(tenant))
        .select_related("charge_point__location")
        .prefetch_related("connectors")
        .order_by("charge_point__identity", "connector_id")
    )
    drivers = _demo_drivers(tenant)
    if not evses or not drivers:
        return 0
    # demo data, not secrets: a seeded generator gives the same shape every time (relative to `now`)
    rng = random.Random(f"demo-history-{tenant.slug}")  # noqa: S311
    weights = [d.weight for d in drivers]
    rows: list[tuple[ChargingSession, dt.datetime | None]] = []
    for evse in evses:
        connector = evse.connectors.all()[0]
        meter = rng.randint(1_000_000, 5_000_000)
        at = now - dt.timedelta(days=HISTORY_DAYS)
        while True:
            start = (at + dt.timedelta(minutes=rng.randint(6 * 60, 66 * 60))).replace(microsecond=0)
            session, charged_until = _session_row(
                tenant=tenant,
                evse=evse,
                connector=connector,
                location=evse.charge_point.location,
                driver=rng.choices(drivers, weights)[0],
                start=start,
                meter_start=meter,
                rng=rng,
            )
            assert session.stopped_at is not None
            assert session.meter_stop_wh is not None
            if session.stopped_at > now - dt.timedelta(minutes=30):
                break
            rows.append((session, charged_until))
            meter, at = session.meter_stop_wh, session.stopped_at
    sessions = ChargingSession.objects.bulk_create([session for session, _ in rows])
    # what the charger said: Charging at the start and, where the car stayed parked after charging, SuspendedEV
    # when it stopped drawing (the evidence the pricing engine bills parking from, after the tariff's grace
    # period), with a register reading at that moment; Available after the stop
    StatusEvent.objects.bulk_create(
        [
            StatusEvent(
                charge_point_id=session.charge_point_id,
                connector_id=session.connector_id,
                status=status,
                timestamp=at,
            )
            for session, (_, charged_until) in zip(sessions, rows, strict=True)
            for status, at in (
                ("Charging", session.started_at),
                ("SuspendedEV", charged_until),
                ("Available", (session.stopped_at or session.started_at) + dt.timedelta(seconds=5)),
            )
            if at is not None
        ]
    )
    MeterValue.objects.bulk_create(
        [
            MeterValue(
                session=session,
                charge_point_id=session.charge_point_id,
                connector_id=session.connector_id,
                timestamp=charged_until,
                measurand=ENERGY_REGISTER,
                context="Sample.Periodic",
                unit="Wh",
                value=Decimal(session.meter_stop_wh or 0),
            )
            for session, (_, charged_until) in zip(sessions, rows, strict=True)
            if charged_until is not None
        ]
    )
    for session in sessions:
        completion.session_complete(session=session)
    return len(sessions)


def seed_invoices(tenant: Tenant, *, now: dt.datetime) -> billing_services.RunReport:
    """The fleet invoices of the previous calendar month (tenant's local time), PDFs left to render on demand."""
    first_of_month = now.astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date().replace(day=1)
    previous = first_of_month - dt.timedelta(days=1)
    return billing_services.invoicing_run_month(tenant=tenant, year=previous.year, month=previous.month, render=False)


def seed_history_demo(tenant: Tenant) -> None:
    now = timezone.now()
    seed_tariffs(tenant, since=now - dt.timedelta(days=HISTORY_DAYS))
    seed_history(tenant, now=now)
    # the history was bulk-created, not charged through chargers: give the dashboard its figures
    analytics_services.session_facts_backfill(tenant_id=tenant.pk)
    analytics_services.rollup_run(lag=dt.timedelta(0))
    seed_invoices(tenant, now=now)
