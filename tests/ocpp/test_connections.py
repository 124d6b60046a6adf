"""A daphne process records its sockets' connects and closes in batches (apps/ocpp/connections.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import events
from apps.core.models import OutboxDelivery
from apps.ocpp import connections
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, StatusEvent
from tests.ocpp.conftest import Station, db
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db(transaction=True)


def state(pk: int) -> tuple[bool, str]:
    charge_point = ChargePoint.objects.get(pk=pk)
    return charge_point.online, charge_point.connection_id


def test_a_batch_applies_connects_and_closes_in_their_order(station: Station) -> None:
    one = station.charge_point
    two = ChargePointFactory(tenant=station.tenant, identity="CP-TEST-2")
    before = OutboxDelivery.objects.filter(event_type="ChargePointConnectionChanged").count()

    applied = station_services.charge_points_connections_record(
        changes=[
            (True, one.pk, "c1"),
            (True, two.pk, "c2"),
            (False, one.pk, "c1"),  # its own connection: offline
            (True, one.pk, "c3"),  # back at once, in the same batch
            (False, two.pk, "an-older-connection"),  # not its current one: stays online
        ]
    )

    assert applied == [True, True, True, True, False]
    assert (state(one.pk), state(two.pk)) == ((True, "c3"), (True, "c2"))
    statuses = list(
        StatusEvent.objects.filter(charge_point__in=[one, two]).order_by("pk").values_list("charge_point", "status")
    )
    assert statuses == [(one.pk, "Online"), (two.pk, "Online"), (one.pk, "Offline"), (one.pk, "Online")]
    changed = OutboxDelivery.objects.filter(event_type="ChargePointConnectionChanged").count() - before
    subscribers = len(events.SUBSCRIBERS[events.ChargePointConnectionChanged])
    assert subscribers > 0
    assert changed == 4 * subscribers  # four changes, one outbox row per subscriber each


async def test_changes_queued_together_are_written_in_fewer_transactions_each_with_its_outcome(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    others = await db(lambda: [ChargePointFactory(tenant=station.tenant, identity=f"CP-B-{n}") for n in range(30)])()
    batches: list[int] = []
    record = station_services.charge_points_connections_record

    def counted(*, changes: Any) -> list[bool]:
        batches.append(len(changes))
        return record(changes=changes)

    monkeypatch.setattr(station_services, "charge_points_connections_record", counted)
    recorder = connections.ConnectionChanges()

    opened = await asyncio.gather(
        *(recorder.record(online=True, charge_point_id=cp.pk, connection_id=f"c-{cp.pk}") for cp in others)
    )
    closed = await asyncio.gather(
        recorder.record(online=False, charge_point_id=others[0].pk, connection_id=f"c-{others[0].pk}"),
        recorder.record(online=False, charge_point_id=others[1].pk, connection_id="someone-else"),
    )

    assert opened == [True] * 30
    assert closed == [True, False]
    assert sum(batches) == 32
    assert len(batches) < 32  # the first alone, the rest together
    assert await db(lambda: ChargePoint.objects.filter(identity__startswith="CP-B-", online=True).count())() == 29


async def test_a_change_whose_caller_is_cancelled_is_written_all_the_same(station: Station) -> None:
    recorder = connections.ConnectionChanges()
    cp = station.charge_point
    first = recorder.record(online=True, charge_point_id=cp.pk, connection_id="c-first")
    cancelled = recorder.record(online=False, charge_point_id=cp.pk, connection_id="c-first")  # queued behind it
    cancelled.cancel()  # daphne's close timeout cancels the consumer awaiting it

    assert await first is True

    async def offline() -> bool:
        return await db(lambda: state(cp.pk))() == (False, "")

    for _ in range(100):
        if await offline():
            break
        await asyncio.sleep(0.05)
    assert await offline()


def test_a_batch_costs_the_same_statements_for_five_chargers_as_for_fifty(station: Station) -> None:
    chargers = [ChargePointFactory(tenant=station.tenant, identity=f"CP-S-{n}") for n in range(50)]

    def statements(changes: list[tuple[bool, int, str]]) -> int:
        with CaptureQueriesContext(connection) as queries:
            station_services.charge_points_connections_record(changes=changes)
        sql = [query["sql"] for query in queries.captured_queries]
        return sql.index("COMMIT")  # the batch's own transaction (the outbox delivers the events after it here)

    few = statements([(True, cp.pk, f"c-{cp.pk}") for cp in chargers[:5]])
    many = statements([(True, cp.pk, f"c-{cp.pk}") for cp in chargers[5:]])
    closes = statements([(False, cp.pk, f"c-{cp.pk}") for cp in chargers[5:]])

    assert few == many == closes
    assert ChargePoint.objects.filter(identity__startswith="CP-S-", online=True).count() == 5
