"""The whole driver journey on real PostgreSQL and Redis, against a real WebSocket server and a simulated charger
(the `ocpp` package's client side): find a station, reserve it, start by QR payload, charge with meter values,
live updates over /ws/sessions/<id>, the contract's 30-minute limit stops it (the beat service run with the clock
at start + 31 min), and the CDR carries the exact energy."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
import websockets
from django.utils import timezone
from rest_framework.test import APIClient

from apps.customers.models import ConnectorStandard, LimitAction
from apps.ocpp.simulator import SimConfig, run_charger
from apps.sessions import commands
from apps.sessions.models import Cdr, ChargingSession, MeterValue, Reservation, SessionEvent, SessionStatus
from apps.stations.models import Command
from tests.customers.factories import (
    BusinessCustomerFactory,
    ContractFactory,
    DriverFactory,
    TokenFactory,
    VehicleFactory,
)
from tests.ocpp.conftest import Station, db, server, station, wait_for  # noqa: F401 (fixtures)
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory
from tests.tenants.factories import api_key_for

pytestmark = pytest.mark.django_db(transaction=True)


def _setup(stn: Station) -> dict[str, Any]:
    tenant = stn.tenant
    fleet = BusinessCustomerFactory(tenant=tenant)
    contract = ContractFactory(
        tenant=tenant,
        business_customer=fleet,
        max_session_duration=dt.timedelta(minutes=30),
        limit_action=LimitAction.STOP,
    )
    driver = DriverFactory(tenant=tenant, business_customer=fleet)
    token = TokenFactory(
        tenant=tenant, uid="JOURNEY-1", driver=driver, business_customer=fleet, business_contract=contract
    )
    vehicle = VehicleFactory(
        tenant=tenant, driver=driver, connector_types=[ConnectorStandard.IEC_62196_T2], dc_max_power_w=None
    )
    other = DriverFactory(tenant=tenant)
    TokenFactory(tenant=tenant, uid="OTHER-1", driver=other)
    energy_only = [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}]
    TariffAssignmentFactory(tenant=tenant, tariff=TariffFactory(tenant=tenant, ocpi_id="KWH", elements=energy_only))
    _, raw = api_key_for(tenant, ["driver:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return {"driver": driver, "token": token, "vehicle": vehicle, "other": other, "client": client, "raw": raw}


async def test_driver_journey_reserve_start_by_qr_live_updates_limit_stop_exact_cdr(
    server: str,  # noqa: F811
    station: Station,  # noqa: F811
) -> None:
    given = await db(_setup)(station)
    client: APIClient = given["client"]
    config = SimConfig(
        url=server,
        password=station.password,
        connectors=2,
        heartbeat=30,
        meter_interval=0.2,
        session_seconds=(120, 120),
        idle_seconds=(3600, 3600),  # only remote starts
        power_w=3_600_000,  # 200 Wh per 0.2 s sample
    )
    stop = asyncio.Event()
    charger = asyncio.create_task(run_charger(station.charge_point.identity, config, stop))
    try:
        cp = station.charge_point
        await wait_for(db(lambda: Command.objects.none().exists() or _online(cp.pk)), timeout=10)

        # a driver finds the station near a point
        found = await db(client.get)("/api/v1/driver/stations/", {"lat": "52.52", "lon": "13.40", "radius_km": "5"})
        assert found.status_code == 200, found.content
        row = next(r for r in found.json()["results"] if r["id"] == cp.location_id)
        assert row["summary"]["connector_types"] == ["IEC_62196_T2"]
        assert row["distance_km"] < 1
        assert {e["evse_id"]: e["price"]["text"] for e in row["evses"]} == {
            "DE*TST*E1*1": "0.4641 EUR/kWh incl. VAT",
            "DE*TST*E1*2": "0.4641 EUR/kWh incl. VAT",
        }

        # reserves connector 1 for 20 minutes with a vehicle that fits
        expires = timezone.now() + dt.timedelta(minutes=20)
        reserved = await db(client.post)(
            "/api/v1/reservations/",
            {
                "driver": given["driver"].pk,
                "charge_point": cp.pk,
                "connector_id": 1,
                "expires_at": expires.isoformat(),
                "vehicle": given["vehicle"].pk,
            },
            format="json",
        )
        assert reserved.status_code == 201, reserved.content
        reservation_id = reserved.json()["id"]
        assert reserved.json()["status"] == "active"
        reserve_now = await db(Command.objects.get)(pk=reserved.json()["command_id"])
        assert (reserve_now.action, reserve_now.status, reserve_now.payload["reservationId"]) == (
            "ReserveNow",
            "accepted",
            reservation_id,
        )

        # someone else cannot take the reserved connector: 409, and nothing sent or written
        before = await db(_state)()
        refused = await db(client.post)(
            "/api/v1/driver/sessions/", {"driver": given["other"].pk, "qr": "DE*TST*E1*1"}, format="json"
        )
        assert refused.status_code == 409
        assert refused.json()["code"] == "connector_reserved"
        assert await db(_state)() == before

        # the driver starts by QR payload
        started = await db(client.post)(
            "/api/v1/driver/sessions/",
            {"driver": given["driver"].pk, "qr": "https://evp.example/qr/DE*TST*E1*1", "reservation": reservation_id},
            format="json",
        )
        assert started.status_code == 202, started.content
        await wait_for(db(ChargingSession.objects.filter(status=SessionStatus.ACTIVE).exists), timeout=10)
        session = await db(ChargingSession.objects.get)()
        assert (session.reservation_id, session.driver_id, session.contract_id, session.auth_method) == (
            reservation_id,
            given["driver"].pk,
            given["token"].business_contract_id,
            "COMMAND",
        )
        assert session.limit_duration == dt.timedelta(minutes=30)

        # live updates over the WebSocket
        url = server + f"/ws/sessions/{session.pk}?api_key={given['raw']}&driver={given['driver'].pk}"
        async with websockets.connect(url) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if first["event"] == "started":  # events from the OCPP path are delivered by the events thread after
                # commit, so the session's "started" may reach a socket that joined just after the commit
                assert first["session_id"] == session.pk
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            second = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert (first["event"], first["session_id"]) == ("meter", session.pk)
            assert second["energy_wh"] > first["energy_wh"] > 0
            assert second["power_w"] == 3_600_000

            # the contract's 30-minute limit: the beat service with the clock at start + 31 min
            later = session.started_at + dt.timedelta(minutes=31)
            assert await db(commands.session_limits_due)(now=later) == [session.pk]
            limited = await db(commands.session_limit_enforce)(session_id=session.pk, now=later)
            assert (limited.limit_reached, limited.limit_outcome) == ("duration", "stopped")
            stop_command = await db(Command.objects.get)(pk=limited.limit_command_id)
            assert (stop_command.action, stop_command.payload, stop_command.source) == (
                "RemoteStopTransaction",
                {"transactionId": session.pk},
                "session_limit",
            )

            messages = []
            while not messages or messages[-1]["event"] != "ended":
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert messages[-1]["status"] == "completed"
    finally:
        stop.set()
        charger.cancel()
        await asyncio.gather(charger, return_exceptions=True)

    session = await db(ChargingSession.objects.get)(pk=session.pk)
    last_register = await db(
        lambda: (
            MeterValue.objects.filter(session=session, measurand="Energy.Active.Import.Register")
            .order_by("-timestamp")
            .values_list("value", flat=True)
            .first()
        )
    )()
    cdr = await db(Cdr.objects.get)(session=session)
    assert session.status == SessionStatus.COMPLETED
    assert session.stop_reason == "Remote"
    assert session.meter_stop_wh == int(last_register)
    assert cdr.energy_wh == session.energy_wh == session.meter_stop_wh - session.meter_start_wh > 0
    assert cdr.total_energy == Decimal(cdr.energy_wh) / 1000
    kwh = Decimal(cdr.energy_wh) / 1000
    assert sum(d["volume"] for p in cdr.charging_periods for d in p["dimensions"] if d["type"] == "ENERGY") == kwh
    assert cdr.total_energy_cost["excl_vat"] == (kwh * Decimal("0.39")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert cdr.total_cost["excl_vat"] == session.cost_excl_vat
    assert cdr.cdr_token["uid"] == "JOURNEY-1"
    assert cdr.cdr_location["evse_id"] == "DE*TST*E1*1"
    assert (session.limit_reached, session.limit_outcome) == ("duration", "stopped")
    assert (await db(Reservation.objects.get)(pk=reservation_id)).status == "used"
    states = await db(lambda: list(SessionEvent.objects.filter(session=session).values_list("to_status", flat=True)))()
    assert states == ["pending", "active", "finishing", "completed"]


def _state() -> tuple[list[object], ...]:
    return (
        list(Command.objects.order_by("pk").values_list("pk", "status")),
        list(ChargingSession.objects.order_by("pk").values_list("pk", "status")),
        list(Reservation.objects.order_by("pk").values_list("pk", "status")),
    )


def _online(charge_point_id: int) -> bool:
    from apps.stations.models import ChargePoint

    return bool(ChargePoint.objects.filter(pk=charge_point_id, online=True, status="Available").exists())
