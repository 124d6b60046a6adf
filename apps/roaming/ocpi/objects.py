"""Our domain rows as OCPI 2.2.1 objects (mod_locations.asciidoc, mod_cdrs.asciidoc, mod_tariffs.asciidoc), field by
field as the spec's tables say: string lengths cut to the spec's maximum, enums mapped, optional fields left out
when we have nothing to say (never `null` for a `?` field), DateTime as '2019-06-21T10:15:30Z', coordinates as
decimal-degree strings with 6 decimals, `country` as ISO 3166-1 alpha-3.

The CPO party of every object is the tenant's party towards the partner (`our_country_code`/`our_party_id`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pycountry

from apps.roaming.models import RoamingPartner
from apps.roaming.ocpi.transport import ocpi_datetime, parse_ocpi_datetime
from apps.sessions.models import Cdr, ChargingSession, SessionStatus
from apps.stations.models import ChargePoint, ChargePointStatus, Connector, Evse, Location

# OCPP 1.6 ChargePointStatus -> OCPI 2.2.1 Status (mod_locations_status_enum). An occupied connector (a plug in,
# a session running, suspended or finishing) is CHARGING: "The EVSE/Connector is in use".
EVSE_STATUS: dict[str, str] = {
    ChargePointStatus.AVAILABLE: "AVAILABLE",
    ChargePointStatus.PREPARING: "CHARGING",
    ChargePointStatus.CHARGING: "CHARGING",
    ChargePointStatus.SUSPENDED_EVSE: "CHARGING",
    ChargePointStatus.SUSPENDED_EV: "CHARGING",
    ChargePointStatus.FINISHING: "CHARGING",
    ChargePointStatus.RESERVED: "RESERVED",
    ChargePointStatus.UNAVAILABLE: "INOPERATIVE",
    ChargePointStatus.FAULTED: "OUTOFORDER",
    ChargePointStatus.UNKNOWN: "UNKNOWN",
}


def alpha3(alpha2: str) -> str:
    """ISO 3166-1 alpha-2 -> alpha-3 ('DE' -> 'DEU'); our country fields are validated alpha-2 codes."""
    country = pycountry.countries.get(alpha_2=alpha2.upper())
    if country is None:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {alpha2!r}")
    return str(country.alpha_3)


def _cut(value: str, length: int) -> str:
    return value.strip()[:length]


def _coordinate(value: Decimal) -> str:
    """Decimal degrees with 6 decimals: matches `-?[0-9]{1,2}\\.[0-9]{5,7}` (latitude) and the longitude form."""
    return format(Decimal(value).quantize(Decimal("0.000001")), "f")


def _latest(*moments: dt.datetime | None) -> dt.datetime:
    return max(m for m in moments if m is not None)


def location_id(location: Location) -> str:
    """Location.id (CiString(36)): the OCPI id set on the location, else our primary key."""
    return location.ocpi_id or str(location.pk)


def evse_uid(evse: Evse) -> str:
    """EVSE.uid (CiString(36)): our primary key. Never changes (the eMI3 `evse_id` may be edited and re-used, which
    the spec warns against for `uid`), and it is the `evse_uid` our stored CDRs' cdr_location already carry."""
    return str(evse.pk)


def connector_id(connector: Connector) -> str:
    return str(connector.pk)


def evse_status(evse: Evse, charge_point: ChargePoint) -> str:
    if evse.decommissioned_at is not None or charge_point.decommissioned_at is not None:
        return "REMOVED"
    if not charge_point.online:
        return "UNKNOWN"  # "No status information available (also used when offline)"
    return EVSE_STATUS.get(evse.status, "UNKNOWN")


def evse_last_updated(evse: Evse, connectors: list[Connector]) -> dt.datetime:
    return _latest(evse.updated_at, evse.status_received_at, *(c.updated_at for c in connectors))


def connector_object(connector: Connector, *, tariff_ids: list[str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": connector_id(connector),
        "standard": connector.standard,
        "format": connector.format,
        "power_type": connector.power_type,
        "max_voltage": int(connector.max_voltage),
        "max_amperage": int(connector.max_amperage),
    }
    if connector.max_electric_power is not None:
        document["max_electric_power"] = int(connector.max_electric_power)
    if tariff_ids:
        document["tariff_ids"] = [_cut(t, 36) for t in tariff_ids]
    document["last_updated"] = ocpi_datetime(connector.updated_at)
    return document


def evse_object(
    evse: Evse, charge_point: ChargePoint, connectors: list[Connector], *, tariff_ids: list[str] | None = None
) -> dict[str, Any]:
    """An EVSE with its connectors, each naming the tariff that applies there (`cpo_selectors.evse_tariff_ids`).
    OCPI wants at least one connector (`+`): an EVSE the charger reported but nobody described yet is shown with
    the charger's default plug (Type 2 socket, as our Connector defaults)."""
    status = evse_status(evse, charge_point)
    document: dict[str, Any] = {"uid": evse_uid(evse)}
    if status != "REMOVED":
        document["evse_id"] = evse.evse_uid
    document["status"] = status
    document["capabilities"] = ["REMOTE_START_STOP_CAPABLE"]
    if connectors:
        document["connectors"] = [connector_object(c, tariff_ids=tariff_ids) for c in connectors]
    else:
        default = Connector(evse=evse, standard=Connector.Standard.IEC_62196_T2)
        default.pk = evse.pk
        default.updated_at = evse.updated_at
        document["connectors"] = [connector_object(default, tariff_ids=tariff_ids)]
    document["physical_reference"] = _cut(f"{charge_point.identity}/{evse.connector_id}", 16)
    document["last_updated"] = ocpi_datetime(evse_last_updated(evse, connectors))
    return document


def location_object(
    location: Location,
    partner: RoamingPartner,
    evses: list[tuple[Evse, ChargePoint, list[Connector]]],
    tariff_ids: dict[int, list[str]] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "country_code": partner.our_country_code,
        "party_id": partner.our_party_id,
        "id": location_id(location),
        "publish": bool(location.publish),
        "name": _cut(location.name, 255),
        "address": _cut(location.address, 45),
        "city": _cut(location.city, 45),
    }
    if location.postal_code:
        document["postal_code"] = _cut(location.postal_code, 10)
    document["country"] = alpha3(location.country)
    document["coordinates"] = {
        "latitude": _coordinate(location.latitude),
        "longitude": _coordinate(location.longitude),
    }
    if location.parking_type:
        document["parking_type"] = location.parking_type
    tariffs = tariff_ids or {}
    document["evses"] = [
        evse_object(evse, cp, connectors, tariff_ids=tariffs.get(evse.pk)) for evse, cp, connectors in evses
    ]
    document["time_zone"] = location.timezone
    if location.opening_24_7:
        document["opening_times"] = {"twentyfourseven": True}
    moments = [location.updated_at, getattr(location, "ocpi_last_updated", None)]  # the list's annotation
    for evse, _cp, connectors in evses:
        moments.append(evse_last_updated(evse, connectors))
    document["last_updated"] = ocpi_datetime(_latest(*moments))
    return document


# --------------------------------------------------------------------------- tariffs and CDRs

_DATETIME_KEYS = {"start_date_time", "end_date_time", "last_updated"}


def _spec_datetimes(value: Any, key: str = "") -> Any:
    """Stored OCPI documents with every DateTime rewritten in the spec's form (stored JSON carries milliseconds)."""
    if isinstance(value, dict):
        return {k: _spec_datetimes(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_spec_datetimes(v, key) for v in value]
    if key in _DATETIME_KEYS and isinstance(value, str):
        return ocpi_datetime(parse_ocpi_datetime(value))
    if key in _DATETIME_KEYS and isinstance(value, dt.datetime):
        return ocpi_datetime(value)
    return value


def tariff_object(document: dict[str, Any], partner: RoamingPartner) -> dict[str, Any]:
    """The stored tariff's OCPI document (tariffs.selectors.tariff_document) as sent to `partner`: our party towards
    them, DateTimes in the spec's form."""
    return _spec_datetimes({**document, "country_code": partner.our_country_code, "party_id": partner.our_party_id})


def _without_empty(document: dict[str, Any], *optional: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if not (k in optional and v in ("", None, [], {}))}


def cdr_location_object(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The CdrLocation snapshot stored with the CDR (sessions.completion) in OCPI form."""
    coordinates = snapshot.get("coordinates") or {}
    document = {
        "id": _cut(str(snapshot.get("id", "")), 36),
        "name": _cut(str(snapshot.get("name", "")), 255),
        "address": _cut(str(snapshot.get("address", "")), 45),
        "city": _cut(str(snapshot.get("city", "")), 45),
        "postal_code": _cut(str(snapshot.get("postal_code", "")), 10),
        "country": alpha3(snapshot["country"]) if snapshot.get("country") else "",
        "coordinates": {
            "latitude": _coordinate(Decimal(coordinates["latitude"])) if coordinates.get("latitude") else "",
            "longitude": _coordinate(Decimal(coordinates["longitude"])) if coordinates.get("longitude") else "",
        },
        "evse_uid": _cut(str(snapshot.get("evse_uid", "")), 36),
        "evse_id": _cut(str(snapshot.get("evse_id", "")), 48),
        "connector_id": _cut(str(snapshot.get("connector_id", "")), 36),
        "connector_standard": snapshot.get("connector_standard") or Connector.Standard.IEC_62196_T2,
        "connector_format": snapshot.get("connector_format") or Connector.Format.SOCKET,
        "connector_power_type": snapshot.get("connector_power_type") or Connector.PowerType.AC_3_PHASE,
    }
    return _without_empty(document, "name", "postal_code")


def _signed_data(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stored or not stored.get("signed_values"):
        return None
    values = [
        {
            "nature": _cut(str(v.get("nature", "")), 32),
            "plain_data": _cut(str(v.get("plain_data", "")), 512),
            "signed_data": _cut(str(v.get("signed_data", "")), 5000),
        }
        for v in stored["signed_values"]
    ]
    document = {"encoding_method": _cut(str(stored.get("encoding_method", "OTHER")), 36), "signed_values": values}
    if stored.get("url"):
        document["url"] = stored["url"]
    return document


def cdr_object(cdr: Cdr) -> dict[str, Any]:
    """Our stored, immutable CDR as the OCPI CDR object (mod_cdrs_cdr_object); amounts as stored, exact."""
    token = cdr.cdr_token or {}
    document: dict[str, Any] = {
        "country_code": cdr.country_code,
        "party_id": cdr.party_id,
        "id": cdr.ocpi_id,
        "start_date_time": ocpi_datetime(cdr.start_date_time),
        "end_date_time": ocpi_datetime(cdr.end_date_time),
        "session_id": str(cdr.session_id),
        "cdr_token": {
            "country_code": _cut(str(token.get("country_code", "")), 2),
            "party_id": _cut(str(token.get("party_id", "")), 3),
            "uid": _cut(str(token.get("uid", "")), 36),
            "type": token.get("type") or "OTHER",
            "contract_id": _cut(str(token.get("contract_id") or token.get("uid", "")), 36),
        },
        "auth_method": cdr.auth_method,
        "authorization_reference": _cut(cdr.authorization_reference, 36),
        "cdr_location": cdr_location_object(cdr.cdr_location or {}),
        "meter_id": _cut(cdr.meter_id, 255),
        "currency": cdr.currency,
        "tariffs": _spec_datetimes(cdr.tariffs or []),
        "charging_periods": _spec_datetimes(cdr.charging_periods or []),
        "signed_data": _signed_data(cdr.signed_data),
        "total_cost": cdr.total_cost,
        "total_fixed_cost": cdr.total_fixed_cost,
        "total_energy": cdr.total_energy,
        "total_energy_cost": cdr.total_energy_cost,
        "total_time": cdr.total_time,
        "total_time_cost": cdr.total_time_cost,
        "total_parking_time": cdr.total_parking_time,
        "total_parking_cost": cdr.total_parking_cost,
        "remark": _cut(cdr.remark, 255),
        "last_updated": ocpi_datetime(cdr.last_updated),
    }
    return _without_empty(
        document,
        "session_id",
        "authorization_reference",
        "meter_id",
        "tariffs",
        "signed_data",
        "total_fixed_cost",
        "total_energy_cost",
        "total_time_cost",
        "total_parking_time",
        "total_parking_cost",
        "remark",
    )


# --------------------------------------------------------------------------- sessions

SESSION_STATUS: dict[str, str] = {
    SessionStatus.PENDING: "PENDING",
    SessionStatus.ACTIVE: "ACTIVE",
    SessionStatus.SUSPENDED: "ACTIVE",
    SessionStatus.FINISHING: "ACTIVE",
    SessionStatus.COMPLETED: "COMPLETED",
    SessionStatus.FAILED: "INVALID",
    SessionStatus.INVALID: "INVALID",
}


def session_last_updated(session: ChargingSession) -> dt.datetime:
    return _latest(session.updated_at, session.last_meter_at)


def session_object(session: ChargingSession, partner: RoamingPartner) -> dict[str, Any]:
    """Our charging session as the OCPI Session (mod_sessions_session_object), as its CPO (our party)."""
    token = session.token
    energy_wh = (  # the final figure once stopped, else the last register reading so far
        session.energy_wh
        if session.energy_wh is not None and session.meter_stop_wh is not None
        else max((session.last_meter_wh or session.meter_start_wh) - session.meter_start_wh, 0)
    )
    location = session.location
    evse = session.evse
    document: dict[str, Any] = {
        "country_code": partner.our_country_code,
        "party_id": partner.our_party_id,
        "id": str(session.pk),
        "start_date_time": ocpi_datetime(session.started_at),
    }
    if session.stopped_at is not None:
        document["end_date_time"] = ocpi_datetime(session.stopped_at)
    document.update(
        {
            "kwh": Decimal(energy_wh) / 1000,
            "cdr_token": {
                "country_code": (
                    token.country_code if token is not None and token.country_code else partner.country_code
                ),
                "party_id": (token.party_id if token is not None and token.party_id else partner.party_id),
                "uid": _cut(token.uid if token is not None else session.id_tag, 36),
                "type": token.type if token is not None else "OTHER",
                "contract_id": _cut((token.contract_id or token.uid) if token is not None else session.id_tag, 36),
            },
            "auth_method": session.auth_method or "AUTH_REQUEST",
        }
    )
    if session.authorization_reference:  # the eMSP's, from real-time authorization or START_SESSION
        document["authorization_reference"] = session.authorization_reference
    document["location_id"] = location_id(location) if location is not None else ""
    document["evse_uid"] = evse_uid(evse) if evse is not None else ""
    document["connector_id"] = (
        connector_id(session.evse_connector) if session.evse_connector is not None else str(session.connector_id)
    )
    if session.charge_point.meter_serial_number:
        document["meter_id"] = _cut(session.charge_point.meter_serial_number, 255)
    document["currency"] = session.currency or session.tenant.currency
    if session.cost_excl_vat is not None:
        total = {"excl_vat": session.cost_excl_vat}
        if session.cost_incl_vat is not None:
            total["incl_vat"] = session.cost_incl_vat
        document["total_cost"] = total
    document["status"] = SESSION_STATUS.get(session.status, "INVALID")
    document["last_updated"] = ocpi_datetime(session_last_updated(session))
    return document
