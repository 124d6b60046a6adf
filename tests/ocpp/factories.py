from __future__ import annotations

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.ocpp.models import MessageLog
from tests.stations.factories import ChargePointFactory


class MessageLogFactory(DjangoModelFactory[MessageLog]):
    class Meta:
        model = MessageLog

    charge_point = factory.SubFactory(ChargePointFactory)
    tenant = factory.SelfAttribute("charge_point.tenant")
    created_at = factory.LazyFunction(timezone.now)
    direction = "in"
    kind = 2
    action = "Heartbeat"
    unique_id = factory.Sequence(lambda n: f"u{n}")
    payload = factory.LazyFunction(dict)
