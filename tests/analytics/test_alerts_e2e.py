"""Simulated chargers, speaking real OCPP 1.6-J to the project's ASGI app, are driven into each alert condition
and out again: each alert opens once (further sightings only count), notifies once by e-mail and once by a
signed webhook to a local HTTP server, and resolves (notifying once more)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core import mail
from django.utils import timezone

from apps.analytics import rules
from apps.analytics.models import Alert, AlertKind, AlertRule, AlertStatus, WebhookSubscription
from apps.analytics.notifications import verify
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Connector
from tests.analytics.conftest import Receiver
from tests.customers.factories import TokenFactory
from tests.ocpp.conftest import Charger, open_charger, wait_for
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Rig:
    charge_point: ChargePoint
    password: str
    subscription: WebhookSubscription
    receiver: Receiver
    server: str
    charger: Charger | None = None

    async def connect(self) -> Charger:
        self.charger = await open_charger(self.server, self.charge_point.identity, self.password)
        await self.charger.ok("BootNotification", {"chargePointVendor": "SimCo", "chargePointModel": "Sim-22"})
        return self.charger


def _make_rig(kind: str, threshold: int, server: str, receiver: Receiver) -> Rig:
    tenant = TenantFactory(slug=f"alerts-{kind.replace('_', '-')}", name="Alert Tenant")
    location = LocationFactory(tenant=tenant)
    charge_point, password = station_services.charge_point_register(
        tenant=tenant, identity=f"SIM-{kind[:20]}", location=location, heartbeat_interval=60
    )
    assert password is not None
    ConnectorFactory(
        evse=EvseFactory(charge_point=charge_point, connector_id=1, evse_uid="DE*SIM*E1*1"),
        power_type=Connector.PowerType.AC_3_PHASE,
        max_electric_power=11000,
    )
    TokenFactory(tenant=tenant, uid="SIMTAG-1")  # a valid token: its sessions run (active)
    AlertRule.objects.create(tenant=tenant, kind=kind, threshold_minutes=threshold, notify_emails=["ops@alpha.example"])
    subscription = WebhookSubscription.objects.create(
        tenant=tenant, name="Fleet", url=receiver.url, event_types=["alert.opened", "alert.resolved"]
    )
    return Rig(charge_point, password, subscription, receiver, server)


@pytest.fixture
async def make_rig(ocpp_server: str, receiver: Receiver) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    rigs: list[Rig] = []

    async def make(kind: str, threshold: int = 0) -> Rig:
        rig = await sync_to_async(_make_rig)(kind, threshold, ocpp_server, receiver)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        if rig.charger is not None:
            await rig.charger.close()


@sync_to_async
def alerts_of(kind: str) -> list[tuple[str, str, int]]:
    return list(Alert.objects.filter(kind=kind).order_by("id").values_list("subject", "status", "occurrences"))


async def until_alerts(kind: str, expected: list[tuple[str, str, int]]) -> None:
    async def check() -> bool:
        return await alerts_of(kind) == expected

    await wait_for(check)


def assert_notified(rig: Rig, *, opened: int, resolved: int) -> None:
    """E-mails and webhooks so far: exactly `opened` openings and `resolved` resolutions, each signed."""
    subjects = [m.subject for m in mail.outbox]
    assert sum("OPENED" in s for s in subjects) == opened, subjects
    assert sum("RESOLVED" in s for s in subjects) == resolved, subjects
    assert all(m.to == ["ops@alpha.example"] for m in mail.outbox)
    hooks = rig.receiver.received
    assert [h.headers["EVP-Event-Type"] for h in hooks] == ["alert.opened"] * opened + ["alert.resolved"] * resolved
    for hook in hooks:
        assert verify(rig.subscription.secret, hook.headers["EVP-Signature"], hook.body)
        assert hook.headers["EVP-Event-Id"] == hook.document["id"]
    assert len({h.headers["EVP-Event-Id"] for h in hooks}) == len(hooks)


async def until_notified(rig: Rig, *, opened: int, resolved: int) -> None:
    async def check() -> bool:
        return len(mail.outbox) == opened + resolved and len(rig.receiver.received) == opened + resolved

    await wait_for(check)
    assert_notified(rig, opened=opened, resolved=resolved)


async def status(charger: Charger, state: str, error: str = "NoError") -> None:
    await charger.ok(
        "StatusNotification",
        {"connectorId": 1, "errorCode": error, "status": state, "timestamp": iso(timezone.now())},
    )


async def start_tx(charger: Charger, meter: int = 1000, at: dt.datetime | None = None) -> int:
    answer = await charger.ok(
        "StartTransaction",
        {"connectorId": 1, "idTag": "SIMTAG-1", "meterStart": meter, "timestamp": iso(at or timezone.now())},
    )
    return int(answer["transactionId"])


async def meter(charger: Charger, tx: int | None, energy_wh: int, power_w: int | None = None) -> None:
    sampled: list[dict[str, Any]] = [
        {"value": str(energy_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    ]
    if power_w is not None:
        sampled.append({"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"})
    payload: dict[str, Any] = {
        "connectorId": 1,
        "meterValue": [{"timestamp": iso(timezone.now()), "sampledValue": sampled}],
    }
    if tx is not None:
        payload["transactionId"] = tx
    await charger.ok("MeterValues", payload)


evaluate = sync_to_async(rules.alerts_evaluate)


# --------------------------------------------------------------------------- one test per condition


async def test_connector_faulted(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.CONNECTOR_FAULTED)
    charger = await rig.connect()
    subject = f"cp:{rig.charge_point.pk}/1"

    await status(charger, "Faulted", "GroundFailure")
    await status(charger, "Faulted", "GroundFailure")
    await until_alerts(AlertKind.CONNECTOR_FAULTED, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)
    alert = await sync_to_async(Alert.objects.get)(kind=AlertKind.CONNECTOR_FAULTED)
    assert alert.message == "Connector 1 faulted: GroundFailure"
    assert alert.details["error_code"] == "GroundFailure"

    await status(charger, "Available")
    await until_alerts(AlertKind.CONNECTOR_FAULTED, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


async def test_charger_offline_for_n_minutes(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.CHARGER_OFFLINE, threshold=5)
    charger = await rig.connect()
    subject = f"cp:{rig.charge_point.pk}"
    await charger.close()

    async def offline() -> bool:
        return not await sync_to_async(ChargePoint.objects.filter(pk=rig.charge_point.pk, online=True).exists)()

    await wait_for(offline)
    await evaluate(now=timezone.now() + dt.timedelta(minutes=4))  # not yet N minutes
    assert await alerts_of(AlertKind.CHARGER_OFFLINE) == []
    await evaluate(now=timezone.now() + dt.timedelta(minutes=6))
    await evaluate(now=timezone.now() + dt.timedelta(minutes=7))
    await until_alerts(AlertKind.CHARGER_OFFLINE, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)

    await rig.connect()  # back online: the connection event resolves it
    await until_alerts(AlertKind.CHARGER_OFFLINE, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


async def test_power_above_connector_rating(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.POWER_ABOVE_RATING)
    charger = await rig.connect()
    subject = f"cp:{rig.charge_point.pk}/1"
    tx = await start_tx(charger)

    await meter(charger, tx, 1500, power_w=10_000)  # within the 11 kW rating
    await meter(charger, tx, 2500, power_w=22_000)
    await meter(charger, tx, 3500, power_w=22_500)
    await until_alerts(AlertKind.POWER_ABOVE_RATING, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)

    await meter(charger, tx, 4000, power_w=7_000)
    await until_alerts(AlertKind.POWER_ABOVE_RATING, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


async def test_energy_without_a_session(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.ENERGY_WITHOUT_SESSION, threshold=15)
    charger = await rig.connect()
    subject = f"cp:{rig.charge_point.pk}/1"

    await meter(charger, None, 5000)
    await meter(charger, None, 5200)
    await evaluate(now=timezone.now() + dt.timedelta(seconds=2))
    await evaluate(now=timezone.now() + dt.timedelta(seconds=3))
    await until_alerts(AlertKind.ENERGY_WITHOUT_SESSION, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)

    await evaluate(now=timezone.now() + dt.timedelta(minutes=20))  # no more unexplained energy in the window
    await until_alerts(AlertKind.ENERGY_WITHOUT_SESSION, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


async def test_session_longer_than_x(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.SESSION_TOO_LONG, threshold=180)
    charger = await rig.connect()
    tx = await start_tx(charger)
    subject = f"session:{tx}"

    await evaluate(now=timezone.now() + dt.timedelta(minutes=170))
    assert await alerts_of(AlertKind.SESSION_TOO_LONG) == []
    await evaluate(now=timezone.now() + dt.timedelta(minutes=181))
    await evaluate(now=timezone.now() + dt.timedelta(minutes=182))
    await until_alerts(AlertKind.SESSION_TOO_LONG, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)

    await charger.ok(
        "StopTransaction", {"transactionId": tx, "meterStop": 9000, "timestamp": iso(timezone.now()), "reason": "Local"}
    )
    await until_alerts(AlertKind.SESSION_TOO_LONG, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


async def test_no_energy_after_y_minutes(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.NO_ENERGY, threshold=10)
    charger = await rig.connect()
    tx = await start_tx(charger, meter=1000)
    subject = f"session:{tx}"

    await meter(charger, tx, 1000)  # still nothing
    await evaluate(now=timezone.now() + dt.timedelta(minutes=11))
    await evaluate(now=timezone.now() + dt.timedelta(minutes=12))
    await until_alerts(AlertKind.NO_ENERGY, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)

    await meter(charger, tx, 1400)
    await until_alerts(AlertKind.NO_ENERGY, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


async def test_failed_and_timed_out_commands(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.COMMAND_FAILED)
    charger = await rig.connect()
    subject = f"cp:{rig.charge_point.pk}/Reset"
    charge_point = await sync_to_async(ChargePoint.objects.get)(pk=rig.charge_point.pk)

    async def reset(timeout: float = 5) -> str:
        command = await station_services.send_command_async(
            charge_point=charge_point, action="Reset", payload={"type": "Soft"}, timeout=timeout
        )
        return command.status

    charger.answers["Reset"] = {"status": "Rejected"}
    assert await reset() == "rejected"
    charger.answers["Reset"] = None  # the charger never answers
    assert await reset(timeout=1) == "timeout"
    await until_alerts(AlertKind.COMMAND_FAILED, [(subject, AlertStatus.OPEN, 2)])
    await until_notified(rig, opened=1, resolved=0)
    alert = await sync_to_async(Alert.objects.get)(kind=AlertKind.COMMAND_FAILED)
    assert alert.message == "Reset rejected"

    charger.answers["Reset"] = {"status": "Accepted"}
    assert await reset() == "accepted"
    await until_alerts(AlertKind.COMMAND_FAILED, [(subject, AlertStatus.RESOLVED, 2)])
    await until_notified(rig, opened=1, resolved=1)


PROFILE = {
    "connectorId": 1,
    "csChargingProfiles": {
        "chargingProfileId": 7,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]},
    },
}


async def test_smart_charging_profile_rejected(make_rig: Callable[..., Awaitable[Rig]]) -> None:
    rig = await make_rig(AlertKind.PROFILE_REJECTED)
    charger = await rig.connect()
    subject = f"cp:{rig.charge_point.pk}/SetChargingProfile"
    charge_point = await sync_to_async(ChargePoint.objects.get)(pk=rig.charge_point.pk)

    async def set_profile() -> str:
        command = await station_services.send_command_async(
            charge_point=charge_point, action="SetChargingProfile", payload=PROFILE, timeout=5
        )
        return command.status

    charger.answers["SetChargingProfile"] = {"status": "Rejected"}
    assert await set_profile() == "rejected"
    await until_alerts(AlertKind.PROFILE_REJECTED, [(subject, AlertStatus.OPEN, 1)])
    await until_notified(rig, opened=1, resolved=0)

    charger.answers["SetChargingProfile"] = {"status": "Accepted"}
    assert await set_profile() == "accepted"
    await until_alerts(AlertKind.PROFILE_REJECTED, [(subject, AlertStatus.RESOLVED, 1)])
    await until_notified(rig, opened=1, resolved=1)
