"""A transient database error is retried before a charger ever sees it (issue 20 item 2): a MeterValues whose
transaction PostgreSQL aborts as a deadlock victim, or whose connection is terminated, is run again and answered
normally. Real errors from a real PostgreSQL, caused by a second connection; under daphne."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from apps.customers.models import Token
from apps.sessions.models import ChargingSession, MeterValue
from apps.stations.models import Evse, StatusEvent
from tests.ocpp.conftest import Charger, ConnectCharger, Station, db

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLED_AT = dt.datetime(2026, 3, 1, 10, 5, tzinfo=dt.UTC)


def connect_db(**options: Any) -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return psycopg.connect(**params, **options)


@pytest.fixture
def other() -> Iterator[psycopg.Connection[Any]]:
    """A second connection to the test database (another worker, an operator's script ...)."""
    with connect_db(application_name="evp-test-other") as conn:
        yield conn


async def charging(station: Station, connect: ConnectCharger) -> tuple[Charger, int]:
    await db(Token.objects.create)(tenant=station.tenant, uid="GOOD")
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    started = await charger.ok(
        "StartTransaction", {"connectorId": 1, "idTag": "GOOD", "meterStart": 1000, "timestamp": "2026-03-01T10:00:00Z"}
    )
    return charger, started["transactionId"]


def meter_values(transaction_id: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {
                "timestamp": SAMPLED_AT.isoformat(),
                "sampledValue": [{"value": "5000", "context": "Sample.Periodic", "unit": "Wh"}],
            }
        ],
    }


async def a_backend_waits_on_a_lock(other: psycopg.Connection[Any]) -> int:
    """The pid of the charger's DB connection once it waits for a lock the other connection holds."""
    holder = other.info.backend_pid
    with connect_db(autocommit=True) as watcher:  # autocommit: each look at pg_stat_activity is a fresh one
        for _ in range(500):
            row = await asyncio.to_thread(
                lambda: watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> %s",
                    [holder],
                ).fetchone()
            )
            if row is not None:
                return int(row[0])
            await asyncio.sleep(0.02)
    raise AssertionError("the charger's transaction never waited")


async def stored(transaction_id: int) -> tuple[list[tuple[Any, ...]], int | None]:
    values = await db(
        lambda: list(MeterValue.objects.filter(session_id=transaction_id).values_list("timestamp", "value"))
    )()
    session = await db(ChargingSession.objects.get)(pk=transaction_id)
    return values, session.last_meter_wh


async def test_a_deadlock_victim_is_retried_and_the_charger_gets_its_answer(
    station: Station, connect: ConnectCharger, other: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    charger, tx = await charging(station, connect)
    # given another transaction that inserted the same sample (not committed: the charger's insert will wait on it)
    other.execute("SET deadlock_timeout = '30s'")  # the charger's transaction is the one PostgreSQL aborts
    other.execute(
        "INSERT INTO charging_metervalue (session_id, charge_point_id, connector_id, timestamp, measurand, phase, "
        "location, context, unit, value, flags) VALUES (%s, %s, 1, %s, 'Energy.Active.Import.Register', '', '', "
        "'Sample.Periodic', 'Wh', 4000, '{}')",
        [tx, station.charge_point.pk, SAMPLED_AT],
    )

    # when the charger sends it, and the other transaction then wants the session the charger's transaction holds
    answer = asyncio.create_task(charger.call("MeterValues", meter_values(tx)))
    await a_backend_waits_on_a_lock(other)
    await asyncio.to_thread(
        lambda: other.execute("SELECT id FROM charging_chargingsession WHERE id = %s FOR UPDATE", [tx])
    )  # a deadlock: PostgreSQL aborts the charger's transaction, and this one gets the row
    other.rollback()

    # then the charger's MeterValues was run again and answered, not refused with an InternalError
    assert (await answer)[0] == 3
    assert await stored(tx) == ([(SAMPLED_AT, 5000)], 5000)
    assert "session_add_meter_values: transient database error, retry 1 of 3" in caplog.text
    assert "deadlock detected" in caplog.text


async def test_a_lost_connection_is_retried_and_the_charger_gets_its_answer(
    station: Station, connect: ConnectCharger, other: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    charger, tx = await charging(station, connect)
    # given another transaction holding the charger's session
    other.execute("SELECT id FROM charging_chargingsession WHERE id = %s FOR UPDATE", [tx])

    # when the charger sends MeterValues and its database connection is terminated while it waits
    answer = asyncio.create_task(charger.call("MeterValues", meter_values(tx)))
    pid = await a_backend_waits_on_a_lock(other)
    other.execute("SELECT pg_terminate_backend(%s)", [pid])
    other.rollback()

    # then the call was run again on a new connection and answered
    assert (await answer)[0] == 3
    assert await stored(tx) == ([(SAMPLED_AT, 5000)], 5000)
    assert "session_add_meter_values: transient database error, retry 1 of 3" in caplog.text


async def test_a_status_whose_connection_is_lost_is_retried_and_recorded(
    station: Station, connect: ConnectCharger, other: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The status statement runs on a prepared (raw psycopg) cursor: its errors must reach the retry as Django's."""
    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    # given another transaction holding the connector's EVSE
    other.execute("SELECT id FROM stations_evse WHERE id = %s FOR UPDATE", [station.connectors[0].evse_id])

    # when the charger reports the connector's status and its database connection is terminated while it waits
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Faulted", "timestamp": "2026-03-01T10:00:00Z"}
    answer = asyncio.create_task(charger.call("StatusNotification", status))
    pid = await a_backend_waits_on_a_lock(other)
    other.execute("SELECT pg_terminate_backend(%s)", [pid])
    other.rollback()

    # then it was run again on a new connection, answered, and recorded once
    assert (await answer)[0] == 3
    assert "_status: transient database error, retry 1 of 3" in caplog.text
    evse = await db(Evse.objects.get)(pk=station.connectors[0].evse_id)
    assert evse.status == "Faulted"
    events = await db(lambda: StatusEvent.objects.filter(charge_point=station.charge_point, status="Faulted").count())()
    assert events == 1


async def test_a_lasting_error_is_still_an_internal_error(
    station: Station, connect: ConnectCharger, other: psycopg.Connection[Any]
) -> None:
    """Only transient errors are retried: a statement that times out is answered InternalError at once."""
    charger, tx = await charging(station, connect)
    other.execute("SELECT id FROM charging_chargingsession WHERE id = %s FOR UPDATE", [tx])
    answer = asyncio.create_task(charger.call("MeterValues", meter_values(tx)))
    pid = await a_backend_waits_on_a_lock(other)
    other.execute("SELECT pg_cancel_backend(%s)", [pid])  # query_canceled (57014): not transient
    frame = await answer
    other.rollback()

    assert (frame[0], frame[2]) == (4, "InternalError")
    assert await stored(tx) == ([], 1000)  # as the StartTransaction left it
