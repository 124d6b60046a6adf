from __future__ import annotations

import datetime as dt

import factory
from factory.django import DjangoModelFactory

from apps.reports.models import ExportJob
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint, Evse
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
    tenant: Tenant, count: int, *, evse: Evse | None = None, id_tag: str = "04A1B2C3D4", first: int = 0
) -> list[ChargingSession]:
    """`count` completed sessions, one a minute from START (+ `first` minutes), 1.5 kWh more each."""
    evse = evse or EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    charge_point: ChargePoint = evse.charge_point
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
            )
        )
    return ChargingSession.objects.bulk_create(sessions)
