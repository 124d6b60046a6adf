"""Nothing a charger said before closing its socket is lost (issue 20 item 5): every frame received before the close
is applied in order and logged, within OCPP_CLOSE_DRAIN_FRAMES and OCPP_CLOSE_DRAIN_SECONDS; a frame beyond them
is logged as not processed. Under daphne, over a raw WebSocket client."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import time
from typing import Any

import pytest
import websockets

from apps.customers.models import Token
from apps.ocpp.models import MessageLog
from apps.sessions.models import ChargingSession
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, StatusEvent
from tests.ocpp.conftest import Station, auth_header, db, wait_for
from tests.ocpp.processes import Daphne

pytestmark = pytest.mark.django_db(transaction=True)

START = {"connectorId": 2, "idTag": "GOOD", "meterStart": 1200, "timestamp": "2026-03-01T10:00:30Z"}
NOT_PROCESSED = "not processed: the connection closed"


def statuses(count: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` StatusNotifications of connector 1, alternating, one second apart."""
    frames = []
    for n in range(count):
        at = dt.datetime(2026, 3, 1, 10, 0, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=n)
        status = "Preparing" if n % 2 == 0 else "Available"
        payload = {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": at.isoformat()}
        frames.append((f"s{n + 1}", payload))
    return frames


async def booted(server: str, station: Station) -> Any:
    await db(Token.objects.create)(tenant=station.tenant, uid="GOOD")
    ws = await websockets.connect(
        f"{server}/ocpp/CP-TEST-1",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=auth_header("CP-TEST-1", station.password),
    )
    await ws.send(json.dumps([2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]))
    answer = json.loads(await ws.recv())
    assert answer[2]["status"] == "Accepted"
    return ws


async def send_then_close(ws: Any, frames: list[tuple[str, str, dict[str, Any]]], how: str) -> None:
    for unique_id, action, payload in frames:
        await ws.send(json.dumps([2, unique_id, action, payload]))
    if how == "close frame":
        await ws.close()
    else:  # the TCP connection ends after the frames, without a WebSocket close frame
        ws.transport.close()


def logged_in() -> list[tuple[str, str, str]]:
    rows = MessageLog.objects.filter(direction="in").order_by("id").values_list("unique_id", "action", "result")
    return list(rows)


async def offline(station: Station) -> bool:
    return not await db(lambda: ChargePoint.objects.get(pk=station.charge_point.pk).online)()


@pytest.mark.parametrize("how", ["close frame", "TCP close"])
async def test_every_frame_sent_before_a_close_is_applied_in_order_and_logged(
    station: Station, server: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    ws = await booted(server, station)
    frames = [(uid, "StatusNotification", payload) for uid, payload in statuses(30)]
    frames.append(("start", "StartTransaction", START))

    await send_then_close(ws, frames, how)
    await wait_for(lambda: offline(station))

    history = await db(
        lambda: list(
            StatusEvent.objects.filter(charge_point=station.charge_point, connector_id=1)
            .order_by("id")
            .values_list("status", "timestamp")
        )
    )()
    assert history == [(p["status"], dt.datetime.fromisoformat(p["timestamp"])) for _, p in statuses(30)]
    session = await db(ChargingSession.objects.get)(charge_point=station.charge_point)
    assert (session.connector_id, session.meter_start_wh, session.id_tag) == (2, 1200, "GOOD")
    expected = [("boot", "BootNotification", "")]
    expected += [(uid, "StatusNotification", "") for uid, _ in statuses(30)]
    expected += [("start", "StartTransaction", "")]
    assert await db(logged_in)() == expected
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []  # answers to the closed socket: quietly


async def test_frames_beyond_the_drain_count_are_logged_as_not_processed(
    station: Station, server: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OCPP_CLOSE_DRAIN_FRAMES = 3
    slow_record = station_services.status_record

    def status_record(**kwargs: Any) -> None:
        time.sleep(0.3)  # the close arrives while the first one is processed
        slow_record(**kwargs)

    monkeypatch.setattr(station_services, "status_record", status_record)
    ws = await booted(server, station)
    frames = [(uid, "StatusNotification", payload) for uid, payload in statuses(10)]

    await send_then_close(ws, frames, "close frame")
    await wait_for(lambda: offline(station))

    applied = await db(StatusEvent.objects.filter(charge_point=station.charge_point, connector_id=1).count)()
    assert applied == 4  # the one being processed at the close, then the first 3 waiting
    assert await db(logged_in)() == [
        ("boot", "BootNotification", ""),
        *((f"s{n}", "StatusNotification", "") for n in range(1, 5)),
        *((f"s{n}", "StatusNotification", NOT_PROCESSED) for n in range(5, 11)),
    ]


async def test_the_drain_stops_after_its_time_and_logs_what_is_left(
    station: Station, server: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OCPP_CLOSE_DRAIN_SECONDS = 1
    slow_record = station_services.status_record

    def status_record(**kwargs: Any) -> None:
        time.sleep(0.4)
        slow_record(**kwargs)

    monkeypatch.setattr(station_services, "status_record", status_record)
    ws = await booted(server, station)
    frames = [(uid, "StatusNotification", payload) for uid, payload in statuses(20)]

    started = time.monotonic()
    await send_then_close(ws, frames, "close frame")
    await wait_for(lambda: offline(station))
    took = time.monotonic() - started

    log = await db(logged_in)()
    processed = [uid for uid, _, result in log[1:] if result == ""]
    left = [uid for uid, _, result in log[1:] if result == NOT_PROCESSED]
    assert processed + left == [f"s{n}" for n in range(1, 21)]  # every frame logged once, in order
    assert 2 <= len(processed) <= 6  # 1 s of 0.4 s frames, the one interrupted included (logged before its handler)
    assert took < 6


@pytest.mark.slow
async def test_a_restart_applies_and_logs_what_chargers_sent_before_it(station: Station) -> None:
    """SIGTERM to daphne (a deploy): the sockets are closed with a reason and every frame received is still
    applied and logged before the process exits."""
    daphne = Daphne().start()
    try:
        ws = await booted(daphne.url, station)
        frames = statuses(30)
        for unique_id, payload in frames:
            await ws.send(json.dumps([2, unique_id, "StatusNotification", payload]))

        assert daphne.proc is not None
        daphne.proc.terminate()
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:  # the answers sent before the close
                pass
        exit_code = await asyncio.to_thread(daphne.proc.wait, 30)
    finally:
        daphne.stop()

    applied = await db(StatusEvent.objects.filter(charge_point=station.charge_point, connector_id=1).count)()
    assert applied == 30
    assert await db(logged_in)() == [
        ("boot", "BootNotification", ""),
        *((uid, "StatusNotification", "") for uid, _ in frames),
    ]
    assert (ws.close_code, ws.close_reason) == (1000, "The central system is restarting: reconnect")
    assert exit_code == 0


async def _raw_socket(url: str, station: Station) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket opened by hand that reads but never answers the server's close (a slow or stuck charger):
    the stopping process keeps running until its close handshake times out."""
    host, port = url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    headers = {
        "Host": f"{host}:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "ocpp1.6",
        **auth_header("CP-TEST-1", station.password),
    }
    request = "GET /ocpp/CP-TEST-1 HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(request.encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


@pytest.mark.slow
async def test_a_stopping_daphne_accepts_no_new_charger(station: Station) -> None:
    """A charger that reconnects at once after the restart's close must not be accepted by the process that is
    stopping (it was, spoke, and was cancelled with it: its frames lost); it is refused and retries the next."""
    daphne = Daphne().start()
    try:
        reader, writer = await _raw_socket(daphne.url, station)
        assert daphne.proc is not None
        daphne.proc.terminate()
        frame = await asyncio.wait_for(reader.read(2), timeout=10)
        assert frame[:1] == b"\x88"  # the server's close frame: the stop has begun; we do not answer it

        # refused, or reset in the closing listener's backlog: never a handshake with the dying process
        with pytest.raises((OSError, websockets.exceptions.InvalidHandshake)):
            async with websockets.connect(
                f"{daphne.url}/ocpp/CP-TEST-1",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=auth_header("CP-TEST-1", station.password),
                open_timeout=5,
            ):
                pass
        writer.close()
        assert await asyncio.to_thread(daphne.proc.wait, 30) == 0
    finally:
        daphne.stop()


async def test_connections_reset_by_the_network_leave_nothing_behind(server: str) -> None:
    """A network blip resets every charger's TCP connection (RST, no closing handshake) and the fleet comes back at
    once: after each round, no consumer, charge point or daphne protocol of those connections is left in the
    process (a process that takes a whole fleet back after every blip must not grow by its objects)."""
    import gc
    import socket
    import struct

    from daphne.ws_protocol import WebSocketProtocol

    from apps.ocpp.central import CentralChargePoint
    from apps.ocpp.consumers import OcppConsumer, registry
    from tests.ocpp.factories import ChargePointFactory
    from tests.tenants.factories import TenantFactory

    tenant = await db(TenantFactory)()
    identities = [f"BLIP-{n:02d}" for n in range(30)]
    await db(lambda: [ChargePointFactory(tenant=tenant, identity=identity) for identity in identities])()

    def left() -> list[str]:
        gc.collect()
        return [
            type(obj).__name__
            for obj in gc.get_objects()
            if (isinstance(obj, OcppConsumer) and getattr(obj, "identity", "").startswith("BLIP-"))
            or (isinstance(obj, CentralChargePoint) and obj.id.startswith("BLIP-"))
            or (isinstance(obj, WebSocketProtocol) and str(getattr(obj, "path", b"")).find("/ocpp/BLIP-") >= 0)
        ]

    for _ in range(2):
        sockets = await asyncio.gather(
            *(websockets.connect(f"{server}/ocpp/{identity}", subprotocols=["ocpp1.6"]) for identity in identities)  # type: ignore[list-item]
        )
        for n, ws in enumerate(sockets):
            await ws.send(
                json.dumps([2, f"b{n}", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}])
            )
        assert [json.loads(await ws.recv())[0] for ws in sockets] == [3] * len(sockets)
        assert len(left()) >= 2 * len(identities)  # the live ones are found
        for ws in sockets:
            raw = ws.transport.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()

        async def closed() -> bool:
            return not any(consumer.identity.startswith("BLIP-") for consumer in list(registry.consumers.values()))

        async def nothing_left() -> bool:
            return not left()

        await wait_for(closed)
        await wait_for(nothing_left)
