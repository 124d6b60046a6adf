"""The control loop against a simulated charger over a real WebSocket (daphne + the project's ASGI app).

The site recompute task is run directly: that is one control cycle. What the charger receives is asserted
frame by frame.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.analytics.models import Alert, AlertKind
from apps.energy import services, tasks
from apps.energy.models import Allocation, ChargePointProfileState, GridNode, NodeKind
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint
from tests.analytics.factories import AlertRuleFactory
from tests.charging.factories import ChargingSessionFactory
from tests.energy.factories import GridNodeFactory
from tests.ocpp.conftest import ConnectCharger, Station, db, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _tree(station: Station, *, unit: str = "A") -> tuple[GridNode, ChargingSession]:
    """Site (63 A per phase) -> the station's charger; one session on connector 1 (32 A connector)."""
    ChargePoint.objects.filter(pk=station.charge_point.pk).update(charging_rate_unit=unit)
    root = GridNodeFactory(tenant=station.tenant, location=station.charge_point.location, max_current_a=63)
    GridNodeFactory(
        tenant=station.tenant,
        location=station.charge_point.location,
        parent=root,
        kind=NodeKind.CHARGE_POINT,
        charge_point=station.charge_point,
        max_current_a=None,
    )
    session = ChargingSessionFactory(charge_point=station.charge_point, connector_id=1, status=SessionStatus.ACTIVE)
    return root, session


async def _online(station: Station, connect: ConnectCharger, **answers: Any) -> Any:
    charger = await connect(station.charge_point.identity, station.password)
    charger.answers.update(answers)
    await charger.ok("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    await wait_for(db(lambda: ChargePoint.objects.get(pk=station.charge_point.pk).online))
    # the tests' sessions run on this boot: the boot noted the ones created before it as ended (a rebooted charger
    # has no transaction), which would keep them out of smart charging
    await db(lambda: ChargingSession.objects.update(end_evidence="", end_evidence_at=None))()
    return charger


def _profiles(charger: Any) -> list[dict[str, Any]]:
    return [frame[3] for frame in charger.received_calls if frame[2] == "SetChargingProfile"]


def _tx(transaction_id: int, limit: float, unit: str, phases: int = 3) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 800_001,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit, "numberPhases": phases}],
            },
            "transactionId": transaction_id,
        },
    }


def _default(limit: float, unit: str) -> dict[str, Any]:
    return {
        "connectorId": 0,
        "csChargingProfiles": {
            "chargingProfileId": 800_500,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


@pytest.mark.parametrize(
    ("unit", "full", "curtailed", "fallback"),
    [("A", 32.0, 20.0, 6.0), ("W", 22_080.0, 13_800.0, 4_140.0)],  # W = A x 3 phases x 230 V
)
async def test_a_grid_signal_reaches_the_charger_within_one_cycle_in_its_unit(
    station: Station, connect: ConnectCharger, unit: str, full: float, curtailed: float, fallback: float
) -> None:
    # given a site with one charging session on a charger that accepts profiles, after one cycle
    root, session = await db(_tree)(station, unit=unit)
    charger = await _online(station, connect, SetChargingProfile={"status": "Accepted"})
    await db(tasks.site_recompute)(root.pk)
    assert _profiles(charger) == [_tx(session.pk, full, unit), _default(fallback, unit)]

    # when the grid operator curtails the site to 20 A per phase and the next cycle runs
    now = timezone.now()
    await db(services.grid_signal_create)(
        tenant=station.tenant,
        node=root,
        valid_from=now - dt.timedelta(seconds=1),
        valid_until=now + dt.timedelta(hours=1),
        max_current_a=20,
        source="DSO",
    )
    sent = await db(tasks.site_recompute)(root.pk)

    # then exactly one new TxProfile reached the charger, with the curtailed limit in its unit
    assert sent == 1
    assert _profiles(charger)[2:] == [_tx(session.pk, curtailed, unit)]
    state = await db(ChargePointProfileState.objects.get)(
        charge_point_id=station.charge_point.pk, connector_id=1, purpose="TxProfile"
    )
    assert (float(state.limit), state.unit, state.status) == (curtailed, unit, "accepted")


async def test_nothing_is_sent_when_nothing_changed(station: Station, connect: ConnectCharger) -> None:
    # given one cycle already sent the profiles
    root, session = await db(_tree)(station)
    charger = await _online(station, connect, SetChargingProfile={"status": "Accepted"})
    first = await db(tasks.site_recompute)(root.pk)
    frames = len(charger.received_calls)

    # when the next cycle finds the same picture
    second = await db(tasks.site_recompute)(root.pk)

    # then nothing is sent, and the allocation is still recorded (one row per cycle)
    assert (first, second) == (2, 0)
    assert len(charger.received_calls) == frames
    assert await db(Allocation.objects.filter(session_id=session.pk).count)() == 2


@pytest.mark.parametrize("answer", [{"status": "Rejected"}, NotImplementedError("no smart charging")])
async def test_a_charger_that_rejects_profiles_is_excluded_reserved_and_alerted(
    station: Station, connect: ConnectCharger, answer: Any
) -> None:
    # given an enabled alert rule and a charger that refuses profiles (Rejected or a CallError)
    root, session = await db(_tree)(station)
    await db(AlertRuleFactory)(tenant=station.tenant, kind=AlertKind.PROFILE_REJECTED)
    charger = await _online(station, connect, SetChargingProfile=answer)

    # when a cycle sends it a TxProfile
    await db(tasks.site_recompute)(root.pk)

    # then it is marked, alerted once, and the next cycle reserves it instead of commanding it
    node = await db(GridNode.objects.get)(charge_point_id=station.charge_point.pk)
    assert node.rejects_profiles is True
    alerts = await db(lambda: list(Alert.objects.values_list("kind", "subject", "charge_point_id")))()
    cp_id = station.charge_point.pk
    assert alerts == [("profile_rejected", f"cp:{cp_id}/SetChargingProfile", cp_id)]
    frames = len(charger.received_calls)
    assert frames == 1  # the TxProfile; no fallback is sent to an excluded charger

    sent = await db(tasks.site_recompute)(root.pk)

    assert sent == 0
    assert len(charger.received_calls) == frames
    last = await db(lambda: Allocation.objects.filter(session_id=session.pk).order_by("-pk").first())()
    assert last is not None
    assert (last.controlled, last.reason) == (False, "profiles_rejected")
    assert last.explanation.startswith(f"charger n{node.pk} rejects charging profiles")
