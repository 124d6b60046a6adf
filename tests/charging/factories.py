from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.sessions.models import Cdr, ChargingSession, Reservation, ReservationStatus, TransactionAnomaly
from tests.stations.factories import ChargePointFactory


class ChargingSessionFactory(DjangoModelFactory[ChargingSession]):
    class Meta:
        model = ChargingSession

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    connector_id = 1
    # one running session per tag (the database refuses a second): each session its own tag unless given
    id_tag = factory.Sequence(lambda n: f"TAG{n + 1}")
    auth_status = "Accepted"
    started_at = factory.LazyFunction(timezone.now)
    meter_start_wh = 0


class TransactionAnomalyFactory(DjangoModelFactory[TransactionAnomaly]):
    class Meta:
        model = TransactionAnomaly

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    kind = TransactionAnomaly.Kind.UNKNOWN_TRANSACTION
    transaction_id = 4711


class ReservationFactory(DjangoModelFactory[Reservation]):
    class Meta:
        model = Reservation

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    connector_id = factory.Sequence(lambda n: n % 50 + 1)
    id_tag = "TAG1"
    starts_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=30))
    status = ReservationStatus.ACTIVE


class CdrFactory(DjangoModelFactory[Cdr]):
    class Meta:
        model = Cdr

    session = factory.SubFactory(
        ChargingSessionFactory,
        status="completed",
        meter_stop_wh=1000,
        energy_wh=1000,
        stopped_at=factory.LazyFunction(timezone.now),
    )
    tenant = factory.SelfAttribute("session.tenant")
    ocpi_id = factory.Sequence(lambda n: f"CDR{n}")
    country_code = "DE"
    party_id = "EVP"
    start_date_time = factory.SelfAttribute("session.started_at")
    end_date_time = factory.SelfAttribute("session.stopped_at")
    cdr_token = factory.LazyFunction(lambda: {"uid": "TAG1", "type": "RFID"})
    auth_method = "AUTH_REQUEST"
    cdr_location = factory.LazyFunction(dict)
    currency = "EUR"
    energy_wh = 1000
    total_cost = factory.LazyFunction(lambda: {"excl_vat": "0", "incl_vat": "0"})
    total_energy = 1
    total_time = 0
    last_updated = factory.LazyFunction(timezone.now)
