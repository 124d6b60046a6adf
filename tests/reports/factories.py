from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from apps.customers.models import Token, Vehicle
from apps.reports.models import ExportJob
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint, Evse
from apps.tariffs.models import Tariff
from apps.tenants.models import Tenant
from tests.stations.factories import EvseFactory
from tests.tenants.factories import TenantFactory

START = dt.datetime(2025, 1, 15, 9, 0, tzinfo=dt.UTC)


class ExportJobFactory(DjangoModelFactory[ExportJob]):
    class Meta:
        model = ExportJob

    tenant = factory.SubFactory(TenantFactory)
    format = "csv"


def make_sessions(
    tenant: Tenant,
    count: int,
    *,
    evse: Evse | None = None,
    id_tag: str = "04A1B2C3D4",
    first: int = 0,
    token: Token | None = None,
    vehicle: Vehicle | None = None,
    tariff: Tariff | None = None,
) -> list[ChargingSession]:
    """`count` completed sessions, one a minute from START (+ `first` minutes), 1.5 kWh more each, linked as the
    platform links them at start (location, token and its driver and business customer) and, with a tariff,
    priced at 0.40 per kWh plus 19% VAT."""
    evse = evse or EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    charge_point: ChargePoint = evse.charge_point
    driver = token.driver if token is not None else None
    customer = token.business_customer if token is not None else None
    if customer is None and driver is not None:
        customer = driver.business_customer
    if token is not None:
        id_tag = token.uid
    sessions = []
    for i in range(first, first + count):
        started = START + dt.timedelta(minutes=i)
        energy = 1500 * (i + 1)
        sessions.append(
            ChargingSession(
                tenant=tenant,
                charge_point=charge_point,
                evse=evse,
                connector_id=evse.connector_id,
                id_tag=id_tag,
                auth_status="Accepted",
                status=SessionStatus.COMPLETED,
                started_at=started,
                stopped_at=started + dt.timedelta(hours=1, minutes=2, seconds=3),
                meter_start_wh=1000 * i,
                meter_stop_wh=1000 * i + energy,
                energy_wh=energy,
                stop_reason="EVDisconnected",
                location_id=charge_point.location_id,
                token=token,
                driver=driver,
                business_customer=customer,
                vehicle=vehicle,
                max_power_w=11_000 + 100 * i,
                tariff=tariff,
                currency=tariff.currency if tariff is not None else "",
                cost_excl_vat=Decimal("0.4") * energy / 1000 if tariff is not None else None,
                cost_incl_vat=Decimal("0.476") * energy / 1000 if tariff is not None else None,
            )
        )
    return ChargingSession.objects.bulk_create(sessions)
