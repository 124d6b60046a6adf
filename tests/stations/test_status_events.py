"""A StatusNotification's status and its event's outbox rows commit together, or neither does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from apps.core import outbox
from apps.core.models import OutboxDelivery
from apps.stations import services
from apps.stations.models import Evse, StatusEvent
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


def _published() -> list[dict[str, object]]:
    """The status events written, in order (an event has one outbox row per subscriber)."""
    events: dict[str, dict[str, object]] = {}
    for row in OutboxDelivery.objects.filter(event_type="ConnectorStatusChanged").order_by("pk"):
        events.setdefault(row.payload["event_id"], row.payload)
    return list(events.values())


def test_a_repeated_or_late_status_is_history_but_no_event_a_changed_one_or_a_fault_is_both() -> None:
    evse = EvseFactory(charge_point=ChargePointFactory(), connector_id=1, status="Available")
    cp = evse.charge_point_id
    at = timezone.now()

    def report(status: str, error_code: str = "NoError", info: str = "", when: dt.datetime | None = None) -> None:
        services.status_record(
            charge_point_id=cp, connector_id=1, status=status, error_code=error_code, info=info, timestamp=when
        )

    report("Available", when=at)  # what is stored already: no event
    report("Charging", when=at + dt.timedelta(seconds=1))
    report("Charging", when=at + dt.timedelta(seconds=2))  # repeated: no event
    report("Charging", info="cable locked", when=at + dt.timedelta(seconds=3))  # its info changed
    report("Available", when=at + dt.timedelta(seconds=2))  # late (older than the stored one): no event
    report("Faulted", "GroundFailure", when=at + dt.timedelta(seconds=4))
    report("Faulted", "GroundFailure", when=at + dt.timedelta(seconds=5))  # a fault repeated is an occurrence
    report("Faulted", "OverCurrentFailure", when=at + dt.timedelta(seconds=6))

    assert [(p["status"], p["error_code"], p["previous_status"]) for p in _published()] == [
        ("Charging", "", "Available"),
        ("Charging", "", "Charging"),
        ("Faulted", "GroundFailure", "Charging"),
        ("Faulted", "GroundFailure", "Faulted"),
        ("Faulted", "OverCurrentFailure", "Faulted"),
    ]
    # every status is in the history, the late one included, and the EVSE holds the newest
    assert StatusEvent.objects.filter(charge_point_id=cp, connector_id=1).count() == 8
    assert (Evse.objects.get(pk=evse.pk).status, Evse.objects.get(pk=evse.pk).error_code) == (
        "Faulted",
        "OverCurrentFailure",
    )


def test_the_charger_s_own_status_repeated_is_no_event_either() -> None:
    cp = ChargePointFactory()
    services.status_record(charge_point_id=cp.pk, connector_id=0, status="Available")
    services.status_record(charge_point_id=cp.pk, connector_id=0, status="Available")
    services.status_record(charge_point_id=cp.pk, connector_id=0, status="Unavailable")

    assert [(p["connector_id"], p["status"]) for p in _published()] == [(0, "Available"), (0, "Unavailable")]
