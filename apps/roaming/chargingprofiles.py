"""Charging profiles a partner (SCSP, or the session's eMSP) sets on a session (OCPI chargingprofiles module, we are
Receiver; mod_charging_profiles.asciidoc), run in Celery like commands (apps.roaming.commands).

The partner's profile is a cap on the session (`energy.SessionPowerCap`):
- on a charger under smart charging (an `energy` site), the control loop allocates the site with it, so the
  TxProfile the charger gets is min(site allocation, partner's limit): the site's limits still win. The site is
  recomputed at once and the answer to the session's SetChargingProfile is the result (ACCEPTED when the site's
  profile already kept the session below the cap). The loop then follows a time-varying profile at its own pace.
- on a charger without a site, the profile goes to the charger as it is: SetChargingProfile (TxProfile on the
  session's transaction, with the loop's profile id, so one TxProfile per connector).
GET asks the charger for its composite schedule (GetCompositeSchedule); DELETE removes the cap (and clears the
TxProfile where no site re-plans it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.energy import selectors as energy_selectors
from apps.energy import services as energy_services
from apps.roaming.commands import charger_timeout
from apps.roaming.models import RoamingCommand
from apps.roaming.ocpi.transport import ocpi_datetime, parse_ocpi_datetime
from apps.sessions.models import ChargingSession
from apps.stations import services as station_services
from apps.stations.models import Command, CommandStatus

SET, GET, CLEAR = "SET_PROFILE", "GET_PROFILE", "CLEAR_PROFILE"
RESULTS = ("ACCEPTED", "REJECTED", "UNKNOWN")


def _timeout() -> float:
    return charger_timeout()


def _session(row: RoamingCommand) -> ChargingSession:
    assert row.session_id is not None
    return ChargingSession.objects.select_related("charge_point").get(pk=row.session_id)


def ocpp_profile(profile: dict[str, Any], *, session: ChargingSession) -> dict[str, Any]:
    """The OCPP 1.6 SetChargingProfile payload of an (already validated) OCPI ChargingProfile."""
    schedule: dict[str, Any] = {
        "chargingRateUnit": profile["charging_rate_unit"],
        "chargingSchedulePeriod": [
            {"startPeriod": p["start_period"], "limit": round(float(p["limit"]), 1)}
            for p in profile.get("charging_profile_period") or [{"start_period": 0, "limit": 0}]
        ],
    }
    if profile.get("duration") is not None:
        schedule["duration"] = profile["duration"]
    if profile.get("min_charging_rate") is not None:
        schedule["minChargingRate"] = round(float(profile["min_charging_rate"]), 1)
    ocpp: dict[str, Any] = {
        "chargingProfileId": energy_services.TX_PROFILE_ID + session.connector_id,
        "transactionId": session.pk,
        "stackLevel": energy_services.TX_STACK_LEVEL,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": schedule,
    }
    if profile.get("start_date_time"):
        ocpp["chargingProfileKind"] = "Absolute"
        schedule["startSchedule"] = ocpi_datetime(parse_ocpi_datetime(profile["start_date_time"]))
    return {"connectorId": session.connector_id, "csChargingProfiles": ocpp}


def _answer(command: Command) -> str:
    if command.status == CommandStatus.ACCEPTED:
        return "ACCEPTED"
    if (command.response or {}).get("status") == "Unknown":
        return "UNKNOWN"
    return "REJECTED"


def _site_replan(session: ChargingSession) -> str | None:
    """Recompute the session's site now and send what changed; the result for this session (None: no site)."""
    site_id = energy_selectors.site_root_id_for_charge_point(charge_point_id=session.charge_point_id)
    if site_id is None:
        return None
    outcome = energy_services.site_recompute(site_id=site_id, trigger="roaming_profile", send=False)
    states = energy_services.profiles_send(orders=outcome.orders, timeout=_timeout())
    mine = [s for s in states if s.transaction_id == session.pk]
    if not mine:
        return "ACCEPTED"  # the site's profile already kept the session within the cap
    return "ACCEPTED" if mine[-1].status == "accepted" else "REJECTED"


def set_profile(row: RoamingCommand) -> dict[str, Any]:
    session = _session(row)
    profile = row.request["charging_profile"]
    start = profile.get("start_date_time")
    energy_services.session_power_cap_set(
        session_id=session.pk,
        source=f"ocpi:{row.partner.party}",
        unit=profile["charging_rate_unit"],
        periods=[(p["start_period"], p["limit"]) for p in profile.get("charging_profile_period") or []],
        start_at=parse_ocpi_datetime(start) if start else None,
        duration_s=profile.get("duration"),
        profile=profile,
    )
    replanned = _site_replan(session)
    if replanned is not None:
        return {"result": replanned}
    try:
        command = station_services.send_command(
            charge_point=session.charge_point,
            action="SetChargingProfile",
            payload=ocpp_profile(profile, session=session),
            timeout=_timeout(),
            source="roaming",
        )
    except station_services.InvalidCommand:
        return {"result": "REJECTED"}
    _note(row, command)
    return {"result": _answer(command)}


def clear_profile(row: RoamingCommand) -> dict[str, Any]:
    session = _session(row)
    had = energy_services.session_power_cap_clear(session_id=session.pk)
    replanned = _site_replan(session)
    if replanned is not None:
        return {"result": replanned if had else "UNKNOWN"}
    command = station_services.send_command(
        charge_point=session.charge_point,
        action="ClearChargingProfile",
        payload={"id": energy_services.TX_PROFILE_ID + session.connector_id},
        timeout=_timeout(),
        source="roaming",
    )
    _note(row, command)
    return {"result": _answer(command)}


def get_profile(row: RoamingCommand) -> dict[str, Any]:
    session = _session(row)
    duration = int(row.target["duration"])
    command = station_services.send_command(
        charge_point=session.charge_point,
        action="GetCompositeSchedule",
        payload={"connectorId": session.connector_id, "duration": duration},
        timeout=_timeout(),
        source="roaming",
    )
    _note(row, command)
    response = command.response or {}
    schedule = response.get("chargingSchedule")
    if command.status != CommandStatus.ACCEPTED or not isinstance(schedule, dict):
        return {"result": "REJECTED"}
    start = response.get("scheduleStart") or schedule.get("startSchedule")
    charging_profile: dict[str, Any] = {
        "charging_rate_unit": schedule.get("chargingRateUnit", "W"),
        "charging_profile_period": [
            {"start_period": int(p["startPeriod"]), "limit": float(p["limit"])}
            for p in schedule.get("chargingSchedulePeriod") or []
        ],
    }
    if schedule.get("duration") is not None:
        charging_profile["duration"] = int(schedule["duration"])
    if schedule.get("minChargingRate") is not None:
        charging_profile["min_charging_rate"] = float(schedule["minChargingRate"])
    started = parse_ocpi_datetime(start) if isinstance(start, str) else command.completed_at
    assert started is not None
    return {
        "result": "ACCEPTED",
        "profile": {"start_date_time": ocpi_datetime(started), "charging_profile": charging_profile},
    }


def _note(row: RoamingCommand, command: Command) -> None:
    RoamingCommand.objects.filter(pk=row.pk).update(ocpp_command_id=command.pk)


RUNNERS: dict[str, Callable[[RoamingCommand], dict[str, Any]]] = {
    SET: set_profile,
    GET: get_profile,
    CLEAR: clear_profile,
}


def as_profile_result(body: dict[str, Any]) -> dict[str, Any]:
    """A CommandResult-shaped failure (offline, internal error) in the ChargingProfileResultType vocabulary."""
    if body.get("result") in RESULTS:
        return body
    return {"result": "REJECTED"}
