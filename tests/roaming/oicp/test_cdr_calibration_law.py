"""The ChargeDetailRecord we send Hubject carries the charger's signed meter values (calibration law, Eichrecht):
Start, the last Progress ones and End, at most 10, none cut, and the whole body valid against the CPO file."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from apps.roaming.models import CommandType, RoamingCommand
from apps.roaming.oicp import inbound, schema
from apps.sessions.models import SessionStatus, SignedMeterValue
from tests.charging.factories import ChargingSessionFactory
from tests.roaming.factories import partner_for

pytestmark = pytest.mark.django_db

BEGIN = dt.datetime(2026, 12, 5, 10, 0, tzinfo=dt.UTC)


def _ocmf(index: int) -> str:
    reading = f'{{"TM":"2026-12-05T10:{index:02d}:00,000+0000 S","RV":{index}.5}}'
    return f'OCMF|{{"FV":"1.0","RD":[{reading}]}}|{{"SD":"30{index:02d}"}}'


def test_the_cdr_carries_start_the_last_progress_values_and_end() -> None:
    session = ChargingSessionFactory(
        status=SessionStatus.COMPLETED,
        started_at=BEGIN,
        stopped_at=BEGIN + dt.timedelta(minutes=30),
        meter_start_wh=1000,
        meter_stop_wh=13500,
    )
    partner, _token = partner_for(session.tenant)
    start = RoamingCommand.objects.create(
        partner=partner,
        module="oicp",
        command=CommandType.START_SESSION,
        request={
            "oicp": {
                "SessionID": str(uuid.uuid4()),
                "Identification": {"RemoteIdentification": {"EvcoID": "DE-DCB-C12345678-X"}},
                "EvseID": "DE*ABC*E1*1",
            }
        },
        target={},
        response_url="",
    )
    rows = [("Transaction.Begin", _ocmf(0))]
    rows += [("Sample.Periodic", _ocmf(minute)) for minute in range(1, 11)]
    rows += [("Sample.Periodic", "OCMF|" + "x" * 3000)]  # longer than the file allows: left out, not cut
    rows += [("Transaction.End", _ocmf(30))]
    for minute, (context, data) in enumerate(rows):
        SignedMeterValue.objects.create(
            session=session,
            charge_point=session.charge_point,
            connector_id=1,
            timestamp=BEGIN + dt.timedelta(minutes=minute),
            measurand="Energy.Active.Import.Register",
            context=context,
            data=data,
        )

    body = inbound.cdr_body(session, start)

    values = body["SignedMeteringValues"]
    assert [v["MeteringStatus"] for v in values] == ["Start"] + ["Progress"] * 8 + ["End"]
    assert [v["SignedMeteringValue"] for v in values] == [_ocmf(0)] + [_ocmf(m) for m in range(3, 11)] + [_ocmf(30)]
    assert body["CalibrationLawVerificationInfo"] == {"MeteringSignatureEncodingFormat": "OCMF"}
    assert body["ConsumedEnergy"] == 12.5
    assert schema.operation_named("cpo", "ChargeDetailRecord").request_issues(body) == []


def test_a_session_without_signed_values_sends_none() -> None:
    session = ChargingSessionFactory(
        status=SessionStatus.COMPLETED, started_at=BEGIN, stopped_at=BEGIN + dt.timedelta(minutes=5), meter_stop_wh=500
    )
    start = RoamingCommand.objects.create(
        partner=partner_for(session.tenant)[0],
        module="oicp",
        command=CommandType.START_SESSION,
        request={"oicp": {"SessionID": str(uuid.uuid4()), "Identification": {}, "EvseID": "DE*ABC*E1*1"}},
        target={},
        response_url="",
    )
    body = inbound.cdr_body(session, start)
    assert "SignedMeteringValues" not in body
    assert "CalibrationLawVerificationInfo" not in body
