from __future__ import annotations

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.sessions.models import ChargingSession, TransactionAnomaly
from tests.stations.factories import ChargePointFactory


class ChargingSessionFactory(DjangoModelFactory[ChargingSession]):
    class Meta:
        model = ChargingSession

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    connector_id = 1
    id_tag = "TAG1"
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
