"""OCPI 2.2.1 objects a CPO sends our eMSP Receivers (Location, EVSE, Connector, Tariff, Session, CDR), checked
field by field (types.asciidoc, mod_locations, mod_tariffs, mod_sessions, mod_cdrs) and turned into the domain
services' dataclasses. Bad input is OCPI 2001 naming the field (`location.evses[0].status: ...`); nothing is stored.

What is checked: the fields we keep in columns (identity, address, coordinates, status, connector ratings, amounts,
dates) by type, length, enum and range, and the shape (object / list of objects) of every structure we read. The
rest of the object is kept as received in `data` (GET answers it back), so a field we do not read is never lost.

Leniency (decided, tested with the official examples, `tests/roaming/test_emsp_examples.py`): the spec's own
examples omit a few required fields, and mod_locations says an incomplete object *may* be discarded, not must:
- a Connector without power_type / max_voltage / max_amperage (location_put_example_add_evse.json) is kept with
  those columns empty/0; without last_updated it takes its EVSE's (or Location's);
- physical_reference sent as a number (the same example) is kept as its text;
- a Tariff without last_updated (tariff_put_example.json) is stamped with the time we received it;
- coordinates may be JSON numbers as well as the spec's strings.
Everything else required is required: an object without its identity, a Location without address or coordinates,
an EVSE without status, a Session without status or last_updated is refused with 2001.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from apps.roaming.ocpi import fields as f
from apps.sessions.services import PartnerCdrData, PartnerSessionData
from apps.stations.services import PartnerConnectorData, PartnerEvseData, PartnerLocationData

EVSE_STATUSES = (
    "AVAILABLE",
    "BLOCKED",
    "CHARGING",
    "INOPERATIVE",
    "OUTOFORDER",
    "PLANNED",
    "REMOVED",
    "RESERVED",
    "UNKNOWN",
)
CONNECTOR_FORMATS = ("CABLE", "SOCKET")
POWER_TYPES = ("AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC")
SESSION_STATUSES = ("ACTIVE", "COMPLETED", "INVALID", "PENDING", "RESERVATION")
AUTH_METHODS = ("AUTH_REQUEST", "COMMAND", "WHITELIST")
TOKEN_TYPES = ("AD_HOC_USER", "APP_USER", "OTHER", "RFID")
PRICE_COMPONENT_TYPES = ("ENERGY", "FLAT", "PARKING_TIME", "TIME")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_PARTY = re.compile(r"^[A-Za-z0-9]{3}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MAX_KWH = Decimal("9999999999")  # the columns' range (14 digits, 4 decimals)
_MAX_MONEY = Decimal("99999999")  # 12 digits, 4 decimals
_MAX_HOURS = Decimal("999999")


def _party(obj: dict[str, Any], prefix: str) -> tuple[str, str]:
    country_code = f.cistring(obj, "country_code", prefix, 2)
    party_id = f.cistring(obj, "party_id", prefix, 3)
    assert country_code is not None
    assert party_id is not None
    if not _COUNTRY.match(country_code):
        raise f.invalid(f"{prefix}.country_code", f"{country_code!r} is not an ISO 3166-1 alpha-2 country code.")
    if not _PARTY.match(party_id):
        raise f.invalid(f"{prefix}.party_id", f"{party_id!r} is not a 3-character party id.")
    return country_code.upper(), party_id.upper()


def _list(obj: dict[str, Any], key: str, prefix: str, *, required: bool = False, minimum: int = 0) -> list[Any]:
    name = f"{prefix}.{key}"
    value = obj.get(key)
    if value is None:
        if required:
            raise f.invalid(name, "is required.")
        return []
    if not isinstance(value, list):
        raise f.invalid(name, "must be a list.")
    if len(value) < minimum:
        raise f.invalid(name, f"needs at least {minimum} item(s).")
    return value


def _decimal(value: Any, name: str, maximum: Decimal, *, minimum: Decimal = Decimal(0)) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise f.invalid(name, "must be a number.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise f.invalid(name, "must be a finite number.") from None
    if not number.is_finite():
        raise f.invalid(name, "must be a finite number.")
    if number < minimum or number > maximum:
        raise f.invalid(name, f"must be between {minimum} and {maximum}.")
    return number


def _number(obj: dict[str, Any], key: str, prefix: str, maximum: Decimal, *, required: bool = True) -> Decimal | None:
    if obj.get(key) is None:
        if required:
            raise f.invalid(f"{prefix}.{key}", "is required.")
        return None
    return _decimal(obj[key], f"{prefix}.{key}", maximum)


def _price(obj: dict[str, Any], key: str, prefix: str, *, required: bool) -> tuple[Decimal | None, Decimal | None]:
    """A Price (excl_vat, incl_vat) as two amounts."""
    if obj.get(key) is None:
        if required:
            raise f.invalid(f"{prefix}.{key}", "is required.")
        return None, None
    price = f.as_object(obj[key], f"{prefix}.{key}")
    excl = _number(price, "excl_vat", f"{prefix}.{key}", _MAX_MONEY)
    incl = _number(price, "incl_vat", f"{prefix}.{key}", _MAX_MONEY, required=False)
    return excl, incl


def _currency(obj: dict[str, Any], prefix: str) -> str:
    currency = f.string(obj, "currency", prefix, 3)
    assert currency is not None
    if not _CURRENCY.match(currency):
        raise f.invalid(f"{prefix}.currency", f"{currency!r} is not an ISO 4217 currency code.")
    return currency


def _coordinate(value: Any, name: str, limit: int) -> Decimal:
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise f.invalid(name, f"{value!r} is not a decimal degree.") from None
        if not number.is_finite():
            raise f.invalid(name, f"{value!r} is not a decimal degree.")
    else:
        number = _decimal(value, name, Decimal(limit), minimum=Decimal(-limit))
    if not -limit <= number <= limit:
        raise f.invalid(name, f"must be between -{limit} and {limit}.")
    return number.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _cistring_list(obj: dict[str, Any], key: str, prefix: str, max_length: int) -> list[str]:
    values = _list(obj, key, prefix)
    for n, value in enumerate(values):
        if not isinstance(value, str) or len(value) > max_length or not value:
            raise f.invalid(f"{prefix}.{key}[{n}]", f"must be a CiString({max_length}).")
    return [str(v) for v in values]


def _without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


# --------------------------------------------------------------------------- locations


def parse_connector(
    body: Any, prefix: str = "connector", *, fallback_updated: dt.datetime | None = None
) -> PartnerConnectorData:
    obj = f.as_object(body, prefix)
    connector_id = f.cistring(obj, "id", prefix, 36)
    standard = f.string(obj, "standard", prefix, 24)
    connector_format = f.enum(obj, "format", prefix, CONNECTOR_FORMATS)
    power_type = f.enum(obj, "power_type", prefix, POWER_TYPES, required=False)
    max_voltage = f.integer(obj, "max_voltage", prefix, required=False, minimum=0)
    max_amperage = f.integer(obj, "max_amperage", prefix, required=False, minimum=0)
    max_power = f.integer(obj, "max_electric_power", prefix, required=False, minimum=0)
    for name, value in (
        ("max_voltage", max_voltage),
        ("max_amperage", max_amperage),
        ("max_electric_power", max_power),
    ):
        if value is not None and value > 2_147_483_647:
            raise f.invalid(f"{prefix}.{name}", "is out of range.")
    tariff_ids = _cistring_list(obj, "tariff_ids", prefix, 36)
    f.url(obj, "terms_and_conditions", prefix, required=False)
    last_updated = f.datetime(obj, "last_updated", prefix, required=fallback_updated is None) or fallback_updated
    assert connector_id is not None
    assert last_updated is not None
    return PartnerConnectorData(
        connector_id=connector_id,
        fields={
            "standard": standard,
            "format": connector_format,
            "power_type": power_type or "",
            "max_voltage": max_voltage or 0,
            "max_amperage": max_amperage or 0,
            "max_electric_power": max_power,
            "tariff_ids": tariff_ids,
        },
        data=obj,
        last_updated=last_updated,
    )


def parse_evse(
    body: Any, prefix: str = "evse", *, fallback_updated: dt.datetime | None = None, with_connectors: bool = True
) -> PartnerEvseData:
    """An EVSE; `with_connectors=False` (a PATCH without connectors) leaves its connectors out (kept as stored)."""
    obj = f.as_object(body, prefix)
    uid = f.cistring(obj, "uid", prefix, 36)
    evse_id = f.cistring(obj, "evse_id", prefix, 48, required=False)
    status = f.enum(obj, "status", prefix, EVSE_STATUSES)
    capabilities = _cistring_list(obj, "capabilities", prefix, 40)
    reference = obj.get("physical_reference")
    if isinstance(reference, int) and not isinstance(reference, bool):
        reference = str(reference)  # the official add-an-EVSE example sends a number
    elif reference is not None:
        reference = f.string(obj, "physical_reference", prefix, 16)
    if reference is not None and len(reference) > 16:
        raise f.invalid(f"{prefix}.physical_reference", "is longer than 16 characters.")
    last_updated = f.datetime(obj, "last_updated", prefix, required=fallback_updated is None) or fallback_updated
    assert uid is not None
    assert last_updated is not None
    connectors = [
        parse_connector(c, f"{prefix}.connectors[{n}]", fallback_updated=last_updated)
        for n, c in enumerate(_list(obj, "connectors", prefix, required=True, minimum=1) if with_connectors else [])
    ]
    ids = [c.connector_id for c in connectors]
    if len(set(ids)) != len(ids):
        raise f.invalid(f"{prefix}.connectors", "connector ids must be unique within an EVSE.")
    return PartnerEvseData(
        uid=uid,
        fields={
            "evse_id": evse_id or "",
            "status": status,
            "capabilities": capabilities,
            "physical_reference": reference or "",
        },
        data=_without(obj, "connectors"),
        last_updated=last_updated,
        connectors=connectors,
    )


def parse_location(body: Any, prefix: str = "location", *, with_evses: bool = True) -> PartnerLocationData:
    obj = f.as_object(body, prefix)
    country_code, party_id = _party(obj, prefix)
    ocpi_id = f.cistring(obj, "id", prefix, 36)
    publish = f.boolean(obj, "publish", prefix)
    name = f.string(obj, "name", prefix, 255, required=False)
    address = f.string(obj, "address", prefix, 45)
    city = f.string(obj, "city", prefix, 45)
    postal_code = f.string(obj, "postal_code", prefix, 10, required=False)
    state = f.string(obj, "state", prefix, 20, required=False)
    country = f.string(obj, "country", prefix, 3)
    coordinates = f.as_object(obj.get("coordinates"), f"{prefix}.coordinates")
    if coordinates.get("latitude") is None or coordinates.get("longitude") is None:
        raise f.invalid(f"{prefix}.coordinates", "needs latitude and longitude.")
    latitude = _coordinate(coordinates["latitude"], f"{prefix}.coordinates.latitude", 90)
    longitude = _coordinate(coordinates["longitude"], f"{prefix}.coordinates.longitude", 180)
    time_zone = f.string(obj, "time_zone", prefix, 255)
    operator_name = ""
    if obj.get("operator") is not None:
        operator = f.as_object(obj["operator"], f"{prefix}.operator")
        operator_name = f.string(operator, "name", f"{prefix}.operator", 100) or ""
    last_updated = f.datetime(obj, "last_updated", prefix)
    assert ocpi_id is not None
    assert last_updated is not None
    evses = []
    if with_evses:
        evses = [
            parse_evse(e, f"{prefix}.evses[{n}]", fallback_updated=last_updated)
            for n, e in enumerate(_list(obj, "evses", prefix))
        ]
        uids = [e.uid for e in evses]
        if len(set(uids)) != len(uids):
            raise f.invalid(f"{prefix}.evses", "EVSE uids must be unique within a location.")
    return PartnerLocationData(
        country_code=country_code,
        party_id=party_id,
        ocpi_id=ocpi_id,
        fields={
            "publish": publish,
            "name": name or "",
            "address": address,
            "city": city,
            "postal_code": postal_code or "",
            "state": state or "",
            "country": country,
            "latitude": latitude,
            "longitude": longitude,
            "time_zone": time_zone,
            "operator_name": operator_name,
        },
        data=_without(obj, "evses"),
        last_updated=last_updated,
        evses=evses,
    )


# --------------------------------------------------------------------------- tariffs


def parse_tariff(body: Any, prefix: str = "tariff") -> tuple[str, str, str, str, dict[str, Any], dt.datetime]:
    """(country_code, party_id, id, currency, the object, last_updated)."""
    obj = f.as_object(body, prefix)
    country_code, party_id = _party(obj, prefix)
    ocpi_id = f.cistring(obj, "id", prefix, 36)
    currency = _currency(obj, prefix)
    for n, element in enumerate(_list(obj, "elements", prefix, required=True, minimum=1)):
        element = f.as_object(element, f"{prefix}.elements[{n}]")
        components = _list(element, "price_components", f"{prefix}.elements[{n}]", required=True, minimum=1)
        for m, component in enumerate(components):
            where = f"{prefix}.elements[{n}].price_components[{m}]"
            component = f.as_object(component, where)
            f.enum(component, "type", where, PRICE_COMPONENT_TYPES)
            _number(component, "price", where, _MAX_MONEY)
            f.integer(component, "step_size", where, minimum=0)
            if component.get("vat") is not None:
                _decimal(component["vat"], f"{where}.vat", Decimal(100))
        if element.get("restrictions") is not None:
            f.as_object(element["restrictions"], f"{prefix}.elements[{n}].restrictions")
    for key in ("min_price", "max_price"):
        _price(obj, key, prefix, required=False)
    f.datetime(obj, "start_date_time", prefix, required=False)
    f.datetime(obj, "end_date_time", prefix, required=False)
    last_updated = f.datetime(obj, "last_updated", prefix, required=False)
    if last_updated is None:  # tariff_put_example.json has none: the time we received it
        last_updated = timezone.now().replace(microsecond=0)
        obj = {**obj, "last_updated": last_updated.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert ocpi_id is not None
    return country_code, party_id, ocpi_id, currency, obj, last_updated


# --------------------------------------------------------------------------- sessions and CDRs


def _cdr_token(obj: dict[str, Any], prefix: str) -> str:
    token = f.as_object(obj.get("cdr_token"), f"{prefix}.cdr_token")
    uid = f.cistring(token, "uid", f"{prefix}.cdr_token", 36)
    f.enum(token, "type", f"{prefix}.cdr_token", TOKEN_TYPES)
    f.cistring(token, "contract_id", f"{prefix}.cdr_token", 36)
    assert uid is not None
    return uid


def _charging_periods(obj: dict[str, Any], prefix: str, *, minimum: int = 0) -> None:
    for n, period in enumerate(_list(obj, "charging_periods", prefix, required=minimum > 0, minimum=minimum)):
        where = f"{prefix}.charging_periods[{n}]"
        period = f.as_object(period, where)
        f.datetime(period, "start_date_time", where)
        for m, dimension in enumerate(_list(period, "dimensions", where, required=True, minimum=1)):
            dimension = f.as_object(dimension, f"{where}.dimensions[{m}]")
            f.string(dimension, "type", f"{where}.dimensions[{m}]", 32)
            f.number(dimension, "volume", f"{where}.dimensions[{m}]")


def parse_session(body: Any, prefix: str = "session") -> PartnerSessionData:
    obj = f.as_object(body, prefix)
    country_code, party_id = _party(obj, prefix)
    ocpi_id = f.cistring(obj, "id", prefix, 36)
    start = f.datetime(obj, "start_date_time", prefix)
    end = f.datetime(obj, "end_date_time", prefix, required=False)
    kwh = _number(obj, "kwh", prefix, _MAX_KWH)
    token_uid = _cdr_token(obj, prefix)
    f.enum(obj, "auth_method", prefix, AUTH_METHODS)
    reference = f.cistring(obj, "authorization_reference", prefix, 36, required=False)
    location_id = f.cistring(obj, "location_id", prefix, 36)
    evse_uid = f.cistring(obj, "evse_uid", prefix, 36)
    connector_id = f.cistring(obj, "connector_id", prefix, 36)
    currency = _currency(obj, prefix)
    _charging_periods(obj, prefix)
    excl, incl = _price(obj, "total_cost", prefix, required=False)
    status = f.enum(obj, "status", prefix, SESSION_STATUSES)
    last_updated = f.datetime(obj, "last_updated", prefix)
    assert ocpi_id is not None
    assert last_updated is not None
    return PartnerSessionData(
        country_code=country_code,
        party_id=party_id,
        ocpi_id=ocpi_id,
        authorization_reference=reference or "",
        token_uid=token_uid,
        fields={
            "state": status,
            "location_ocpi_id": location_id,
            "evse_uid": evse_uid,
            "connector_id": connector_id,
            "start_date_time": start,
            "end_date_time": end,
            "kwh": kwh,
            "currency": currency,
            "total_cost_excl_vat": excl,
            "total_cost_incl_vat": incl,
        },
        data=obj,
        last_updated=last_updated,
    )


def parse_cdr(body: Any, prefix: str = "cdr") -> PartnerCdrData:
    obj = f.as_object(body, prefix)
    country_code, party_id = _party(obj, prefix)
    ocpi_id = f.cistring(obj, "id", prefix, 39)
    start = f.datetime(obj, "start_date_time", prefix)
    end = f.datetime(obj, "end_date_time", prefix)
    session_id = f.cistring(obj, "session_id", prefix, 36, required=False)
    token_uid = _cdr_token(obj, prefix)
    f.enum(obj, "auth_method", prefix, AUTH_METHODS)
    reference = f.cistring(obj, "authorization_reference", prefix, 36, required=False)
    location = f.as_object(obj.get("cdr_location"), f"{prefix}.cdr_location")
    f.cistring(location, "id", f"{prefix}.cdr_location", 36)
    currency = _currency(obj, prefix)
    for n, tariff in enumerate(_list(obj, "tariffs", prefix)):
        f.as_object(tariff, f"{prefix}.tariffs[{n}]")
    _charging_periods(obj, prefix, minimum=1)
    excl, incl = _price(obj, "total_cost", prefix, required=True)
    total_energy = _number(obj, "total_energy", prefix, _MAX_KWH)
    total_time = _number(obj, "total_time", prefix, _MAX_HOURS)
    credit = f.boolean(obj, "credit", prefix, required=False)
    credit_reference = f.cistring(obj, "credit_reference_id", prefix, 39, required=False)
    if credit and not credit_reference:
        raise f.invalid(f"{prefix}.credit_reference_id", "is required for a credit CDR.")
    last_updated = f.datetime(obj, "last_updated", prefix)
    assert ocpi_id is not None
    assert start is not None
    assert end is not None
    assert last_updated is not None
    if end < start:
        raise f.invalid(f"{prefix}.end_date_time", "is before start_date_time.")
    return PartnerCdrData(
        country_code=country_code,
        party_id=party_id,
        ocpi_id=ocpi_id,
        session_ocpi_id=session_id or "",
        authorization_reference=reference or "",
        token_uid=token_uid,
        fields={
            "start_date_time": start,
            "end_date_time": end,
            "currency": currency,
            "total_energy": total_energy,
            "total_time": total_time,
            "total_cost_excl_vat": excl,
            "total_cost_incl_vat": incl,
            "credit": bool(credit),
            "credit_reference_id": credit_reference or "",
        },
        data=obj,
        last_updated=last_updated,
    )
