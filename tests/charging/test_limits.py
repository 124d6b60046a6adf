"""Session limits in `zero_current` mode against a charger over a real WebSocket (raw OCPP-J frames): at the
contract's limit a TxProfile of 0 A goes out with SetChargingProfile, the session stays open (suspended),
and the limit and its outcome are on the session. The beat service runs with the clock at start + 31 min."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apps.customers.models import LimitAction
from apps.sessions import commands
from apps.sessions.models import ChargingSession, SessionEvent, SessionStatus
from apps.stations.models import Command
from tests.customers.factories import BusinessCustomerFactory, ContractFactory, DriverFactory, TokenFactory
from tests.ocpp.conftest import Charger, ConnectCharger, Station, db, wait_for
from tests.ocpp.test_core import BOOT, iso

pytestmark = pytest.mark.django_db(transaction=True)


def _held_contract(stn: Station) -> None:
    fleet = BusinessCustomerFactory(tenant=stn.tenant)
    contract = ContractFactory(
        tenant=stn.tenant,
        business_customer=fleet,
        max_session_duration=dt.timedelta(minutes=30),
        limit_action=LimitAction.ZERO_CURRENT,
    )
    TokenFactory(
        tenant=stn.tenant,
        uid="HOLD-1",
        driver=DriverFactory(tenant=stn.tenant, business_customer=fleet),
        business_customer=fleet,
        business_contract=contract,
    )


def _meter(tx: int, at: dt.datetime, wh: int, watts: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [
            {
                "timestamp": iso(at),
                "sampledValue": [
                    {"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                    {"value": str(watts), "unit": "W", "measurand": "Power.Active.Import"},
                ],
            }
        ],
    }


async def _charging(station: Station, connect: ConnectCharger) -> tuple[Charger, ChargingSession]:
    await db(_held_contract)(station)
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    start_at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    started = await charger.ok(
        "StartTransaction", {"connectorId": 1, "idTag": "HOLD-1", "meterStart": 1000, "timestamp": iso(start_at)}
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    tx = started["transactionId"]
    await charger.ok("MeterValues", _meter(tx, start_at + dt.timedelta(seconds=30), 1100, 11_000))
    session = await db(ChargingSession.objects.get)(pk=tx)
    assert (session.status, session.limit_duration, session.limit_action) == (
        SessionStatus.ACTIVE,
        dt.timedelta(minutes=30),
        "zero_current",
    )
    return charger, session


async def test_zero_current_limit_holds_the_session_at_0_a_and_keeps_it_open(
    station: Station, connect: ConnectCharger
) -> None:
    charger, session = await _charging(station, connect)
    charger.answers["SetChargingProfile"] = {"status": "Accepted"}
    later = session.started_at + dt.timedelta(minutes=31)

    assert await db(commands.session_limits_due)(now=later) == [session.pk]
    held = await db(commands.session_limit_enforce)(session_id=session.pk, now=later)

    calls = [(frame[2], frame[3]) for frame in charger.received_calls]
    assert calls == [
        (
            "SetChargingProfile",
            {
                "connectorId": 1,
                "csChargingProfiles": {
                    "chargingProfileId": commands.ZERO_CURRENT_PROFILE_ID + session.pk % 100_000,
                    "transactionId": session.pk,
                    "stackLevel": 9,
                    "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative",
                    "chargingSchedule": {
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0}],
                    },
                },
            },
        )
    ]
    session = await db(ChargingSession.objects.get)(pk=session.pk)
    command = await db(Command.objects.get)(pk=session.limit_command_id)
    assert (session.status, session.stopped_at, session.limit_reached, session.limit_reached_at) == (
        SessionStatus.SUSPENDED,
        None,
        "duration",
        later,
    )
    assert session.limit_outcome == "zero_current" == held.limit_outcome
    assert (command.action, command.status, command.source) == ("SetChargingProfile", "accepted", "session_limit")

    # the car stops drawing; the session stays open and suspended; the limit is acted on once
    await charger.ok("MeterValues", _meter(session.pk, later, 1100, 0))
    again = await db(commands.session_limit_enforce)(session_id=session.pk, now=later + dt.timedelta(minutes=5))
    assert again is not None
    assert again.limit_command_id == session.limit_command_id
    assert len(charger.received_calls) == 1
    assert await db(commands.session_limits_due)(now=later + dt.timedelta(hours=1)) == []
    session = await db(ChargingSession.objects.get)(pk=session.pk)
    assert (session.status, session.last_power_w, session.last_meter_wh) == (SessionStatus.SUSPENDED, 0, 1100)

    # the driver unplugs later: the held session completes with the energy it had
    await charger.ok(
        "StopTransaction",
        {"transactionId": session.pk, "meterStop": 1100, "timestamp": iso(later + dt.timedelta(minutes=10))},
    )
    session = await db(ChargingSession.objects.get)(pk=session.pk)
    assert (session.status, session.energy_wh, session.limit_outcome) == (SessionStatus.COMPLETED, 100, "zero_current")
    states = await db(lambda: list(SessionEvent.objects.filter(session=session).values_list("to_status", "reason")))()
    assert states == [
        ("pending", "StartTransaction"),
        ("active", "idTag Accepted"),
        ("suspended", "duration limit reached"),
        ("completed", "StopTransaction Local"),  # no reason given: OCPP 1.6's default, Local
    ]


async def test_zero_current_refused_by_the_charger_stops_the_session_instead(
    station: Station, connect: ConnectCharger
) -> None:
    charger, session = await _charging(station, connect)
    charger.answers["SetChargingProfile"] = {"status": "Rejected"}
    charger.answers["RemoteStopTransaction"] = {"status": "Accepted"}
    later = session.started_at + dt.timedelta(minutes=31)

    await db(commands.session_limit_enforce)(session_id=session.pk, now=later)

    session = await db(ChargingSession.objects.get)(pk=session.pk)
    profile, stop = await db(lambda: list(Command.objects.order_by("pk")))()
    assert [(f[2], f[3].get("transactionId")) for f in charger.received_calls] == [
        ("SetChargingProfile", None),
        ("RemoteStopTransaction", session.pk),
    ]
    assert (profile.action, profile.status, stop.action, stop.status) == (
        "SetChargingProfile",
        "rejected",
        "RemoteStopTransaction",
        "accepted",
    )
    assert (session.status, session.limit_reached, session.limit_outcome, session.limit_command_id) == (
        SessionStatus.FINISHING,
        "duration",
        "stopped",
        stop.pk,
    )
    reasons = await db(lambda: list(SessionEvent.objects.filter(session=session).values_list("to_status", "reason")))()
    assert reasons[-2:] == [
        ("suspended", "duration limit reached"),
        ("finishing", "0 A TxProfile rejected: RemoteStopTransaction instead"),
    ]


async def test_zero_current_refused_and_stop_refused_is_visible_on_the_session(
    station: Station, connect: ConnectCharger
) -> None:
    charger, session = await _charging(station, connect)
    charger.answers["SetChargingProfile"] = {"status": "Rejected"}
    charger.answers["RemoteStopTransaction"] = {"status": "Rejected"}
    later = session.started_at + dt.timedelta(minutes=31)

    await db(commands.session_limit_enforce)(session_id=session.pk, now=later)

    session = await db(ChargingSession.objects.get)(pk=session.pk)
    command = await db(Command.objects.get)(pk=session.limit_command_id)
    assert [frame[2] for frame in charger.received_calls] == ["SetChargingProfile", "RemoteStopTransaction"]
    assert (session.status, session.limit_reached, session.limit_outcome) == (
        SessionStatus.SUSPENDED,
        "duration",
        "rejected",
    )
    assert (command.action, command.status) == ("SetChargingProfile", "rejected")


async def test_zero_current_with_the_charger_offline_is_recorded_as_offline(
    station: Station, connect: ConnectCharger
) -> None:
    charger, session = await _charging(station, connect)
    await charger.close()
    await wait_for(db(lambda: not type(station.charge_point).objects.get(pk=station.charge_point.pk).online))
    later = session.started_at + dt.timedelta(minutes=31)

    await db(commands.session_limit_enforce)(session_id=session.pk, now=later)

    session = await db(ChargingSession.objects.get)(pk=session.pk)
    assert (session.limit_reached, session.limit_outcome, session.limit_command_id) == ("duration", "offline", None)
