"""The chargingprofiles module, Receiver interface (mod_charging_profiles.asciidoc), over real HTTP and OCPP: the
partner simulator as the SCSP/eMSP, a simulated charger with a running session of the partner's driver, a real
Celery worker for the results. On a charger without smart charging the profile goes to the charger as it is; under
a site of the smart-charging loop the effective limit is the minimum of the site's and the partner's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.energy.models import GridNode, NodeKind, SessionPowerCap
from apps.roaming.models import RoamingCommand, RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import Command
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.factories import registered

pytestmark = pytest.mark.slow

UID = "SCSPCARD1"


@pytest.fixture
def partner(ocpi_base: str, sim: PartnerSimulator, site: Site) -> RoamingPartner:
    return registered(ocpi_base, sim, site.tenant)


@pytest.fixture
def running(
    partner: RoamingPartner, sim: PartnerSimulator, site: Site, charger: Callable[..., ChargerThread]
) -> ChargingSession:
    """A session of the partner's driver, charging on the simulated charger."""
    assert sim.push_token(sim.token_object(UID, whitelist="ALWAYS"))["status_code"] == 1000
    charger(connectors=1, id_tags=[UID], idle_seconds=(0.2, 0.3), session_seconds=(300.0, 300.0))
    session: ChargingSession = wait_until(
        lambda: ChargingSession.objects.filter(id_tag=UID, status=SessionStatus.ACTIVE).first(), what="a session"
    )
    assert session.roaming_partner == "NL*SIM"
    return session


def profile(limit: float, unit: str = "A", **fields: Any) -> dict[str, Any]:
    return {
        "charging_profile": {
            "charging_rate_unit": unit,
            "charging_profile_period": [{"start_period": 0, "limit": limit}],
            **fields,
        }
    }


def tx_profiles(session: ChargingSession) -> list[dict[str, Any]]:
    return [
        c.payload["csChargingProfiles"]
        for c in Command.objects.filter(action="SetChargingProfile").order_by("pk")
        if c.payload["csChargingProfiles"].get("transactionId") == session.pk
    ]


def test_put_get_delete_on_a_charger_without_smart_charging(
    running: ChargingSession, sim: PartnerSimulator, celery_worker: str
) -> None:
    answer, url = sim.charging_profile("PUT", str(running.pk), profile(11.0, duration=3600, min_charging_rate=6.0))

    assert (answer["status_code"], answer["data"]["result"]) == (1000, "ACCEPTED"), answer
    assert answer["data"]["timeout"] >= 30
    assert sim.wait_result(url) == {"result": "ACCEPTED"}, list(
        Command.objects.values("action", "status", "error", "response")
    )
    sent = tx_profiles(running)[-1]
    assert sent["chargingProfilePurpose"] == "TxProfile"
    assert sent["chargingProfileKind"] == "Relative"
    assert sent["chargingSchedule"] == {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11.0}],
        "duration": 3600,
        "minChargingRate": 6.0,
    }
    assert SessionPowerCap.objects.get(session=running).periods == [[0, 11.0]]

    got, got_url = sim.charging_profile("GET", str(running.pk), duration=900)

    assert got["data"]["result"] == "ACCEPTED"
    active = sim.wait_result(got_url)
    assert active["result"] == "ACCEPTED"
    assert active["profile"]["charging_profile"]["charging_rate_unit"] == "W"
    assert active["profile"]["charging_profile"]["duration"] == 900
    assert active["profile"]["charging_profile"]["charging_profile_period"] == [
        {"start_period": 0, "limit": 11.0 * 230 * 3}  # the simulator's composite schedule: our 11 A in W
    ]
    assert active["profile"]["start_date_time"].endswith("Z")

    cleared, cleared_url = sim.charging_profile("DELETE", str(running.pk))

    assert cleared["data"]["result"] == "ACCEPTED"
    assert sim.wait_result(cleared_url) == {"result": "ACCEPTED"}
    assert not SessionPowerCap.objects.filter(session=running).exists()
    assert Command.objects.filter(action="ClearChargingProfile", status="accepted").exists()


@pytest.mark.parametrize(("partner_limit", "effective"), [(10.0, 10.0), (25.0, 16.0)])
def test_under_smart_charging_the_lower_of_site_and_partner_wins(
    running: ChargingSession,
    sim: PartnerSimulator,
    site: Site,
    celery_worker: str,
    partner_limit: float,
    effective: float,
) -> None:
    root = GridNode.objects.create(
        tenant=site.tenant, location=site.location, name="site", kind=NodeKind.SITE, max_current_a=16
    )
    GridNode.objects.create(
        tenant=site.tenant,
        location=site.location,
        parent=root,
        name="charger",
        kind=NodeKind.CHARGE_POINT,
        charge_point=site.charge_point,
        max_current_a=32,
    )

    answer, url = sim.charging_profile("PUT", str(running.pk), profile(partner_limit))

    assert answer["data"]["result"] == "ACCEPTED"
    assert sim.wait_result(url) == {"result": "ACCEPTED"}
    sent = tx_profiles(running)[-1]
    assert sent["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == effective
    assert sent["chargingSchedule"]["chargingRateUnit"] == "A"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"charging_rate_unit": "kW"}, "charging_rate_unit: 'kW' is not one of W, A"),
        ({"charging_profile_period": [{"start_period": 0, "limit": 8.25}]}, "more than one digit after"),
        ({"charging_profile_period": [{"start_period": 60, "limit": 8}]}, "the first period starts at 0"),
        (
            {"charging_profile_period": [{"start_period": 0, "limit": 8}, {"start_period": 0, "limit": 6}]},
            "increasing start_period order",
        ),
        ({"charging_profile_period": [{"start_period": 0, "limit": -1}]}, "limit: must be at least 0"),
        ({"charging_profile_period": [{"start_period": "0", "limit": 6}]}, "start_period: must be an integer"),
        ({"duration": 1.5}, "duration: must be an integer"),
        ({"start_date_time": "now"}, "start_date_time: 'now' is not an RFC 3339 DateTime"),
    ],
)
def test_bad_profiles_are_2001_and_record_nothing(
    running: ChargingSession, sim: PartnerSimulator, change: dict[str, Any], message: str
) -> None:
    body = profile(10.0)
    body["charging_profile"].update(change)

    answer, _ = sim.charging_profile("PUT", str(running.pk), body)

    assert answer["status_code"] == 2001, answer
    assert message in answer["status_message"]
    assert not RoamingCommand.objects.exists()
    assert not SessionPowerCap.objects.exists()


def test_unknown_and_foreign_sessions(partner: RoamingPartner, sim: PartnerSimulator, site: Site) -> None:
    unknown, _ = sim.charging_profile("PUT", "999999", profile(10.0))
    no_duration, _ = sim.charging_profile("GET", "999999")

    assert unknown["data"] == {"result": "UNKNOWN_SESSION", "timeout": 0}
    assert no_duration["status_code"] == 2001
    assert "query.duration" in no_duration["status_message"]
    assert not RoamingCommand.objects.exists()
