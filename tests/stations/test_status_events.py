"""A StatusNotification's status and its event's outbox rows commit together, or neither does."""

from __future__ import annotations

import pytest

from apps.core import outbox
from apps.core.models import OutboxDelivery
from apps.stations import services
from apps.stations.models import Evse
from tests.stations.factories import ChargePointFactory, EvseFactory

pytestmark = pytest.mark.django_db


def test_a_status_is_recorded_with_its_event() -> None:
    evse = EvseFactory(charge_point=ChargePointFactory(), connector_id=1, status="Available")

    services.status_record(charge_point_id=evse.charge_point_id, connector_id=1, status="Charging")

    assert Evse.objects.get(pk=evse.pk).status == "Charging"
    assert OutboxDelivery.objects.filter(event_type="ConnectorStatusChanged").exists()


def test_a_status_whose_event_cannot_be_written_is_not_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the outbox write fails (a crash between the two statements, as far as the database can tell)
    evse = EvseFactory(charge_point=ChargePointFactory(), connector_id=1, status="Available")

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(outbox, "write", crash)

    # when the charger's status arrives
    with pytest.raises(RuntimeError):
        services.status_record(charge_point_id=evse.charge_point_id, connector_id=1, status="Charging")

    # then nothing of it is stored: the charger gets an error, resends, and the event is never lost
    assert Evse.objects.get(pk=evse.pk).status == "Available"
    assert not OutboxDelivery.objects.exists()
