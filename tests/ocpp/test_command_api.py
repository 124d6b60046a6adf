"""Every OCPP 1.6 command through the API (real HTTP) to a real charger over WebSocket: a valid payload of each
command's full shape (arrays of strings, arrays of objects, nested schedules, enums, dates) arrives on the wire as
sent, and the API answers with the command as stored, the charger's answer included."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from apps.stations.models import Command
from tests.ocpp.conftest import ConnectCharger, Station, db
from tests.ocpp.http import api_for
from tests.ocpp.pki import make_ca, pem
from tests.ocpp.test_core import BOOT

pytestmark = pytest.mark.django_db(transaction=True)

SCHEDULE = {
    "duration": 86400,
    "startSchedule": "2030-01-01T06:00:00Z",
    "chargingRateUnit": "A",
    "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
        {"startPeriod": 3600, "limit": 7.1},
        {"startPeriod": 7200, "limit": 12.7, "numberPhases": 1},
    ],
    "minChargingRate": 6.0,
}

ROOT = make_ca()
CHARGER_CERT, _ = ROOT.issue("CP-TEST-1", client=True)
HASH_DATA = {"hashAlgorithm": "SHA256", "issuerNameHash": "ab" * 32, "issuerKeyHash": "cd" * 32, "serialNumber": "1f"}

# slug, payload sent to the API, what must arrive on the wire (None: the payload itself), the charger's answer
CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any]]] = [
    ("cancel-reservation", {"reservationId": 3}, None, {"status": "Accepted"}),
    ("change-availability", {"connectorId": 0, "type": "Inoperative"}, None, {"status": "Scheduled"}),
    ("change-configuration", {"key": "HeartbeatInterval", "value": "120"}, None, {"status": "Accepted"}),
    ("clear-cache", {}, None, {"status": "Accepted"}),
    (
        "clear-charging-profile",
        {"connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0},
        None,
        {"status": "Accepted"},
    ),
    (
        "data-transfer",
        {"vendorId": "com.example", "messageId": "Ping", "data": '  spaced  {"a": 1}  '},
        None,
        {"status": "Accepted", "data": "pong"},
    ),
    (
        "get-composite-schedule",
        {"connectorId": 0, "duration": 3600, "chargingRateUnit": "W"},
        None,
        {"status": "Accepted", "connectorId": 0},
    ),
    (
        "get-configuration",
        {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]},
        None,
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}], "unknownKey": []},
    ),
    (
        "get-diagnostics",
        {
            "location": "ftp://logs.example.com/upload/",
            "retries": 2,
            "retryInterval": 60,
            "startTime": "2030-01-01T01:00:00+01:00",
            "stopTime": "2030-01-02T00:00:00Z",
        },
        {
            "location": "ftp://logs.example.com/upload/",
            "retries": 2,
            "retryInterval": 60,
            "startTime": "2030-01-01T00:00:00Z",
            "stopTime": "2030-01-02T00:00:00Z",
        },
        {"fileName": "diag.zip"},
    ),
    ("get-local-list-version", {}, None, {"listVersion": 0}),
    (
        "remote-start-transaction",
        {
            "connectorId": 2,
            "idTag": "TAG-1",
            "chargingProfile": {
                "chargingProfileId": 11,
                "stackLevel": 2,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}, {"startPeriod": 900, "limit": 7.1}],
                },
            },
        },
        None,
        {"status": "Accepted"},
    ),
    ("remote-stop-transaction", {"transactionId": 44}, None, {"status": "Accepted"}),
    (
        "reserve-now",
        {
            "connectorId": 1,
            "expiryDate": "2030-01-01T00:00:00Z",
            "idTag": "TAG-1",
            "parentIdTag": "GROUP-1",
            "reservationId": 7,
        },
        None,
        {"status": "Accepted"},
    ),
    ("reset", {"type": "Soft"}, None, {"status": "Accepted"}),
    (
        "send-local-list",
        {
            "listVersion": 1,
            "updateType": "Full",
            "localAuthorizationList": [
                {
                    "idTag": "A",
                    "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "G"},
                },
                {"idTag": "B", "idTagInfo": {"status": "Blocked"}},
            ],
        },
        None,
        {"status": "Accepted"},
    ),
    (
        "set-charging-profile",
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 7,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Recurring",
                "recurrencyKind": "Daily",
                "validFrom": "2030-01-01T00:00:00Z",
                "validTo": "2031-01-01T00:00:00Z",
                "chargingSchedule": SCHEDULE,
            },
        },
        None,
        {"status": "Accepted"},
    ),
    ("trigger-message", {"requestedMessage": "MeterValues", "connectorId": 2}, None, {"status": "Accepted"}),
    ("unlock-connector", {"connectorId": 2}, None, {"status": "Unlocked"}),
    (
        "update-firmware",
        {
            "location": "https://fw.example.com/eve-6.2.bin",
            "retrieveDate": "2030-01-01T00:00:00Z",
            "retries": 3,
            "retryInterval": 120,
        },
        None,
        {},
    ),
    # the security extension
    ("certificate-signed", {"certificateChain": pem(CHARGER_CERT) + ROOT.pem}, None, {"status": "Accepted"}),
    ("delete-certificate", {"certificateHashData": HASH_DATA}, None, {"status": "Accepted"}),
    (
        "extended-trigger-message",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        None,
        {"status": "Accepted"},
    ),
    (
        "get-installed-certificate-ids",
        {"certificateType": "CentralSystemRootCertificate"},
        None,
        {"status": "Accepted", "certificateHashData": [HASH_DATA]},
    ),
    (
        "get-log",
        {
            "logType": "SecurityLog",
            "requestId": 4,
            "retries": 1,
            "retryInterval": 30,
            "log": {
                "remoteLocation": "https://logs.example.com/up/",
                "oldestTimestamp": "2030-01-01T00:00:00Z",
                "latestTimestamp": "2030-01-02T00:00:00Z",
            },
        },
        None,
        {"status": "Accepted", "filename": "security.log"},
    ),
    (
        "install-certificate",
        {"certificateType": "CentralSystemRootCertificate", "certificate": ROOT.pem},
        None,
        {"status": "Accepted"},
    ),
    (
        "signed-update-firmware",
        {
            "requestId": 9,
            "retries": 2,
            "retryInterval": 60,
            "firmware": {
                "location": "https://fw.example.com/eve-7.0.bin",
                "retrieveDateTime": "2030-01-01T00:00:00Z",
                "installDateTime": "2030-01-01T02:00:00Z",
                "signingCertificate": ROOT.pem,
                "signature": "c2lnbmF0dXJl",
            },
        },
        None,
        {"status": "Accepted"},
    ),
]


def _action(slug: str) -> str:
    return "".join(part.capitalize() for part in slug.split("-"))


def test_every_server_action_has_a_case() -> None:
    from apps.stations.services import SERVER_ACTIONS

    assert sorted(_action(slug) for slug, *_ in CASES) == sorted(SERVER_ACTIONS)


@pytest.mark.parametrize(("slug", "payload", "wire", "answer"), CASES, ids=[case[0] for case in CASES])
async def test_command_through_the_api_arrives_on_the_wire_as_sent(
    station: Station,
    connect: ConnectCharger,
    server: str,
    slug: str,
    payload: dict[str, Any],
    wire: dict[str, Any] | None,
    answer: dict[str, Any],
) -> None:
    action = _action(slug)
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers[action] = answer
    await charger.ok("BootNotification", BOOT)
    api = await api_for(server, station.tenant)

    status, body = await api.post(f"/charge-points/{station.charge_point.pk}/commands/{slug}/", payload)

    assert status == 200, body
    assert [frame[2:] for frame in charger.received_calls] == [[action, wire or payload]]
    assert (body["action"], body["status"], body["response"]) == (action, "accepted", answer)
    command = await db(Command.objects.get)(pk=body["id"])
    assert (command.status, command.response, command.payload) == ("accepted", answer, wire or payload)


async def test_get_diagnostics_without_location_uploads_to_the_platform(
    station: Station, connect: ConnectCharger, server: str
) -> None:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers["GetDiagnostics"] = {"fileName": "diag.zip"}
    await charger.ok("BootNotification", BOOT)
    api = await api_for(server, station.tenant)

    status, body = await api.post(f"/charge-points/{station.charge_point.pk}/commands/get-diagnostics/", {"retries": 1})

    assert status == 200, body
    [(action, sent)] = [(frame[2], frame[3]) for frame in charger.received_calls]
    assert action == "GetDiagnostics"
    assert sent["retries"] == 1
    assert sent["location"].startswith(f"{settings.OCPP_FILES_BASE_URL.rstrip('/')}/ocpp-files/diagnostics/")


LONG_UID = "0f8fad5b-d9cb-469f-a165-70867728950e"  # an app token's uid: longer than OCPP 1.6's 20-character idTag


@pytest.mark.parametrize("slug", ["remote-start-transaction", "reserve-now"])
async def test_a_long_token_uid_goes_to_the_charger_as_its_wire_id(
    station: Station, connect: ConnectCharger, server: str, slug: str
) -> None:
    from apps.customers.models import Token
    from tests.customers.factories import TokenFactory

    token = await db(TokenFactory)(tenant=station.tenant, uid=LONG_UID)
    wire_id = (await db(Token.objects.get)(pk=token.pk)).wire_id
    action = _action(slug)
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers[action] = {"status": "Accepted"}
    await charger.ok("BootNotification", BOOT)
    api = await api_for(server, station.tenant)
    payload: dict[str, Any] = {"connectorId": 1, "idTag": LONG_UID}
    if slug == "reserve-now":
        payload |= {"reservationId": 7, "expiryDate": "2030-01-01T00:00:00Z"}

    status, body = await api.post(f"/charge-points/{station.charge_point.pk}/commands/{slug}/", payload)

    assert status == 200, body
    assert len(wire_id) <= 20
    assert [frame[2:] for frame in charger.received_calls] == [[action, {**payload, "idTag": wire_id}]]


@pytest.mark.parametrize("slug", ["remote-start-transaction", "reserve-now"])
async def test_nothing_starts_or_is_reserved_on_a_decommissioned_charger(
    station: Station, connect: ConnectCharger, server: str, slug: str
) -> None:
    from apps.stations import decommission

    charger = await connect(station.charge_point.identity, station.password)
    await charger.ok("BootNotification", BOOT)
    await db(decommission.charge_point_decommission)(charge_point=station.charge_point)
    api = await api_for(server, station.tenant)
    payload: dict[str, Any] = {"connectorId": 1, "idTag": "TAG-1"}
    if slug == "reserve-now":
        payload |= {"reservationId": 7, "expiryDate": "2030-01-01T00:00:00Z"}

    status, body = await api.post(f"/charge-points/{station.charge_point.pk}/commands/{slug}/", payload)

    assert (status, body["code"]) == (409, "decommissioned"), body
    assert charger.received_calls == []
    assert not await db(Command.objects.filter(charge_point=station.charge_point).exists)()
