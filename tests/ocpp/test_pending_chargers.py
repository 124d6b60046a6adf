"""Pending chargers (auto-registration): accepting one tells it at once and gives it its own password.

A raw OCPP-J charger over a real WebSocket registers itself (OCPP_AUTO_REGISTER_TENANT) without a password, boots
into Pending and is refused everything but BootNotification/Heartbeat. When an operator accepts it (API or admin),
a connected charger is sent ChangeConfiguration AuthorizationKey (stored, hashed, only once it answered Accepted)
and TriggerMessage BootNotification, and boots into Accepted at once; an offline one gets the same at its next
connection; from then on its password is required."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets
from django.test import Client
from django.urls import reverse

from apps.stations import services
from apps.stations.hashers import check_secret
from apps.stations.models import ChargePoint, Command
from apps.tenants.models import Role
from tests.ocpp.conftest import Charger, ConnectCharger, Station, db, wait_for
from tests.ocpp.http import api_for
from tests.ocpp.test_core import BOOT
from tests.tenants.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

IDENTITY = "NEW-BOX-1"
START = {"connectorId": 1, "idTag": "ANY-TAG", "meterStart": 0, "timestamp": "2026-03-01T12:00:00Z"}
TRIGGER = ("TriggerMessage", {"requestedMessage": "BootNotification"})


async def _pending(connect: ConnectCharger, station: Station, settings: Any) -> Charger:
    settings.OCPP_AUTO_REGISTER_TENANT = station.tenant.slug
    charger = await connect(IDENTITY, None)
    boot = await charger.ok("BootNotification", BOOT)
    refused = await charger.call("StartTransaction", START)
    assert (boot["status"], refused[0], refused[2]) == ("Pending", 4, "SecurityError")
    return charger


def _boots_when_triggered(charger: Charger) -> list[asyncio.Task[dict[str, Any]]]:
    """A charger that does what TriggerMessage BootNotification asks: it sends a BootNotification."""
    boots: list[asyncio.Task[dict[str, Any]]] = []

    def trigger(payload: dict[str, Any]) -> dict[str, str]:
        if payload.get("requestedMessage") == "BootNotification":
            boots.append(asyncio.get_running_loop().create_task(charger.ok("BootNotification", BOOT)))
        return {"status": "Accepted"}

    charger.answers["TriggerMessage"] = trigger
    return boots


def _calls(charger: Charger) -> list[tuple[str, dict[str, Any]]]:
    return [(frame[2], frame[3]) for frame in charger.received_calls]


def _key_sent(charger: Charger) -> str:
    [key] = [payload["value"] for action, payload in _calls(charger) if action == "ChangeConfiguration"]
    return str(key)


async def _cp() -> ChargePoint:
    return await db(ChargePoint.objects.get)(identity=IDENTITY)


async def _commands() -> list[tuple[str, dict[str, Any], str, str]]:
    rows = Command.objects.order_by("pk").values_list("action", "payload", "status", "source")
    return await db(lambda: list(rows))()


async def _password_is_required(connect: ConnectCharger, key: str) -> None:
    for wrong in (None, "not-its-password-at-all"):
        with pytest.raises(websockets.InvalidStatus):
            await connect(IDENTITY, wrong)
    again = await connect(IDENTITY, key)
    assert (await again.ok("BootNotification", BOOT))["status"] == "Accepted"


@pytest.mark.parametrize("how", ["accept", "patch"])
async def test_accepting_a_connected_pending_charger_gives_it_a_password_and_accepts_it_at_once(
    station: Station, connect: ConnectCharger, server: str, settings: Any, how: str
) -> None:
    charger = await _pending(connect, station, settings)
    charger.answers["ChangeConfiguration"] = {"status": "Accepted"}
    boots = _boots_when_triggered(charger)
    cp = await _cp()
    api = await api_for(server, station.tenant)

    if how == "accept":
        status, body = await api.post(f"/charge-points/{cp.pk}/accept/", {})
    else:
        status, body = await api.patch(f"/charge-points/{cp.pk}/", {"registration_status": "Accepted"})
    await wait_for(lambda: _async_true(bool(boots)))
    reboot = await boots[0]
    started = await charger.call("StartTransaction", START)

    assert status == 200, body
    assert (body["registration_status"], body["password_pending"]) == ("Accepted", False)
    key = _key_sent(charger)
    assert _calls(charger) == [("ChangeConfiguration", {"key": "AuthorizationKey", "value": key}), TRIGGER]
    assert (reboot["status"], started[0]) == ("Accepted", 3)
    cp = await _cp()
    assert (cp.registration_status, cp.password_pending) == ("Accepted", False)
    assert check_secret(key, cp.password_hash)
    assert await _commands() == [
        ("ChangeConfiguration", {"key": "AuthorizationKey", "value": "********"}, "accepted", "provision"),
        ("TriggerMessage", {"requestedMessage": "BootNotification"}, "accepted", "provision"),
    ]
    await charger.close()
    await _password_is_required(connect, key)


async def _async_true(value: bool) -> bool:
    return value


async def test_a_charger_accepted_while_offline_gets_its_password_at_its_next_connection(
    station: Station, connect: ConnectCharger, server: str, settings: Any
) -> None:
    first = await _pending(connect, station, settings)
    await first.close()
    await wait_for(db(lambda: not ChargePoint.objects.get(identity=IDENTITY).online))
    cp = await _cp()
    api = await api_for(server, station.tenant)

    status, body = await api.post(f"/charge-points/{cp.pk}/accept/", {})
    pending_commands = await _commands()
    charger = await connect(IDENTITY, None)  # it has no password yet
    charger.answers["ChangeConfiguration"] = {"status": "Accepted"}
    _boots_when_triggered(charger)
    boot = await charger.ok("BootNotification", BOOT)
    await wait_for(db(lambda: not ChargePoint.objects.get(identity=IDENTITY).password_pending))
    await wait_for(lambda: _async_true(len(charger.received_calls) == 2))

    assert (status, body["registration_status"], body["password_pending"]) == (200, "Accepted", True)
    assert pending_commands == []  # offline: nothing sent, nothing recorded
    assert boot["status"] == "Accepted"
    key = _key_sent(charger)
    assert _calls(charger) == [("ChangeConfiguration", {"key": "AuthorizationKey", "value": key}), TRIGGER]
    assert check_secret(key, (await _cp()).password_hash)
    await charger.close()
    await _password_is_required(connect, key)


async def test_a_charger_that_refuses_its_password_stays_pending_one_and_is_asked_again(
    station: Station, connect: ConnectCharger, server: str, settings: Any
) -> None:
    charger = await _pending(connect, station, settings)
    charger.answers["ChangeConfiguration"] = {"status": "Rejected"}
    boots = _boots_when_triggered(charger)
    cp = await _cp()
    api = await api_for(server, station.tenant)

    status, body = await api.post(f"/charge-points/{cp.pk}/accept/", {})
    await wait_for(lambda: _async_true(bool(boots)))
    reboot = await boots[0]
    refused_key = _key_sent(charger)
    cp = await _cp()

    assert (status, body["registration_status"], body["password_pending"]) == (200, "Accepted", True)
    assert reboot["status"] == "Accepted"  # accepted all the same; only its password is still to come
    assert (cp.password_hash, cp.password_pending) == ("", True)

    # the beat job asks again (the charger was told already: no second TriggerMessage)
    charger.answers["ChangeConfiguration"] = {"status": "Accepted"}
    provisioned = await db(services.charge_points_provision)(timeout=5)

    calls = _calls(charger)
    key = calls[-1][1]["value"]
    assert provisioned == 1
    assert [action for action, _ in calls] == ["ChangeConfiguration", "TriggerMessage", "ChangeConfiguration"]
    assert key != refused_key
    cp = await _cp()
    assert cp.password_pending is False
    assert check_secret(key, cp.password_hash)
    assert not check_secret(refused_key, cp.password_hash)
    statuses = [(action, status) for action, _, status, _ in await _commands()]
    assert statuses == [
        ("ChangeConfiguration", "rejected"),
        ("TriggerMessage", "accepted"),
        ("ChangeConfiguration", "accepted"),
    ]


def _admin_accept(pk: int, tenant: Any) -> Any:
    user = UserFactory()
    MembershipFactory(user=user, tenant=tenant, role=Role.OPERATIONS)
    client = Client()
    client.force_login(user)
    url = reverse("admin:stations_chargepoint_changelist")
    return client.post(url, {"action": "accept", "_selected_action": [pk]}, follow=True)


async def test_admin_accept_action_accepts_and_marks_the_password_pending(
    station: Station, connect: ConnectCharger, settings: Any
) -> None:
    charger = await _pending(connect, station, settings)
    await charger.close()
    await wait_for(db(lambda: not ChargePoint.objects.get(identity=IDENTITY).online))
    cp = await _cp()

    response = await db(_admin_accept)(cp.pk, station.tenant)

    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == [
        f"{IDENTITY} accepted: it is told at its next connection."
    ]
    cp = await _cp()
    assert (cp.registration_status, cp.password_pending, cp.password_hash) == ("Accepted", True, "")
