"""Onboarding mistakes get an answer a technician can act on (issue 20 item 7), under daphne as in production:
the handshake's HTTP status and text body, or the close code and reason, and a log line with the charger id.
A fleet connecting at once completes every handshake, or gets a clear 503 (item 8)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
import websockets

from apps.ocpp import consumers
from apps.ocpp.models import MessageLog
from apps.stations import dispatch
from apps.stations.models import ChargePoint
from tests.ocpp.conftest import ConnectCharger, Station, auth_header, db, wait_for
from tests.stations.factories import ChargePointFactory
from tests.tenants.factories import TenantFactory

BASIC = 'Basic realm="OCPP", charset="UTF-8"'


async def refused(url: str, headers: dict[str, str] | None = None) -> websockets.InvalidStatus:
    with pytest.raises(websockets.InvalidStatus) as error:
        await websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers or {}, open_timeout=10)  # type: ignore[list-item]
    return error.value


async def nothing_changed(station: Station) -> None:
    charge_point = await db(lambda: ChargePoint.objects.get(pk=station.charge_point.pk))()
    assert (charge_point.online, charge_point.connection_id) == (False, "")
    assert await db(MessageLog.objects.count)() == 0


@pytest.mark.parametrize("path", ["/ocpp", "/ocpp/", "/ocpp/1.6/CP-TEST-1", "/ocpp16/CP-TEST-1", "/ws/nothing"])
async def test_wrong_path_is_a_404_naming_the_expected_url(
    station: Station, server: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(f"{server}{path}", auth_header("CP-TEST-1", station.password))

    host = server.removeprefix("ws://")
    assert error.response.status_code == 404
    assert error.response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert error.response.body.decode() == (
        f"No WebSocket endpoint at {path}. Chargers connect to ws://{host}/ocpp/<charge point id> "
        "(the id as the one path segment after /ocpp/) with the subprotocol ocpp1.6.\n"
    )
    assert f"ocpp path {path} refused (HTTP 404)" in caplog.text
    await nothing_changed(station)


@pytest.mark.parametrize(
    ("offered", "reason"),
    [
        ((), "Unsupported subprotocol none: use ocpp1.6"),
        (("ocpp2.0.1",), "Unsupported subprotocol ocpp2.0.1: use ocpp1.6"),
        (("ocpp1.5", "ocpp2.0"), "Unsupported subprotocol ocpp1.5, ocpp2.0: use ocpp1.6"),
    ],
)
async def test_unsupported_subprotocol_is_closed_with_4406_and_a_reason(
    station: Station, connect: ConnectCharger, offered: tuple[str, ...], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    charger = await connect(station.charge_point.identity, station.password, subprotocols=offered)

    assert charger._reader is not None
    await asyncio.wait_for(asyncio.gather(charger._reader, return_exceptions=True), 5)  # ends when closed
    assert charger.ws.subprotocol is None
    assert (charger.ws.close_code, charger.ws.close_reason) == (4406, reason)
    assert f"ocpp CP-TEST-1 refused (close 4406): {reason}" in caplog.text
    await nothing_changed(station)


async def test_missing_password_is_a_401_asking_for_basic_auth(
    station: Station, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(f"{server}/ocpp/CP-TEST-1")

    reason = (
        "Charge point 'CP-TEST-1' needs its password: HTTP Basic authentication, user = the charge point id, "
        "password = its AuthorizationKey."
    )
    assert (error.response.status_code, error.response.body.decode()) == (401, reason + "\n")
    assert error.response.headers["WWW-Authenticate"] == BASIC
    assert f"ocpp CP-TEST-1 refused (HTTP 401): {reason}" in caplog.text
    await nothing_changed(station)


async def test_wrong_password_is_a_401_saying_so(
    station: Station, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    error = await refused(f"{server}/ocpp/CP-TEST-1", auth_header("CP-TEST-1", "not-the-password"))

    reason = (
        "Wrong password for charge point 'CP-TEST-1' (HTTP Basic: user = the charge point id, "
        "password = its AuthorizationKey)."
    )
    assert (error.response.status_code, error.response.body.decode()) == (401, reason + "\n")
    assert error.response.headers["WWW-Authenticate"] == BASIC
    assert f"ocpp CP-TEST-1 refused (HTTP 401): {reason}" in caplog.text
    await nothing_changed(station)


async def test_basic_user_other_than_the_id_is_a_401_saying_so(
    station: Station, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = base64.b64encode(f"admin:{station.password}".encode()).decode()
    error = await refused(f"{server}/ocpp/CP-TEST-1", {"Authorization": f"Basic {token}"})

    reason = (
        "The HTTP Basic user 'admin' is not the charge point id 'CP-TEST-1' of the URL: "
        "use the charge point id as the user."
    )
    assert (error.response.status_code, error.response.body.decode()) == (401, reason + "\n")
    assert f"ocpp CP-TEST-1 refused (HTTP 401): {reason}" in caplog.text
    await nothing_changed(station)


async def test_unknown_id_is_a_404_saying_so(station: Station, server: str, caplog: pytest.LogCaptureFixture) -> None:
    error = await refused(f"{server}/ocpp/CP-TEST-2", auth_header("CP-TEST-2", station.password))

    reason = (
        "Unknown charge point id 'CP-TEST-2': the last part of the URL must be the charge point id registered in "
        "the back office (register it first)."
    )
    assert (error.response.status_code, error.response.body.decode()) == (404, reason + "\n")
    assert "WWW-Authenticate" not in error.response.headers
    assert f"ocpp CP-TEST-2 refused (HTTP 404): {reason}" in caplog.text
    assert not await db(ChargePoint.objects.filter(identity="CP-TEST-2").exists)()
    await nothing_changed(station)


async def test_right_path_and_password_connect(station: Station, connect: ConnectCharger) -> None:
    charger = await connect(station.charge_point.identity, station.password)

    assert charger.ws.subprotocol == "ocpp1.6"
    assert (await charger.ok("Heartbeat", {}))["currentTime"]


# --------------------------------------------------------------------------- handshakes under load (item 8)


def slow_handshakes(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Every handshake takes `seconds` longer, inside the handshake gate (a busy Redis, say)."""
    presence_take_many = dispatch.presence_take_many

    async def slow_presence_take_many(entries: list[tuple[str, str]]) -> list[str | None]:
        await asyncio.sleep(seconds)
        return await presence_take_many(entries)

    monkeypatch.setattr(dispatch, "presence_take_many", slow_presence_take_many)


async def online(prefix: str, count: int) -> bool:
    return await db(ChargePoint.objects.filter(identity__startswith=prefix, online=True).count)() == count  # type: ignore[no-any-return]


async def open_many(server: str, identities: list[str]) -> list[Any]:
    async def one(identity: str) -> Any:
        try:
            return await websockets.connect(f"{server}/ocpp/{identity}", subprotocols=["ocpp1.6"], open_timeout=120)  # type: ignore[list-item]
        except Exception as error:  # noqa: BLE001 - what the charger would see
            return error

    return await asyncio.gather(*(one(identity) for identity in identities))


async def test_a_burst_larger_than_the_gate_completes_every_handshake(
    server: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await db(TenantFactory)()
    identities = [f"BURST-{n:03d}" for n in range(150)]
    await db(lambda: [ChargePointFactory(tenant=tenant, identity=identity) for identity in identities])()
    slow_handshakes(monkeypatch, 1.2)  # 150 / 32 at a time x 1.2 s: past daphne's former 5 s connect timeout

    sockets = await open_many(server, identities)

    failed = [s for s in sockets if isinstance(s, Exception)]
    assert failed == []
    assert [s.subprotocol for s in sockets] == ["ocpp1.6"] * 150
    await wait_for(lambda: online("BURST-", 150))  # recorded just after the accept
    await asyncio.gather(*(s.close() for s in sockets))


async def test_a_handshake_that_cannot_get_its_turn_in_time_is_refused_with_503(
    server: str, settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings.OCPP_HANDSHAKE_TIMEOUT = 2  # the gate waits half of it: 1 s
    gate = settings.OCPP_HANDSHAKE_CONCURRENCY
    tenant = await db(TenantFactory)()
    identities = [f"BUSY-{n:03d}" for n in range(gate + 5)]
    await db(lambda: [ChargePointFactory(tenant=tenant, identity=identity) for identity in identities])()
    slow_handshakes(monkeypatch, 1.5)

    sockets = await open_many(server, identities)

    opened = [s for s in sockets if not isinstance(s, Exception)]
    refused = [s for s in sockets if isinstance(s, websockets.InvalidStatus)]
    assert (len(opened), len(refused)) == (gate, 5)
    reason = "The central system is busy with other chargers' handshakes; retry in 1 s."
    assert {(r.response.status_code, r.response.headers["Retry-After"], r.response.body.decode()) for r in refused} == {
        (503, "1", reason + "\n")
    }
    assert caplog.text.count(f"refused (HTTP 503): {reason}") == 5
    await wait_for(lambda: online("BUSY-", gate))
    assert await db(ChargePoint.objects.filter(identity__startswith="BUSY-", online=True).count)() == gate
    await asyncio.gather(*(s.close() for s in opened))


def test_a_full_gate_refuses_at_once_with_turns_that_follow_its_rate(settings: Any) -> None:
    """Past what it can let through within its patience, the gate refuses at once, and the Retry-After it gives each
    refused charger is a turn of its own, from half of the queue's time on, spaced at the gate's rate
    (OCPP_HANDSHAKE_RATE before it has measured one): not one Retry-After for thousands, who would come back as one
    wave."""
    settings.OCPP_HANDSHAKE_RATE = 2

    async def run() -> tuple[list[int], list[Any]]:
        gate = consumers.Gate(1)
        await gate.enter(1)  # the only slot, taken
        queued = [asyncio.create_task(gate.enter(1)) for _ in range(2)]  # 0.5 s and 1 s of queue at 2 a second
        await asyncio.sleep(0)
        turns = []
        for _ in range(6):
            with pytest.raises(consumers.Busy) as busy:
                await gate.enter(1)
            turns.append(busy.value.retry_after)
        assert gate.waiting == 2
        gate.leave()
        outcomes = await asyncio.gather(*queued, return_exceptions=True)  # the first gets the slot, the second waits
        return turns, outcomes  # past its patience (1 s): refused then, with the turn after those given before

    turns, outcomes = asyncio.run(run())
    assert turns == [1, 2, 2, 3, 3, 4]
    assert outcomes[0] is None
    assert isinstance(outcomes[1], consumers.Busy)
    assert outcomes[1].retry_after == 3


async def test_a_full_gate_refuses_a_charger_before_daphne_makes_its_application(
    station: Station, server: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused at once by a full gate, a handshake costs no application instance (scope, consumer, channel, denial
    through daphne): the answer is the consumer's own 503, Retry-After and body, written by daphne's protocol."""
    full = consumers.Gate(1)
    full.slots = asyncio.Semaphore(0)  # every slot taken
    full.waiting = 100_000  # and a queue far past the patience (at the rate it counts on)
    monkeypatch.setattr(consumers, "gate", lambda: full)
    connects = []
    original_connect = consumers.OcppConsumer.connect

    async def connect(self: consumers.OcppConsumer) -> None:
        connects.append(self.scope["path"])
        await original_connect(self)

    monkeypatch.setattr(consumers.OcppConsumer, "connect", connect)
    before = consumers.tally["refused_busy"]

    error = await refused(
        f"{server}/ocpp/{station.charge_point.identity}", auth_header(station.charge_point.identity, station.password)
    )

    retry_after = error.response.headers["Retry-After"]
    assert int(retry_after) >= 1
    assert error.response.status_code == 503
    assert error.response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert error.response.body.decode() == (
        f"The central system is busy with other chargers' handshakes; retry in {retry_after} s.\n"
    )
    assert connects == []  # no application was made
    assert consumers.tally["refused_busy"] == before + 1
    assert f"ocpp {station.charge_point.identity} refused (HTTP 503)" in caplog.text
    await nothing_changed(station)

    monkeypatch.setattr(consumers, "gate", lambda: consumers.Gate(1))  # room again: the same charger connects
    async with websockets.connect(
        f"{server}/ocpp/{station.charge_point.identity}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=auth_header(station.charge_point.identity, station.password),
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"
    assert connects == ["/ocpp/" + station.charge_point.identity]
    assert "Unhandled Error" not in caplog.text
    assert "Traceback" not in caplog.text


def test_the_gate_refuses_before_the_application_only_chargers_it_would_refuse(settings: Any) -> None:
    """Other WebSocket paths, and chargers the gate would let wait, go on to the application."""
    settings.OCPP_HANDSHAKE_RATE = 2
    settings.OCPP_HANDSHAKE_TIMEOUT = 2  # patience 1 s: two waiting at 2 a second

    async def run() -> list[Any]:
        gate = consumers.Gate(1)
        consumers._gates.clear()
        consumers._gates[id(asyncio.get_running_loop())] = gate
        outcomes = [consumers.refuse_before_application("/ocpp/CP-1")]  # a free slot
        await gate.enter(1)
        outcomes.append(consumers.refuse_before_application("/ocpp/CP-1"))  # its queue would be 0.5 s
        gate.waiting = 2
        outcomes.append(consumers.refuse_before_application("/ws/live"))
        outcomes.append(consumers.refuse_before_application("/ocpp/CP%201"))
        gate.leave()
        consumers._gates.clear()
        return outcomes

    free, short_queue, other_path, full = asyncio.run(run())
    assert (free, short_queue, other_path) == (None, None, None)
    status, headers, body = full
    assert status == 503
    assert (b"retry-after", b"1") in headers  # half of the queue's second at 2 a second, then its own turn
    assert body == b"The central system is busy with other chargers' handshakes; retry in 1 s.\n"


def test_the_gate_counts_on_the_rate_it_measured_when_higher_than_the_assumed_one(settings: Any) -> None:
    """The turns follow the rate measured over the last 5 s, never less than OCPP_HANDSHAKE_RATE (a storm's first
    seconds measure next to nothing: counted on, they gave turns minutes away)."""
    settings.OCPP_HANDSHAKE_RATE = 8
    gate = consumers.Gate(1)
    now = 1000.0
    gate.entered.extend(now - 4 + n * 0.1 for n in range(10))  # 10 handshakes in the last 5 s: 2 a second
    assert gate.rate(now) == 8
    gate.entered.extend(now - 3 + n * 0.01 for n in range(70))  # 80: 16 a second
    assert gate.rate(now) == 16
    gate.waiting = 32
    assert [gate.turn(now) for _ in range(3)] == [2, 2, 2]  # half of the queue's 2 s, then one turn per 1/16 s
    assert [gate.turn(now) for _ in range(14)][-1] == 3
    assert gate.rate(now + 10) == 8  # the window has passed


def test_a_gate_keeps_only_the_last_window_of_entries(settings: Any) -> None:
    """A gate that is never full never asks for its rate: what it records of its entries must not grow with the
    handshakes of weeks."""

    async def run() -> int:
        gate = consumers.Gate(10)
        gate.entered.extend([0.0] * 1000)  # entries long past
        await gate.enter(1)
        gate.leave()
        return len(gate.entered)

    assert asyncio.run(run()) == 1
