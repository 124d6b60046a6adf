"""OCPI 2.2.1 chargingprofiles module, Receiver interface (we are CPO; mod_charging_profiles.asciidoc):
`{chargingprofiles}/{session_id}` with PUT (SetChargingProfile), GET (`?duration=&response_url=`: the
ActiveChargingProfile) and DELETE (`?response_url=`).

Answered at once with a ChargingProfileResponse (ACCEPTED with the timeout; UNKNOWN_SESSION; REJECTED for a session
that is not the partner's driver's (an SCSP partner may steer every session of the operator), not running, or on an
offline charger); the charger's answer follows as a ChargingProfileResult / ActiveChargingProfileResult /
ClearProfileResult POSTed to `response_url` (apps.roaming.chargingprofiles, through Celery). Bad input is 2001.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from apps.roaming import chargingprofiles as profile_service
from apps.roaming import commands as command_service
from apps.roaming import tokens as token_store
from apps.roaming.models import RoamingPartner, Role
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.transport import INVALID_PARAMETERS, OcpiError, OcpiRequest, envelope, ocpi_view
from apps.sessions.models import ChargingSession, SessionStatus


def profile_response(result: str, timeout: int = 0) -> dict[str, Any]:
    return {"result": result, "timeout": timeout}


def parse_charging_profile(body: Any, prefix: str) -> dict[str, Any]:
    """An OCPI ChargingProfile, checked (2001 naming the field); returned as sent."""
    obj = f.as_object(body, prefix)
    f.datetime(obj, "start_date_time", prefix, required=False)
    f.integer(obj, "duration", prefix, required=False, minimum=0)
    f.enum(obj, "charging_rate_unit", prefix, ("W", "A"))
    f.number(obj, "min_charging_rate", prefix, required=False, minimum=0)
    periods = obj.get("charging_profile_period")
    if periods is None:
        periods = []
    if not isinstance(periods, list):
        raise f.invalid(f"{prefix}.charging_profile_period", "must be a list of ChargingProfilePeriod.")
    previous = -1
    for n, item in enumerate(periods):
        name = f"{prefix}.charging_profile_period[{n}]"
        period = f.as_object(item, name)
        start = f.integer(period, "start_period", name, minimum=0)
        limit = f.number(period, "limit", name, minimum=0)
        assert start is not None
        assert limit is not None
        if round(float(limit), 1) != float(limit):
            raise f.invalid(f"{name}.limit", f"{limit} has more than one digit after the decimal point.")
        if start <= previous:
            raise f.invalid(f"{name}.start_period", "periods must be in increasing start_period order.")
        if n == 0 and start != 0:
            raise f.invalid(f"{name}.start_period", "the first period starts at 0.")
        previous = start
    if not periods:
        raise f.invalid(f"{prefix}.charging_profile_period", "needs at least one period.")
    return obj


class Refused(Exception):
    def __init__(self, result: str) -> None:
        super().__init__(result)
        self.result = result


def _session(partner: RoamingPartner, raw: str) -> ChargingSession:
    f.segment(raw, "session_id", 36)
    session = (
        ChargingSession.objects.select_related("charge_point").filter(tenant_id=partner.tenant_id, pk=int(raw)).first()
        if raw.isdigit() and len(raw) < 19
        else None
    )
    if session is None:
        raise Refused("UNKNOWN_SESSION")
    parties = {f"{cc}*{pid}" for cc, pid in token_store.partner_parties(partner)}
    if session.roaming_partner not in parties and Role.SCSP not in (partner.roles or []):
        raise Refused("REJECTED")
    if session.status not in (SessionStatus.ACTIVE, SessionStatus.SUSPENDED) or not session.charge_point.online:
        raise Refused("REJECTED")
    return session


def _query(ocpi: OcpiRequest, allowed: set[str]) -> dict[str, str]:
    unknown = sorted(set(ocpi.http.GET) - allowed)
    if unknown:
        raise OcpiError(INVALID_PARAMETERS, f"Unknown query parameter(s): {', '.join(unknown)}.")
    return {k: ocpi.http.GET[k] for k in allowed if k in ocpi.http.GET}


@ocpi_view(methods=["GET", "PUT", "DELETE"], module="chargingprofiles", functional=True)
def charging_profile(ocpi: OcpiRequest, session_id: str) -> HttpResponse:
    partner = ocpi.partner
    method = ocpi.http.method
    target: dict[str, Any] = {}
    if method == "PUT":
        body = f.as_object(ocpi.json_body(), "set_charging_profile")
        parse_charging_profile(body.get("charging_profile"), "set_charging_profile.charging_profile")
        response_url = f.url(body, "response_url", "set_charging_profile")
        request: dict[str, Any] = body
        command = profile_service.SET
    else:
        query = _query(ocpi, {"response_url", "duration"} if method == "GET" else {"response_url"})
        response_url = f.url(query, "response_url", "query")
        request = dict(query)
        if method == "GET":
            raw = query.get("duration")
            if raw is None or not raw.isdigit() or len(raw) > 9:
                raise OcpiError(INVALID_PARAMETERS, f"query.duration: {raw!r} is not a number of seconds.")
            target["duration"] = int(raw)
            command = profile_service.GET
        else:
            command = profile_service.CLEAR
    assert response_url is not None
    try:
        session = _session(partner, session_id)
    except Refused as refused:
        return envelope(ocpi.http, profile_response(refused.result))
    command_service.command_accept(
        partner=partner,
        command=command,
        request=request,
        response_url=response_url,
        charge_point=session.charge_point,
        session_id=session.pk,
        target=target,
        module="chargingprofiles",
    )
    return envelope(ocpi.http, profile_response("ACCEPTED", command_service.response_timeout()))
