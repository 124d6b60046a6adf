"""Transactions over real WebSockets: one running session per token (even at the same instant), a closed session
stays closed (late MeterValues, late StopTransaction), sessions whose StopTransaction never comes are closed from
evidence, and StopTransaction's default reason."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.customers.models import Token
from apps.sessions import services as session_services
from apps.sessions import tasks as session_tasks
from apps.sessions.models import (
    Cdr,
    ChargingSession,
    MeterValue,
    SessionEvent,
    SessionStatus,
    TransactionAnomaly,
)
from apps.stations import services as station_services
from tests.ocpp.conftest import Charger, ConnectCharger, Station, db
from tests.ocpp.test_core import BOOT, iso
from tests.stations.factories import ConnectorFactory, EvseFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
RUNNING = ("pending", "active", "suspended", "finishing")


def _second_charge_point(stn: Station) -> tuple[Any, str]:
    charge_point, password = station_services.charge_point_register(
        tenant=stn.tenant, identity="CP-TEST-2", location=stn.charge_point.location, heartbeat_interval=60
    )
    ConnectorFactory(evse=EvseFactory(charge_point=charge_point, connector_id=1, evse_uid="DE*TST*E2*1"))
    return charge_point, password or ""


def _energy_tariff(stn: Station) -> None:
    energy_only = [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}]
    TariffAssignmentFactory(
        tenant=stn.tenant, tariff=TariffFactory(tenant=stn.tenant, ocpi_id="KWH", elements=energy_only)
    )


async def _booted(connect: ConnectCharger, identity: str, password: str) -> Charger:
    charger = await connect(identity, password)
    await charger.ok("BootNotification", BOOT)
    return charger


def _reading(tx: int, at: dt.datetime, wh: int, connector: int = 1) -> dict[str, Any]:
    return {
        "connectorId": connector,
        "transactionId": tx,
        "meterValue": [
            {
                "timestamp": iso(at),
                "sampledValue": [{"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    }


def _session_facts(tx: int) -> tuple[Any, ...]:
    s = ChargingSession.objects.get(pk=tx)
    return (
        s.status,
        s.stopped_at,
        s.meter_stop_wh,
        s.energy_wh,
        s.last_meter_wh,
        s.last_meter_at,
        list(s.flags),
        s.cost_excl_vat,
        s.cost_incl_vat,
        list(s.suspicious_reasons),
        s.stop_reason,
        s.updated_at,
        SessionEvent.objects.filter(session_id=tx).count(),
        list(Cdr.objects.filter(session_id=tx).values_list("pk", "energy_wh", "total_cost", "end_date_time")),
    )


# --------------------------------------------------------------------------- one running session per token


ROUNDS = 12


async def test_two_chargers_starting_one_tag_at_the_same_instant_get_one_accepted_one_concurrent_tx(
    station: Station, connect: ConnectCharger
) -> None:
    # given one token and two chargers of the same operator
    await db(Token.objects.create)(tenant=station.tenant, uid="SHARED-1")
    other, other_password = await db(_second_charge_point)(station)
    first = await _booted(connect, station.charge_point.identity, station.password)
    second = await _booted(connect, other.identity, other_password)

    for round_ in range(ROUNDS):
        at = T0 + dt.timedelta(minutes=10 * round_)

        # when both start a transaction with that tag at the same instant
        start = {"connectorId": 1, "idTag": "SHARED-1", "meterStart": 0, "timestamp": iso(at)}
        a, b = await asyncio.gather(first.ok("StartTransaction", start), second.ok("StartTransaction", start))

        # then exactly one is Accepted, the other ConcurrentTx, and one session runs
        statuses = sorted([a["idTagInfo"]["status"], b["idTagInfo"]["status"]])
        assert statuses == ["Accepted", "ConcurrentTx"], f"round {round_}: {statuses}"
        running = await db(
            lambda: list(
                ChargingSession.objects.filter(id_tag="SHARED-1", status__in=RUNNING).values_list("pk", flat=True)
            )
        )()
        winner, loser = (a, b) if a["idTagInfo"]["status"] == "Accepted" else (b, a)
        assert running == [winner["transactionId"]]
        # the loser's session exists (energy is never lost), invalid, with the answer it got
        lost = await db(ChargingSession.objects.get)(pk=loser["transactionId"])
        assert (lost.status, lost.auth_status) == (SessionStatus.INVALID, "ConcurrentTx")

        # both chargers stop (the loser because it was refused)
        stop_at = iso(at + dt.timedelta(minutes=5))
        for charger, answer in ((first, a), (second, b)):
            await charger.ok(
                "StopTransaction",
                {"transactionId": answer["transactionId"], "meterStop": 100, "timestamp": stop_at, "reason": "Local"},
            )

    assert await db(ChargingSession.objects.filter(status=SessionStatus.COMPLETED).count)() == ROUNDS
    assert await db(ChargingSession.objects.filter(status=SessionStatus.INVALID).count)() == ROUNDS


def test_the_database_refuses_a_second_running_session_of_one_tag(station: Station) -> None:
    # given a running session of a tag
    cp = station.charge_point
    ChargingSession.objects.create(
        tenant=station.tenant,
        charge_point=cp,
        connector_id=1,
        id_tag="tag-9",
        auth_status="Accepted",
        status=SessionStatus.ACTIVE,
        started_at=T0,
        meter_start_wh=0,
    )

    # when anything writes a second running session of the same tag (any letter case): refused by the database
    with pytest.raises(IntegrityError), transaction.atomic():
        ChargingSession.objects.create(
            tenant=station.tenant,
            charge_point=cp,
            connector_id=2,
            id_tag="TAG-9",
            auth_status="Accepted",
            status=SessionStatus.PENDING,
            started_at=T0,
            meter_start_wh=0,
        )

    # while ended ones of that tag are fine
    ChargingSession.objects.create(
        tenant=station.tenant,
        charge_point=cp,
        connector_id=2,
        id_tag="TAG-9",
        auth_status="ConcurrentTx",
        status=SessionStatus.INVALID,
        started_at=T0,
        meter_start_wh=0,
    )
    assert ChargingSession.objects.filter(id_tag__iexact="tag-9").count() == 2


async def test_authorize_and_stop_answer_the_token_status_never_concurrent_tx(
    station: Station, connect: ConnectCharger
) -> None:
    # given a tag charging on connector 1
    await db(Token.objects.create)(tenant=station.tenant, uid="BUSY-1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    started = await charger.ok(
        "StartTransaction", {"connectorId": 1, "idTag": "BUSY-1", "meterStart": 0, "timestamp": iso(T0)}
    )

    # when the charger asks Authorize for it again (another connector), and a refused session is stopped with it
    authorized = await charger.ok("Authorize", {"idTag": "BUSY-1"})
    refused = await charger.ok(
        "StartTransaction",
        {"connectorId": 2, "idTag": "BUSY-1", "meterStart": 0, "timestamp": iso(T0 + dt.timedelta(minutes=1))},
    )
    stopped = await charger.ok(
        "StopTransaction",
        {
            "transactionId": refused["transactionId"],
            "idTag": "BUSY-1",
            "meterStop": 0,
            "timestamp": iso(T0 + dt.timedelta(minutes=2)),
        },
    )

    # then Authorize and StopTransaction answer the token's own status (OCPP 1.6: ConcurrentTx is for Start only)
    assert started["idTagInfo"]["status"] == "Accepted"
    assert authorized["idTagInfo"] == {"status": "Accepted"}
    assert refused["idTagInfo"]["status"] == "ConcurrentTx"
    assert stopped["idTagInfo"] == {"status": "Accepted"}


# --------------------------------------------------------------------------- a completed session stays completed


async def test_meter_values_after_the_stop_are_kept_as_late_samples_and_change_nothing(
    station: Station, connect: ConnectCharger
) -> None:
    # given a completed, priced session
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = (
        await charger.ok(
            "StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": iso(T0)}
        )
    )["transactionId"]
    await charger.ok("MeterValues", _reading(tx, T0 + dt.timedelta(minutes=10), 2000))
    await charger.ok(
        "StopTransaction",
        {"transactionId": tx, "meterStop": 3000, "timestamp": iso(T0 + dt.timedelta(minutes=20)), "reason": "Local"},
    )
    before = await db(_session_facts)(tx)

    # when the charger sends MeterValues for it afterwards (a later reading, and a queued older one)
    late = await charger.ok("MeterValues", _reading(tx, T0 + dt.timedelta(minutes=21), 3100))
    queued = await charger.ok("MeterValues", _reading(tx, T0 + dt.timedelta(minutes=15), 2500))

    # then both are answered and stored as late samples of the session, and the session is as it was
    assert late == queued == {}
    assert await db(_session_facts)(tx) == before
    assert before[0] == SessionStatus.COMPLETED
    assert (before[2], before[4], before[6]) == (3000, 3000, [])
    samples = await db(
        lambda: sorted(
            MeterValue.objects.filter(session_id=tx).values_list("timestamp", "value", "flags"), key=lambda r: r[0]
        )
    )()
    assert samples == [
        (T0 + dt.timedelta(minutes=10), Decimal("2000.0000"), []),
        (T0 + dt.timedelta(minutes=15), Decimal("2500.0000"), ["late"]),
        (T0 + dt.timedelta(minutes=21), Decimal("3100.0000"), ["late"]),
    ]
    kinds = await db(lambda: sorted(TransactionAnomaly.objects.filter(session_id=tx).values_list("kind", flat=True)))()
    assert kinds == ["late_meter_values", "late_meter_values"]


# --------------------------------------------------------------------------- sessions closed from evidence


async def _start_with_readings(charger: Charger, id_tag: str = "TAG1", connector: int = 1) -> int:
    tx: int = (
        await charger.ok(
            "StartTransaction",
            {"connectorId": connector, "idTag": id_tag, "meterStart": 1000, "timestamp": iso(T0)},
        )
    )["transactionId"]
    await charger.ok("MeterValues", _reading(tx, T0 + dt.timedelta(minutes=10), 2000, connector))
    await charger.ok("MeterValues", _reading(tx, T0 + dt.timedelta(minutes=20), 3000, connector))
    return tx


def _closed_facts(tx: int) -> dict[str, Any]:
    s = ChargingSession.objects.get(pk=tx)
    cdr = Cdr.objects.get(session_id=tx)
    last_event = SessionEvent.objects.filter(session_id=tx).order_by("pk").last()
    assert last_event is not None
    return {
        "status": s.status,
        "stopped_at": s.stopped_at,
        "meter_stop_wh": s.meter_stop_wh,
        "energy_wh": s.energy_wh,
        "flags": s.flags,
        "suspicious": s.suspicious,
        "closed_reason": "closed_without_stop" in s.suspicious_reasons,
        "cost_excl_vat": s.cost_excl_vat,
        "cdr": (cdr.energy_wh, cdr.end_date_time, cdr.total_cost["excl_vat"]),
        "event": (last_event.from_status, last_event.to_status, last_event.reason, last_event.detail["evidence"]),
        "anomalies": list(TransactionAnomaly.objects.filter(session_id=tx).values_list("kind", flat=True)),
    }


def _expected_closed(evidence: str, reason: str) -> dict[str, Any]:
    return {
        "status": SessionStatus.COMPLETED,
        "stopped_at": T0 + dt.timedelta(minutes=20),  # the last meter value
        "meter_stop_wh": 3000,
        "energy_wh": 2000,
        "flags": ["closed_without_stop"],
        "suspicious": True,
        "closed_reason": True,
        "cost_excl_vat": Decimal("0.78"),  # 2 kWh at 0.39
        "cdr": (2000, T0 + dt.timedelta(minutes=20), Decimal("0.78")),
        "event": ("active", "completed", reason, evidence),
        "anomalies": ["closed_without_stop"],
    }


async def test_a_new_start_on_the_same_connector_closes_the_session_that_never_got_its_stop(
    station: Station, connect: ConnectCharger
) -> None:
    # given a session whose StopTransaction never came (the charger lost it)
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = await _start_with_readings(charger)

    # when the same connector starts a new transaction, with the same tag
    new = await charger.ok(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG1", "meterStart": 3000, "timestamp": iso(T0 + dt.timedelta(hours=1))},
    )

    # then the old one is closed from that evidence and priced from its last meter value; the new one is accepted
    assert new["idTagInfo"]["status"] == "Accepted"
    assert await db(_closed_facts)(tx) == _expected_closed(
        "new_start", "closed without StopTransaction: a new StartTransaction on its connector"
    )
    assert (await db(ChargingSession.objects.get)(pk=new["transactionId"])).status == SessionStatus.ACTIVE


def _after_grace() -> dt.datetime:
    return timezone.now() + session_services.close_grace() + dt.timedelta(seconds=1)


def _noted(tx: int) -> tuple[str, str]:
    s = ChargingSession.objects.get(pk=tx)
    return s.status, s.end_evidence


@pytest.mark.parametrize("status", ["Available", "Preparing"])
async def test_an_available_or_preparing_connector_closes_its_session_unless_its_stop_comes(
    status: str, station: Station, connect: ConnectCharger
) -> None:
    # given a session on connector 1 and one on connector 2
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG2")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = await _start_with_readings(charger)
    other = await _start_with_readings(charger, "TAG2", connector=2)

    # when connector 1 reports a status from before the start (queued), then the status saying no transaction runs
    await charger.ok(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": iso(T0 - dt.timedelta(minutes=1))},
    )
    before_start = await db(_noted)(tx)
    await charger.ok(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": iso(T0 + dt.timedelta(minutes=30))},
    )

    # then the second is noted: the session waits for its StopTransaction during the grace period
    assert before_start == ("active", "")
    assert await db(_noted)(tx) == ("active", f"status:{status}")
    assert await db(session_services.sessions_close_stale)() == []

    # and when it does not come, the beat job closes it from that evidence; connector 2's runs on
    assert await db(session_services.sessions_close_stale)(now=_after_grace()) == [tx]
    assert await db(_closed_facts)(tx) == _expected_closed(
        "status", f"closed without StopTransaction: connector {status}"
    )
    assert await db(_noted)(other) == ("active", "")


async def test_a_boot_notification_closes_the_sessions_of_the_charger_unless_their_stop_comes(
    station: Station, connect: ConnectCharger
) -> None:
    # given two sessions on a charger
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG2")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx1 = await _start_with_readings(charger)
    tx2 = await _start_with_readings(charger, "TAG2", connector=2)

    # when it reboots (BootNotification), delivers a MeterValues it had queued, and nothing else for either session
    await charger.ok("BootNotification", BOOT)
    await charger.ok("MeterValues", _reading(tx1, T0 + dt.timedelta(minutes=15), 2500))  # old news: not a sign
    noted = (await db(_noted)(tx1), await db(_noted)(tx2))
    closed = await db(session_services.sessions_close_stale)(now=_after_grace())

    # then both were noted and are closed from that evidence after the grace period; their tags may charge again
    assert noted == (("active", "boot"), ("active", "boot"))
    assert closed == [tx1, tx2]
    expected = _expected_closed("boot", "closed without StopTransaction: the charger rebooted (BootNotification)")
    assert await db(_closed_facts)(tx1) == expected
    assert await db(_closed_facts)(tx2) == expected
    again = await charger.ok(
        "StartTransaction",
        {"connectorId": 2, "idTag": "TAG1", "meterStart": 3000, "timestamp": iso(T0 + dt.timedelta(hours=2))},
    )
    assert again["idTagInfo"]["status"] == "Accepted"


async def test_a_stop_that_comes_after_the_boot_completes_the_session_with_its_exact_energy(
    station: Station, connect: ConnectCharger
) -> None:
    # given a session of a charger that rebooted (noted)
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = await _start_with_readings(charger)
    await charger.ok("BootNotification", BOOT)

    # when the charger delivers the StopTransaction it had queued
    stop = {"transactionId": tx, "meterStop": 3500, "timestamp": iso(T0 + dt.timedelta(minutes=25)), "reason": "Reboot"}
    await charger.ok("StopTransaction", stop)

    # then it completes as any stopped session, with the stop's exact energy, and the beat job has nothing to do
    session = await db(ChargingSession.objects.get)(pk=tx)
    assert (session.status, session.meter_stop_wh, session.energy_wh, session.stop_reason) == (
        "completed",
        3500,
        2500,
        "Reboot",
    )
    assert "closed_without_stop" not in session.flags + session.suspicious_reasons
    assert await db(session_services.sessions_close_stale)(now=_after_grace()) == []


@pytest.mark.parametrize("news", ["MeterValues", "StatusNotification"])
async def test_news_of_the_transaction_after_a_boot_withdraws_the_note(
    news: str, station: Station, connect: ConnectCharger
) -> None:
    # given a charger that sends BootNotification on every reconnect but charges on
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = await _start_with_readings(charger)
    await charger.ok("BootNotification", BOOT)
    noted = await db(_noted)(tx)

    # when it reports the transaction again (a fresh reading, or its connector charging)
    if news == "MeterValues":
        await charger.ok("MeterValues", _reading(tx, timezone.now(), 3300))
    else:
        await charger.ok(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": iso(timezone.now())},
        )

    # then the note is withdrawn (audited) and the session is not closed after the grace period
    assert noted == ("active", "boot")
    assert await db(_noted)(tx) == ("active", "")
    assert await db(session_services.sessions_close_stale)(now=_after_grace()) == []
    reasons = await db(lambda: list(SessionEvent.objects.filter(session_id=tx).values_list("reason", flat=True)))()
    why = "MeterValues" if news == "MeterValues" else "connector Charging"
    assert reasons[-1] == f"transaction still running ({why}): end note withdrawn"


async def test_a_start_of_the_token_elsewhere_confirms_a_noted_end_at_once(
    station: Station, connect: ConnectCharger
) -> None:
    # given a session on a charger that rebooted (noted, within the grace period)
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    other, other_password = await db(_second_charge_point)(station)
    first = await _booted(connect, station.charge_point.identity, station.password)
    second = await _booted(connect, other.identity, other_password)
    tx = await _start_with_readings(first)
    await first.ok("BootNotification", BOOT)

    # when the driver starts with the same token on another charger
    moved = await second.ok(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": iso(T0 + dt.timedelta(hours=1))},
    )

    # then the noted session is closed at once from its evidence and the new start is accepted
    assert moved["idTagInfo"]["status"] == "Accepted"
    assert await db(_closed_facts)(tx) == _expected_closed(
        "boot", "closed without StopTransaction: the charger rebooted (BootNotification)"
    )


async def test_a_session_with_no_news_past_the_timeout_is_closed_by_the_beat_job(
    station: Station, connect: ConnectCharger, settings: Any
) -> None:
    # given a session whose last news is older than the timeout, and a fresh one
    settings.CHARGING_SESSION_CLOSE_AFTER_HOURS = 6
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG2")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    stale = await _start_with_readings(charger)
    fresh = (
        await charger.ok(
            "StartTransaction",
            {"connectorId": 2, "idTag": "TAG2", "meterStart": 0, "timestamp": iso(timezone.now())},
        )
    )["transactionId"]
    # our clock saw both just now: nothing is due, whatever the stale one's charger clock says
    assert await db(session_services.sessions_close_stale)(now=timezone.now()) == []
    await db(ChargingSession.objects.filter(pk=stale).update)(updated_at=timezone.now() - dt.timedelta(hours=7))

    # when the beat job runs
    closed = await db(session_services.sessions_close_stale)()

    # then the stale one is closed from that evidence, the fresh one (recent news) is not
    assert closed == [stale]
    assert await db(_closed_facts)(stale) == _expected_closed(
        "timeout", "closed without StopTransaction: no news for 6 h"
    )
    assert (await db(ChargingSession.objects.get)(pk=fresh)).status == SessionStatus.ACTIVE
    assert await db(session_tasks.close_stale)() == 0  # nothing else is due now


def test_the_close_job_is_a_beat_entry(settings: Any) -> None:
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "charging.close_stale" in entries


async def test_a_stop_that_arrives_after_the_session_was_closed_is_recorded_and_never_reprices(
    station: Station, connect: ConnectCharger
) -> None:
    # given a session closed from evidence (a reboot, and no stop within the grace period)
    await db(_energy_tariff)(station)
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = await _start_with_readings(charger)
    await charger.ok("BootNotification", BOOT)
    assert await db(session_services.sessions_close_stale)(now=_after_grace()) == [tx]
    before = await db(_session_facts)(tx)

    # when the charger delivers its queued StopTransaction (with transaction data)
    stop = {
        "transactionId": tx,
        "meterStop": 3500,
        "timestamp": iso(T0 + dt.timedelta(minutes=25)),
        "reason": "PowerLoss",
        "idTag": "TAG1",
        "transactionData": [
            {"timestamp": iso(T0 + dt.timedelta(minutes=25)), "sampledValue": [{"value": "3500", "unit": "Wh"}]}
        ],
    }
    answer = await charger.ok("StopTransaction", stop)

    # then it is accepted and recorded (anomaly with what it said, its data as late samples), nothing re-priced
    assert answer == {"idTagInfo": {"status": "Accepted"}}
    after = await db(_session_facts)(tx)
    assert after[:-2] == before[:-2]  # every field and the cost are the same
    assert after[-1] == before[-1]  # the same CDR
    assert after[-2] == before[-2] + 1  # one more event: the record of the late stop
    anomaly = await db(TransactionAnomaly.objects.get)(session_id=tx, kind="stop_after_close")
    assert anomaly.payload == {
        "meter_stop": 3500,
        "timestamp": iso(T0 + dt.timedelta(minutes=25)).replace("Z", "+00:00"),
        "reason": "PowerLoss",
        "id_tag": "TAG1",
    }
    late = await db(
        lambda: list(MeterValue.objects.filter(session_id=tx, flags__contains=["late"]).values_list("value", flat=True))
    )()
    assert late == [Decimal("3500.0000")]


# --------------------------------------------------------------------------- StopTransaction's default reason


async def test_a_stop_without_reason_is_stored_with_the_default_local(
    station: Station, connect: ConnectCharger
) -> None:
    await db(Token.objects.create)(tenant=station.tenant, uid="TAG1")
    charger = await _booted(connect, station.charge_point.identity, station.password)
    tx = (
        await charger.ok("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": iso(T0)})
    )["transactionId"]

    await charger.ok("StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": iso(T0)})

    assert (await db(ChargingSession.objects.get)(pk=tx)).stop_reason == "Local"
