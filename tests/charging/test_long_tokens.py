"""Long tokens over real WebSockets: an app token whose uid is a UUID (36 characters, more than OCPP 1.6's 20)
starts by QR through the driver API; the charger sees the token's short wire id in RemoteStartTransaction,
ReserveNow and the local list, and every idTag it sends back (Authorize, StartTransaction, StopTransaction) maps to
the token: the session has its driver, the full uid, and the CDR's token uid is the uid. The 202 of a remote start
names the session's id at once."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core import outbox
from apps.customers.models import Token, TokenType, wire_id_for
from apps.ocpp.simulator import SimConfig, run_charger
from apps.sessions.models import Cdr, ChargingSession, Reservation, SessionStatus
from apps.stations.models import ChargePoint, Command
from tests.customers.factories import DriverFactory, TokenFactory
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for
from tests.ocpp.test_core import BOOT, iso
from tests.tenants.factories import api_key_for

pytestmark = pytest.mark.django_db(transaction=True)

UUID = "5f0c7d8e-3b1a-4c2e-9f6d-0a1b2c3d4e5f"
GROUP = "family-group-5f0c7d8e-3b1a-4c2e-9f6d"  # 36 characters too


def _driver_with_app_token(stn: Station) -> dict[str, Any]:
    driver = DriverFactory(tenant=stn.tenant)
    token = TokenFactory(tenant=stn.tenant, uid=UUID, type=TokenType.APP_USER, driver=driver, group_id=GROUP)
    token.refresh_from_db()
    _, raw = api_key_for(stn.tenant, ["driver:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return {"driver": driver, "token": token, "client": client}


async def test_a_remote_start_by_qr_with_a_uuid_token_charges_with_its_driver_and_names_the_session_at_once(
    station: Station, connect: ConnectCharger
) -> None:
    # given an app user whose token uid is a UUID, and a connected charger that accepts remote starts
    given = await db(_driver_with_app_token)(station)
    token: Token = given["token"]
    client: APIClient = given["client"]
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers["RemoteStartTransaction"] = {"status": "Accepted"}
    await charger.ok("BootNotification", BOOT)

    # when the driver starts by scanning the QR code
    started = await db(client.post)(
        "/api/v1/driver/sessions/", {"driver": given["driver"].pk, "qr": "DE*TST*E1*1"}, format="json"
    )

    # then the charger got the token's wire id, and the 202 names the session the start will open
    assert started.status_code == 202, started.content
    body = started.json()
    remote = charger.received_calls[-1]
    assert remote[2:] == ["RemoteStartTransaction", {"idTag": token.wire_id, "connectorId": 1}]
    assert len(token.wire_id) <= 20
    command = await db(Command.objects.get)(action="RemoteStartTransaction")
    assert body == {
        "session_id": body["session_id"],
        "command_id": command.pk,
        "charge_point_id": station.charge_point.pk,
        "connector_id": 1,
        "id_tag": token.wire_id,
        "token_uid": UUID,
        "reservation_id": None,
    }
    detail = f"/api/v1/driver/sessions/{body['session_id']}/"
    assert (await db(client.get)(detail)).status_code == 404  # not started yet: the car is not connected

    # when the charger authorizes and starts with the idTag it was given, and stops with it
    authorized = await charger.ok("Authorize", {"idTag": token.wire_id})
    at = timezone.now()
    start = {"connectorId": 1, "idTag": token.wire_id, "meterStart": 1000, "timestamp": iso(at)}
    started_tx = await charger.ok("StartTransaction", start)
    live = await db(client.get)(detail)
    stop = {
        "transactionId": started_tx["transactionId"],
        "idTag": token.wire_id,
        "meterStop": 3500,
        "timestamp": iso(at + dt.timedelta(minutes=30)),
        "reason": "Local",
    }
    stopped = await charger.ok("StopTransaction", stop)

    # then every answer maps the idTag back to the token (parentIdTag: its group's wire id)
    assert authorized["idTagInfo"] == {"status": "Accepted", "parentIdTag": wire_id_for(GROUP)}
    assert started_tx["transactionId"] == body["session_id"]
    assert started_tx["idTagInfo"]["status"] == "Accepted"
    assert live.status_code == 200
    assert (live.json()["id"], live.json()["status"]) == (body["session_id"], "active")
    assert stopped["idTagInfo"]["status"] == "Accepted"
    session = await db(ChargingSession.objects.get)(pk=body["session_id"])
    assert (session.status, session.token_id, session.driver_id, session.id_tag, session.auth_method) == (
        SessionStatus.COMPLETED,
        token.pk,
        given["driver"].pk,
        UUID,
        "COMMAND",
    )
    assert session.energy_wh == 2500
    cdr = await db(Cdr.objects.get)(session=session)
    assert cdr.cdr_token["uid"] == UUID


async def test_the_projects_simulator_charges_a_uuid_token_started_by_qr(server: str, station: Station) -> None:
    # given an app user with a UUID token, and the project's simulated charger (remote starts only)
    given = await db(_driver_with_app_token)(station)
    config = SimConfig(
        url=server,
        password=station.password,
        connectors=2,
        heartbeat=30,
        meter_interval=0.2,
        session_seconds=(1.0, 1.0),
        idle_seconds=(3600, 3600),
    )
    stop = asyncio.Event()
    charger = asyncio.create_task(run_charger(station.charge_point.identity, config, stop))
    try:
        await wait_for(db(ChargePoint.objects.filter(pk=station.charge_point.pk, online=True).exists))

        # when the driver starts by QR
        started = await db(given["client"].post)(
            "/api/v1/driver/sessions/", {"driver": given["driver"].pk, "qr": "DE*TST*E1*2"}, format="json"
        )
        assert started.status_code == 202, started.content
        session_id = started.json()["session_id"]

        # then the charger charges it for its driver and stops it: completed, with the full uid
        await wait_for(
            db(ChargingSession.objects.filter(pk=session_id, status=SessionStatus.COMPLETED).exists), timeout=15
        )
    finally:
        stop.set()
        charger.cancel()
        await asyncio.gather(charger, return_exceptions=True)
    await db(outbox.deliver_pending)(wait=True)  # the stop's SessionStopped: pricing and the CDR
    session = await db(ChargingSession.objects.get)(pk=session_id)
    assert (session.driver_id, session.id_tag, session.auth_status, session.connector_id) == (
        given["driver"].pk,
        UUID,
        "Accepted",
        2,
    )
    assert (await db(Cdr.objects.get)(session=session)).cdr_token["uid"] == UUID


async def test_a_reservation_of_a_uuid_token_sends_wire_ids_and_its_start_uses_it(
    station: Station, connect: ConnectCharger
) -> None:
    # given an app user with a UUID token in a group with a long id, and a connected charger
    given = await db(_driver_with_app_token)(station)
    token: Token = given["token"]
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers["ReserveNow"] = {"status": "Accepted"}
    await charger.ok("BootNotification", BOOT)

    # when the driver reserves connector 1
    reserved = await db(given["client"].post)(
        "/api/v1/reservations/",
        {
            "driver": given["driver"].pk,
            "charge_point": station.charge_point.pk,
            "connector_id": 1,
            "expires_at": (timezone.now() + dt.timedelta(minutes=20)).isoformat(),
        },
        format="json",
    )

    # then ReserveNow carries the token's and the group's wire ids
    assert reserved.status_code == 201, reserved.content
    reservation_id = reserved.json()["id"]
    assert charger.received_calls[-1][2:] == [
        "ReserveNow",
        {
            "connectorId": 1,
            "expiryDate": charger.received_calls[-1][3]["expiryDate"],
            "idTag": token.wire_id,
            "reservationId": reservation_id,
            "parentIdTag": wire_id_for(GROUP),
        },
    ]

    # and when the car arrives and the charger starts with that idTag, the reservation is used
    started = await charger.ok(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": token.wire_id,
            "meterStart": 0,
            "timestamp": iso(timezone.now()),
            "reservationId": reservation_id,
        },
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    session = await db(ChargingSession.objects.get)(pk=started["transactionId"])
    assert (session.reservation_id, session.driver_id, session.id_tag) == (reservation_id, given["driver"].pk, UUID)
    assert (await db(Reservation.objects.get)(pk=reservation_id)).status == "used"
