"""Commands that cannot be wrong on the wire: a payload wrong for the OCPP 1.6 schema, the specification or the
charger's own facts is refused with a 400 naming the field (API), an error on the form (admin) or InvalidCommand
(domain callers), and nothing is recorded or sent. The charger is connected in every case, so a payload that
got through would reach it."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.energy.services import ProfileOrder, profiles_send
from apps.sessions import commands as session_commands
from apps.sessions.models import ChargingSession
from apps.stations import services
from apps.stations.models import ChargePoint, Command
from apps.tenants.models import Role
from tests.charging.test_limits import _charging
from tests.ocpp.conftest import Charger, ConnectCharger, Station, db
from tests.ocpp.http import api_for, flat
from tests.ocpp.test_core import BOOT
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _profile(
    purpose: str = "TxDefaultProfile", periods: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "chargingProfileId": 5,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": periods or [{"startPeriod": 0, "limit": 16}],
        },
        **extra,
    }


PERIODS = "csChargingProfiles.chargingSchedule.chargingSchedulePeriod"

# slug, payload, the field the 400 names (the station has connectors 1 and 2)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("unlock-connector", {"connectorId": -1}, "connectorId"),
    ("unlock-connector", {"connectorId": 0}, "connectorId"),
    ("unlock-connector", {"connectorId": 3}, "connectorId"),
    ("change-configuration", {"key": "HeartbeatInterval", "value": "-5"}, "value"),
    ("change-configuration", {"key": "HeartbeatInterval", "value": "0"}, "value"),
    ("change-configuration", {"key": "HeartbeatInterval", "value": "five"}, "value"),
    ("change-configuration", {"key": "NumberOfConnectors", "value": "4"}, "key"),
    ("change-configuration", {"key": "LocalAuthorizeOffline", "value": "yes"}, "value"),
    ("change-configuration", {"key": "MeterValuesSampledData", "value": "Voltage,Voltage.Max"}, "value"),
    ("change-configuration", {"key": "AuthorizationKey", "value": "short"}, "value"),
    ("change-configuration", {"key": " ", "value": "1"}, "key"),
    ("change-availability", {"connectorId": 5, "type": "Inoperative"}, "connectorId"),
    ("clear-charging-profile", {"connectorId": -2}, "connectorId"),
    ("get-composite-schedule", {"connectorId": 1, "duration": 0}, "duration"),
    ("get-configuration", {"key": ["HeartbeatInterval", "HeartbeatInterval"]}, "key.1"),
    ("get-configuration", {"key": [""]}, "key.0"),
    ("get-diagnostics", {"location": "not a url"}, "location"),
    ("get-diagnostics", {"retryInterval": 0}, "retryInterval"),
    ("get-diagnostics", {"startTime": "2030-01-02T00:00:00Z", "stopTime": "2030-01-01T00:00:00Z"}, "stopTime"),
    ("remote-start-transaction", {"connectorId": 0, "idTag": "T"}, "connectorId"),
    ("remote-start-transaction", {"idTag": ""}, "idTag"),
    (
        "remote-start-transaction",
        {"idTag": "T", "chargingProfile": _profile()},
        "chargingProfile.chargingProfilePurpose",
    ),
    (
        "reserve-now",
        {"connectorId": 1, "expiryDate": "2020-01-01T00:00:00Z", "idTag": "T", "reservationId": 1},
        "expiryDate",
    ),
    ("send-local-list", {"listVersion": 0, "updateType": "Full"}, "listVersion"),
    (
        "send-local-list",
        {"listVersion": 2, "updateType": "Full", "localAuthorizationList": [{"idTag": "A"}]},
        "localAuthorizationList.0.idTagInfo",
    ),
    (
        "send-local-list",
        {
            "listVersion": 2,
            "updateType": "Differential",
            "localAuthorizationList": [{"idTag": "A"}, {"idTag": "A", "idTagInfo": {"status": "Accepted"}}],
        },
        "localAuthorizationList.1.idTag",
    ),
    ("set-charging-profile", {"connectorId": 0, "csChargingProfiles": _profile("TxProfile")}, "connectorId"),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile("ChargePointMaxProfile")},
        "connectorId",
    ),
    ("set-charging-profile", {"connectorId": 3, "csChargingProfiles": _profile()}, "connectorId"),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(periods=[{"startPeriod": 60, "limit": 16}])},
        f"{PERIODS}.0.startPeriod",
    ),
    (
        "set-charging-profile",
        {
            "connectorId": 1,
            "csChargingProfiles": _profile(periods=[{"startPeriod": 0, "limit": 16}, {"startPeriod": 0, "limit": 8}]),
        },
        f"{PERIODS}.1.startPeriod",
    ),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(periods=[{"startPeriod": 0, "limit": 16.05}])},
        f"{PERIODS}.0.limit",
    ),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(periods=[{"startPeriod": 0, "limit": -1}])},
        f"{PERIODS}.0.limit",
    ),
    (  # make api-fuzz: a limit this large made the schema's multipleOf raise DivisionImpossible (a 500)
        "set-charging-profile",
        {
            "connectorId": 1,
            "csChargingProfiles": _profile(periods=[{"startPeriod": 0, "limit": -1.7976931348623157e308}]),
        },
        f"{PERIODS}.0.limit",
    ),
    (
        "remote-start-transaction",
        {
            "connectorId": 1,
            "idTag": "TAG-1",
            "chargingProfile": _profile("TxProfile", periods=[{"startPeriod": 0, "limit": 1.3861601405819846e-19}]),
        },
        "chargingProfile.chargingSchedule.chargingSchedulePeriod.0.limit",
    ),
    (
        "set-charging-profile",
        {
            "connectorId": 1,
            "csChargingProfiles": _profile(periods=[{"startPeriod": 0, "limit": 16, "numberPhases": 4}]),
        },
        f"{PERIODS}.0.numberPhases",
    ),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(transactionId=4)},
        "csChargingProfiles.transactionId",
    ),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(chargingProfileKind="Recurring")},
        "csChargingProfiles.recurrencyKind",
    ),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(validTo="2020-01-01T00:00:00Z")},
        "csChargingProfiles.validTo",
    ),
    (
        "set-charging-profile",
        {"connectorId": 1, "csChargingProfiles": _profile(unknownThing=1)},
        "csChargingProfiles.unknownThing",
    ),
    ("trigger-message", {"requestedMessage": "StatusNotification", "connectorId": -1}, "connectorId"),
    ("trigger-message", {"requestedMessage": "BootNotification", "connectorId": 1}, "connectorId"),
    (
        "update-firmware",
        {"location": "https://fw.example.com/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z", "retries": -1},
        "retries",
    ),
    ("update-firmware", {"location": "https://fw.example.com/fw.bin", "retrieveDate": "tomorrow"}, "retrieveDate"),
]


async def _online(station: Station, connect: ConnectCharger, **answers: Any) -> Charger:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers.update(answers)
    await charger.ok("BootNotification", BOOT)
    return charger


async def _nothing_recorded_or_sent(charger: Charger) -> None:
    await asyncio.sleep(0.2)  # a command that had gone out would have reached the charger by now
    assert charger.received_calls == []
    assert await db(Command.objects.count)() == 0


@pytest.mark.parametrize(
    ("slug", "payload", "field"), REFUSED, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(REFUSED)]
)
async def test_wrong_command_is_a_400_naming_the_field_and_nothing_is_sent(
    station: Station, connect: ConnectCharger, server: str, slug: str, payload: dict[str, Any], field: str
) -> None:
    charger = await _online(station, connect)
    api = await api_for(server, station.tenant)

    status, body = await api.post(f"/charge-points/{station.charge_point.pk}/commands/{slug}/", payload)

    assert status == 400, body
    assert body["code"] == "validation_error"
    assert field in flat(body["fields"]), body
    assert body["message"].startswith(f"{field.split('.')[0]}")
    await _nothing_recorded_or_sent(charger)


async def test_the_chargers_configuration_read_is_a_fact_commands_must_fit(
    station: Station, connect: ConnectCharger, server: str
) -> None:
    keys = [
        {"key": "HeartbeatInterval", "readonly": False, "value": "60"},
        {"key": "ChargingScheduleMaxPeriods", "readonly": True, "value": "1"},
        {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Current"},
        {"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "3"},
        {"key": "ReserveConnectorZeroSupported", "readonly": True, "value": "false"},
        {"key": "GetConfigurationMaxKeys", "readonly": True, "value": "2"},
        {"key": "SendLocalListMaxLength", "readonly": True, "value": "1"},
        {"key": "Vendor.Locked", "readonly": True, "value": "x"},
        {"key": "Vendor.Tunable", "readonly": False, "value": "x"},
    ]
    charger = await _online(
        station,
        connect,
        GetConfiguration={"configurationKey": keys},
        GetLocalListVersion={"listVersion": 5},
        ChangeConfiguration={"status": "Accepted"},
        SendLocalList={"status": "Accepted"},
    )
    api = await api_for(server, station.tenant)
    base = f"/charge-points/{station.charge_point.pk}/commands"
    assert (await api.post(f"{base}/get-configuration/", {}))[0] == 200
    assert (await api.post(f"{base}/get-local-list-version/", {}))[0] == 200
    sent_before = len(charger.received_calls)
    two_periods = [{"startPeriod": 0, "limit": 16}, {"startPeriod": 60, "limit": 8}]
    in_watts = _profile()
    in_watts["chargingSchedule"]["chargingRateUnit"] = "W"

    refused = {
        "periods": await api.post(
            f"{base}/set-charging-profile/", {"connectorId": 1, "csChargingProfiles": _profile(periods=two_periods)}
        ),
        "unit": await api.post(f"{base}/set-charging-profile/", {"connectorId": 1, "csChargingProfiles": in_watts}),
        "stack": await api.post(
            f"{base}/set-charging-profile/", {"connectorId": 1, "csChargingProfiles": _profile(stackLevel=4)}
        ),
        "schedule unit": await api.post(
            f"{base}/get-composite-schedule/", {"connectorId": 1, "duration": 60, "chargingRateUnit": "W"}
        ),
        "reserve 0": await api.post(
            f"{base}/reserve-now/",
            {"connectorId": 0, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "T", "reservationId": 1},
        ),
        "readonly key": await api.post(f"{base}/change-configuration/", {"key": "Vendor.Locked", "value": "y"}),
        "unknown key": await api.post(f"{base}/change-configuration/", {"key": "Vendor.Typo", "value": "y"}),
        "too many keys": await api.post(f"{base}/get-configuration/", {"key": ["A", "B", "C"]}),
        "list version": await api.post(f"{base}/send-local-list/", {"listVersion": 5, "updateType": "Differential"}),
        "list length": await api.post(
            f"{base}/send-local-list/",
            {
                "listVersion": 6,
                "updateType": "Differential",
                "localAuthorizationList": [{"idTag": "A"}, {"idTag": "B"}],
            },
        ),
    }
    tunable = await api.post(f"{base}/change-configuration/", {"key": "Vendor.Tunable", "value": "y"})
    next_version = await api.post(f"{base}/send-local-list/", {"listVersion": 6, "updateType": "Differential"})

    fields = {name: (status, sorted(flat(body["fields"]))) for name, (status, body) in refused.items()}
    assert fields == {
        "periods": (400, [f"{PERIODS}"]),
        "unit": (400, ["csChargingProfiles.chargingSchedule.chargingRateUnit"]),
        "stack": (400, ["csChargingProfiles.stackLevel"]),
        "schedule unit": (400, ["chargingRateUnit"]),
        "reserve 0": (400, ["connectorId"]),
        "readonly key": (400, ["key"]),
        "unknown key": (400, ["key"]),
        "too many keys": (400, ["key"]),
        "list version": (400, ["listVersion"]),
        "list length": (400, ["localAuthorizationList"]),
    }
    assert refused["periods"][1]["message"] == (
        f"{PERIODS}: 2 periods; charge point CP-TEST-1 takes at most 1 (ChargingScheduleMaxPeriods)."
    )
    assert refused["periods"][1]["fields"] == {
        "csChargingProfiles": {
            "chargingSchedule": {
                "chargingSchedulePeriod": [
                    "2 periods; charge point CP-TEST-1 takes at most 1 (ChargingScheduleMaxPeriods)."
                ]
            }
        }
    }
    assert (tunable[0], tunable[1]["status"]) == (200, "accepted")
    assert (next_version[0], next_version[1]["status"]) == (200, "accepted")
    assert [frame[2] for frame in charger.received_calls[sent_before:]] == ["ChangeConfiguration", "SendLocalList"]
    actions = await db(lambda: list(Command.objects.order_by("pk").values_list("action", flat=True)))()
    assert actions == ["GetConfiguration", "GetLocalListVersion", "ChangeConfiguration", "SendLocalList"]


async def test_a_limit_with_one_decimal_is_sent(station: Station, connect: ConnectCharger) -> None:
    """The 1.6 schema's `multipleOf: 0.1` read with floats refused 7.1 A (7.1 / 0.1 = 70.99999999999999)."""
    charger = await _online(station, connect, SetChargingProfile={"status": "Accepted"})
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    payload = {"connectorId": 1, "csChargingProfiles": _profile(periods=[{"startPeriod": 0, "limit": 7.1}])}

    command = await services.send_command_async(
        charge_point=cp, action="SetChargingProfile", payload=payload, timeout=5
    )

    assert command.status == "accepted"
    assert charger.received_calls[-1][3] == payload


async def test_domain_callers_are_validated_too(station: Station, connect: ConnectCharger) -> None:
    """`send_command` itself refuses: sessions, energy and the platform get InvalidCommand, nothing recorded."""
    charger = await _online(station, connect)
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)

    with pytest.raises(services.InvalidCommand) as refused:
        await services.send_command_async(
            charge_point=cp, action="UnlockConnector", payload={"connectorId": -1}, timeout=5
        )

    assert (refused.value.code, refused.value.status_code) == ("validation_error", 400)
    assert refused.value.fields == {"connectorId": ["Must be a connector id (1 or more)."]}
    await _nothing_recorded_or_sent(charger)


async def test_energy_profile_the_charger_cannot_take_is_recorded_as_an_error_not_sent(
    station: Station, connect: ConnectCharger
) -> None:
    keys = [{"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": True, "value": "Power"}]
    charger = await _online(station, connect, GetConfiguration={"configurationKey": keys})
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    await services.send_command_async(charge_point=cp, action="GetConfiguration", payload={}, timeout=5)
    order = ProfileOrder(
        charge_point_id=cp.pk, connector_id=0, purpose="TxDefaultProfile", profile_id=1, stack_level=0,
        limit=Decimal("16.0"), unit="A",
    )  # fmt: skip

    [state] = await db(profiles_send)(orders=[order], timeout=5)

    assert (state.status, state.rejected, state.command_id) == ("error", True, None)
    assert [frame[2] for frame in charger.received_calls] == ["GetConfiguration"]
    assert await db(Command.objects.count)() == 1


async def test_session_limit_profile_the_charger_cannot_take_stops_the_session_instead(
    station: Station, connect: ConnectCharger
) -> None:
    charger, session = await _charging(station, connect)
    charger.answers["GetConfiguration"] = {
        "configurationKey": [{"key": "ChargeProfileMaxStackLevel", "readonly": True, "value": "5"}]
    }
    charger.answers["RemoteStopTransaction"] = {"status": "Accepted"}
    cp = await db(ChargePoint.objects.get)(pk=station.charge_point.pk)
    await services.send_command_async(charge_point=cp, action="GetConfiguration", payload={}, timeout=5)
    later = session.started_at + dt.timedelta(minutes=31)

    await db(session_commands.session_limit_enforce)(session_id=session.pk, now=later)

    session = await db(ChargingSession.objects.get)(pk=session.pk)
    assert [frame[2] for frame in charger.received_calls] == ["GetConfiguration", "RemoteStopTransaction"]
    assert (session.status, session.limit_outcome) == ("finishing", "stopped")
    actions = await db(lambda: list(Command.objects.order_by("pk").values_list("action", flat=True)))()
    assert actions == ["GetConfiguration", "RemoteStopTransaction"]


def _admin_post(station: Station, action: str, fields: dict[str, Any]) -> Any:
    user = UserFactory()
    MembershipFactory(user=user, tenant=station.tenant, role=Role.OPERATIONS)
    client = Client()
    client.force_login(user)
    url = reverse("admin:ocpp_chargepoint_command", args=[station.charge_point.pk, action])
    return client.post(url, {**fields, "timeout": 5})


async def test_admin_command_form_shows_the_error_and_sends_nothing(station: Station, connect: ConnectCharger) -> None:
    charger = await _online(station, connect)

    unlock = await db(_admin_post)(station, "UnlockConnector", {"connectorId": "-1"})
    heartbeat = await db(_admin_post)(station, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "-5"})

    assert (unlock.status_code, heartbeat.status_code) == (200, 200)  # the form again, not a redirect
    assert unlock.context["form"].errors == {"connectorId": ["Must be a connector id (1 or more)."]}
    assert heartbeat.context["form"].errors == {"value": ["HeartbeatInterval must be greater than 0."]}
    assert b"HeartbeatInterval must be greater than 0." in heartbeat.content
    await _nothing_recorded_or_sent(charger)


async def test_admin_command_form_sends_a_valid_payload(station: Station, connect: ConnectCharger) -> None:
    charger = await _online(station, connect, UnlockConnector={"status": "Unlocked"})

    response = await db(_admin_post)(station, "UnlockConnector", {"connectorId": "2"})

    assert response.status_code == 302
    assert [frame[2:] for frame in charger.received_calls] == [["UnlockConnector", {"connectorId": 2}]]
    assert await db(lambda: list(Command.objects.values_list("status", "source")))() == [("accepted", "admin")]
