"""A charger's presence entry names the channel of the consumer holding its socket: commands and the "replaced"
notice go to that channel (apps/stations/dispatch.py), no consumer joins a per-charger group, and an entry of an
earlier version (a connection id alone, its consumer in the group) is still reached during a rolling deploy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from apps.stations import dispatch, services
from apps.stations.models import ChargePoint, Command, CommandStatus
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_connected_charger_names_its_channel_and_joins_no_group(
    station: Station, connect: ConnectCharger
) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers["Reset"] = {"status": "Accepted"}
    identity = station.charge_point.identity
    await wait_for(db(lambda: ChargePoint.objects.get(pk=station.charge_point.pk).online))

    presence = await dispatch.presence_get_async(identity)
    assert presence is not None
    connection_id = await db(lambda: ChargePoint.objects.get(pk=station.charge_point.pk).connection_id)()
    assert dispatch.presence_connection(presence) == connection_id
    channel = dispatch.presence_channel(presence)
    assert channel.startswith("specific.")  # the consumer's own channel of the channels_redis layer
    layer: Any = get_channel_layer()
    assert dispatch.sync_client().zcard(layer._group_key(dispatch.group_for(identity))) == 0

    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    command = await services.send_command_async(
        charge_point=cp, action="Reset", payload={"type": "Soft"}, timeout=5, source="test"
    )
    assert command.status == CommandStatus.ACCEPTED
    assert [call[2] for call in charger.received_calls] == ["Reset"]

    await charger.close()
    await wait_for(lambda: _released(identity))


async def _released(identity: str) -> bool:
    return await dispatch.presence_get_async(identity) is None


async def test_an_entry_of_an_earlier_version_is_reached_through_the_charger_group(transactional_db: None) -> None:
    layer: Any = get_channel_layer()
    old_consumer = await layer.new_channel()
    await layer.group_add(dispatch.group_for("CP-OLD-1"), old_consumer)
    message = {"type": "ocpp.command", "command_id": 1}

    delivered = await dispatch.deliver("CP-OLD-1", "0123456789abcdef", message)

    assert delivered is True
    assert await layer.receive(old_consumer) == message
    await layer.group_discard(dispatch.group_for("CP-OLD-1"), old_consumer)


async def test_a_command_to_a_consumer_whose_channel_is_full_fails_at_once(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = station.charge_point.identity
    await dispatch.presence_take(identity, dispatch.presence_value("c" * 32, "specific.stuck!abc"))
    layer: Any = get_channel_layer()

    async def full(channel: str, message: dict[str, Any]) -> None:
        raise ChannelFull(channel)

    monkeypatch.setattr(layer, "send", full)
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    started = time.monotonic()

    command = await services.send_command_async(
        charge_point=cp, action="Reset", payload={"type": "Soft"}, timeout=30, source="test"
    )

    assert time.monotonic() - started < 5  # not the 30 s timeout: nothing was sent, nobody to wait for
    assert command.status == CommandStatus.ERROR
    assert command.error == "Not sent: the charger's connection is stuck."
    stored = await db(lambda: list(Command.objects.values_list("action", "status")))()
    assert stored == [("Reset", "error")]
    await dispatch.presence_release(identity, dispatch.presence_value("c" * 32, "specific.stuck!abc"))


async def test_closes_release_their_presence_in_one_pipeline_and_never_a_newer_connections(
    transactional_db: None,
) -> None:
    mine = dispatch.presence_value("a" * 32, "specific.one!a")
    theirs = dispatch.presence_value("b" * 32, "specific.two!b")
    await dispatch.presence_take("CP-REL-1", mine)
    await dispatch.presence_take("CP-REL-2", mine)
    await dispatch.presence_take("CP-REL-2", theirs)  # a newer connection of CP-REL-2 took it over

    released = await dispatch.presence_release_many([("CP-REL-1", mine), ("CP-REL-2", mine), ("CP-REL-3", mine)])

    assert released == [True, False, False]
    assert await dispatch.presence_get_async("CP-REL-1") is None
    assert await dispatch.presence_get_async("CP-REL-2") == theirs
    await dispatch.presence_release("CP-REL-2", theirs)
    assert await dispatch.presence_get_async("CP-REL-2") is None


async def test_handshakes_take_their_presence_in_one_pipeline_each_told_who_held_it(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handshakes of one moment go to Redis as one batch (apps/ocpp/connections.takes): each gets the entry of
    the connection that held its charger before, and holds it from then on, with the presence's expiry."""
    from apps.ocpp import connections

    old = dispatch.presence_value("d" * 32, "specific.old!d")
    await dispatch.presence_take("CP-TAKE-2", old)
    batches: list[int] = []
    take_many = dispatch.presence_take_many

    async def counted(entries: list[tuple[str, str]]) -> list[str | None]:
        batches.append(len(entries))
        return await take_many(entries)

    monkeypatch.setattr(dispatch, "presence_take_many", counted)
    new = [dispatch.presence_value(f"{n}" * 32, f"specific.new!{n}") for n in (1, 2, 3)]

    previous = await asyncio.gather(
        *(connections.takes.submit((f"CP-TAKE-{n}", entry)) for n, entry in zip((1, 2, 3), new, strict=True))
    )

    assert batches == [3]
    assert previous == [None, old, None]
    for n, entry in zip((1, 2, 3), new, strict=True):
        assert await dispatch.presence_get_async(f"CP-TAKE-{n}") == entry
        ttl = dispatch.sync_client().ttl(dispatch.presence_key(f"CP-TAKE-{n}"))
        assert 0 < ttl <= dispatch.PRESENCE_TTL
        await dispatch.presence_release(f"CP-TAKE-{n}", entry)
