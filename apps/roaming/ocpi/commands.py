"""OCPI 2.2.1 commands module, Receiver interface (we are CPO; mod_commands.asciidoc): `POST {commands}/{command}`.

The body is checked against the command's object (StartSession, StopSession, ReserveNow, CancelReservation,
UnlockConnector; bad input is 2001 naming the field, nothing recorded). Its Location, EVSE, session or reservation
is resolved at once: unknown ones are 2003 (location, EVSE) or the CommandResponse UNKNOWN_SESSION; a charger that is
offline or out of service, a token of another eMSP, another eMSP's session are REJECTED. Otherwise the answer is
ACCEPTED with the timeout, and the charger's answer follows as a CommandResult POSTed to `response_url`
(apps.roaming.commands, through Celery).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpResponse

from apps.customers import selectors as customer_selectors
from apps.customers.models import TokenSource
from apps.roaming import commands as command_service
from apps.roaming import tokens as token_store
from apps.roaming.models import CommandType, PartnerReservation, RoamingPartner
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.tokens import parse_token
from apps.roaming.ocpi.transport import (
    INVALID_PARAMETERS,
    UNKNOWN_LOCATION,
    OcpiError,
    OcpiRequest,
    envelope,
    ocpi_view,
)
from apps.sessions.models import ChargingSession
from apps.stations import selectors as station_selectors
from apps.stations.decommission import decommissioned_reason
from apps.stations.models import ChargePoint, Evse, Location

COMMANDS = tuple(CommandType.values)


def command_response(result: str, message: str = "", timeout: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"result": result, "timeout": timeout if timeout is not None else 0}
    if message:
        body["message"] = [{"language": "en", "text": message[:512]}]
    return body


class Refused(Exception):
    """A CommandResponse other than ACCEPTED (the request was understood, the CPO will not send it)."""

    def __init__(self, result: str, message: str) -> None:
        super().__init__(message)
        self.result = result
        self.message = message


# --------------------------------------------------------------------------- lookups


def find_location(partner: RoamingPartner, location_id: str) -> Location:
    """Our Location by its OCPI id (the location's ocpi_id, else its number), or 2003."""
    locations = station_selectors.location_list().filter(tenant_id=partner.tenant_id)
    match = Q(ocpi_id=location_id)
    if location_id.isdigit() and len(location_id) < 12:
        match |= Q(ocpi_id="", pk=int(location_id))
    location = locations.filter(match).first()
    if location is None:
        raise OcpiError(UNKNOWN_LOCATION, f"Unknown location {location_id!r}.")
    return location


def find_evse(location: Location, evse_uid: str) -> Evse:
    """An EVSE of the location by its OCPI uid (our EVSE number, as in our Locations and CDRs) or its EVSE id."""
    evses = station_selectors.evse_list().select_related("charge_point").filter(charge_point__location=location)
    match = Q(evse_uid__iexact=evse_uid)
    if evse_uid.isdigit() and len(evse_uid) < 12:
        match |= Q(pk=int(evse_uid))
    evse = evses.filter(match).first()
    if evse is None:
        raise OcpiError(UNKNOWN_LOCATION, f"Location {location.ocpi_id or location.pk} has no EVSE {evse_uid!r}.")
    return evse


def _usable(charge_point: ChargePoint, connector_id: int | None) -> None:
    reason = decommissioned_reason(charge_point=charge_point, connector_id=connector_id)
    if reason:
        raise Refused("REJECTED", reason)
    if not charge_point.online:
        raise Refused("REJECTED", f"The charge point of this EVSE is offline ({charge_point.identity}).")


def _target(
    partner: RoamingPartner, obj: dict[str, Any], prefix: str, *, evse_required: bool
) -> tuple[ChargePoint, Evse | None]:
    location_id = f.cistring(obj, "location_id", prefix, 36)
    evse_uid = f.cistring(obj, "evse_uid", prefix, 36, required=evse_required)
    assert location_id is not None
    location = find_location(partner, location_id)
    if evse_uid:
        evse = find_evse(location, evse_uid)
        _usable(evse.charge_point, evse.connector_id)
        return evse.charge_point, evse
    charge_points = list(station_selectors.charge_point_list().filter(location=location).order_by("pk")[:2])
    if len(charge_points) != 1:
        raise Refused(
            "REJECTED", f"Location {location_id} has {len(charge_points)} or more charge points: name the EVSE."
        )
    _usable(charge_points[0], None)
    return charge_points[0], None


def _own_token(partner: RoamingPartner, body: Any, prefix: str) -> dict[str, Any]:
    token = parse_token(body, prefix=prefix)
    if (token.country_code, token.party_id) not in token_store.partner_parties(partner):
        raise Refused("REJECTED", f"The token belongs to {token.country_code}*{token.party_id}; use your own tokens.")
    stored = customer_selectors.token_get(tenant=partner.tenant, uid=token.uid)
    if stored is not None and (
        stored.source != TokenSource.ROAMING
        or (stored.country_code.upper(), stored.party_id.upper()) != (token.country_code, token.party_id)
    ):
        raise Refused("REJECTED", f"Token uid {token.uid!r} is another issuer's here; uids are unique per operator.")
    return dict(body)


# --------------------------------------------------------------------------- the view


@ocpi_view(methods=["POST"], module="commands", functional=True)
def command(ocpi: OcpiRequest, command: str) -> HttpResponse:
    if command not in COMMANDS:
        raise OcpiError(INVALID_PARAMETERS, f"command: {command!r} is not one of {', '.join(COMMANDS)}.")
    partner = ocpi.partner
    prefix = command.lower()
    obj = f.as_object(ocpi.json_body(), prefix)
    response_url = f.url(obj, "response_url", prefix)
    assert response_url is not None
    target: dict[str, Any] = {}
    charge_point: ChargePoint | None = None
    session_id: int | None = None
    try:
        if command == CommandType.START_SESSION:
            _own_token(partner, obj.get("token"), f"{prefix}.token")
            f.cistring(obj, "connector_id", prefix, 36, required=False)
            f.cistring(obj, "authorization_reference", prefix, 36, required=False)
            if obj.get("connector_id") is not None and obj.get("evse_uid") is None:
                raise f.invalid(f"{prefix}.evse_uid", "is required when connector_id is set.")
            charge_point, evse = _target(partner, obj, prefix, evse_required=False)
            target["evse"] = evse.pk if evse is not None else None
        elif command == CommandType.STOP_SESSION:
            raw = f.cistring(obj, "session_id", prefix, 36)
            assert raw is not None
            session = (
                ChargingSession.objects.filter(tenant_id=partner.tenant_id, pk=int(raw)).first()
                if raw.isdigit() and len(raw) < 19
                else None
            )
            if session is None:
                raise Refused("UNKNOWN_SESSION", f"Unknown session {raw!r}.")
            parties = {f"{cc}*{pid}" for cc, pid in token_store.partner_parties(partner)}
            if session.roaming_partner not in parties:
                raise Refused("REJECTED", f"Session {raw} is not one of your drivers' sessions.")
            charge_point, session_id = session.charge_point, session.pk
        elif command == CommandType.UNLOCK_CONNECTOR:
            f.cistring(obj, "connector_id", prefix, 36)
            charge_point, evse = _target(partner, obj, prefix, evse_required=True)
            assert evse is not None
            target["evse"] = evse.pk
        elif command == CommandType.RESERVE_NOW:
            _own_token(partner, obj.get("token"), f"{prefix}.token")
            expiry = f.datetime(obj, "expiry_date", prefix)
            f.cistring(obj, "reservation_id", prefix, 36)
            f.cistring(obj, "authorization_reference", prefix, 36, required=False)
            assert expiry is not None
            charge_point, evse = _target(partner, obj, prefix, evse_required=False)
            target.update(evse=evse.pk if evse is not None else None, expires_at=expiry.isoformat())
        else:  # CANCEL_RESERVATION
            their_id = f.cistring(obj, "reservation_id", prefix, 36)
            link = (
                PartnerReservation.objects.select_related("charge_point")
                .filter(partner=partner, their_reservation_id=their_id)
                .order_by("-pk")
                .first()
            )
            if link is None:
                raise Refused("REJECTED", f"You have no reservation {their_id!r} here.")
            charge_point = link.charge_point
            target["partner_reservation"] = link.pk
    except Refused as refused:
        return envelope(ocpi.http, command_response(refused.result, refused.message))
    command_service.command_accept(
        partner=partner,
        command=command,
        request=obj,
        response_url=response_url,
        charge_point=charge_point,
        session_id=session_id,
        target=target,
    )
    return envelope(ocpi.http, command_response("ACCEPTED", timeout=command_service.response_timeout()))
