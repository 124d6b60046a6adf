"""We are EMP at Hubject (OICP 2.3, the EMP file): our drivers find, start and pay for EVSEs of the CPOs behind Hubject.

- **EVSE data into the partner catalog** (`evse_data_pull`): PullEvseData, all of it the first time (and on the
  admin's full resync), then only what changed since our last pull (`LastCall`, Hubject answers with `deltaType`),
  page by page. Hubject's records are per EVSE; they are grouped into partner locations by the CPO's
  ChargingPoolID, else ChargingStationID, else the EVSE itself, and written through the same services as OCPI
  locations (`stations.services.partner_location_put`), so the driver search shows them beside our own stations
  and OCPI partners' ones, priced by the tenant's retail rule for the Hubject partner. A full pull withdraws what
  Hubject no longer lists (status REMOVED, as for OCPI).
- **Status** (`evse_status_pull`): PullEvseStatus of every operator; the catalog's EVSEs take Hubject's status
  (Available, Occupied, Reserved, OutOfService, Unknown, EvseNotFound) in OCPI's words. By id
  (`evse_status_by_id`, PullEvseStatusById) for a few EVSEs, e.g. the one a remote start found occupied.
- **Remote start and stop** for the driver API (`session_start`, `session_stop`): AuthorizeRemoteStart with a
  SessionID we make (our PartnerSession's authorization_reference) and the driver's contract id as
  RemoteIdentification; Hubject answers synchronously once the CPO has, and the StatusCode becomes the session's
  state (602 occupied, 700 out of service, 501/310 the charger or CPO did not answer, others rejected).
- **Reservations** for the driver API (`reservation_start`, `reservation_stop`): AuthorizeRemoteReservationStart
  for at most 99 minutes (OICP's Duration) and AuthorizeRemoteReservationStop, in the states of an OCPI reservation
  (`reserving`, RESERVATION, `cancel_requested`, `canceled`).
- **Our tokens at Hubject** (`emp_auth.py`, PushAuthenticationData) and **Hubject's copy of our CDRs**
  (`emp_cdrs.py`, GetChargeDetailRecords, for reconciliation) are modules of their own.
- **Hubject calls us** (`charge_detail_record`, `charging_notification`): the CPO's CDR for a session we started
  becomes a partner CDR, billed like an OCPI one (apps/billing, through `PartnerCdrReceived`); Start, Progress
  and End notifications keep the driver's live view (state, kWh) current.

OICP's CDR carries no price: the CPO's cost is unknown to the EMP at this level (it is settled under the bilateral
contract Hubject brokers), so a Hubject CDR is stored at cost 0 with review `no_tariff`, and the driver pays the
tenant's retail rule for Hubject, which is therefore a fixed price per kWh (`apps/tariffs/retail.py`; with
pass-through or a mark-up the driver's price of an unknown cost would be 0, so such a CDR is not billed and waits
for finance in the reconciliation list)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, Conflict
from apps.customers.authorization import AuthorizationStatus, token_status
from apps.customers.models import Driver, Token, TokenSource
from apps.roaming.models import OicpConnection, OicpOperation, RoamingPartner
from apps.roaming.oicp.client import OicpCallFailed, OicpClient, OicpDisabled
from apps.roaming.oicp.cpo_push import normalized
from apps.sessions import services as session_services
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.sessions.models import PartnerSessionState as S
from apps.stations import services as station_services
from apps.stations.models import PartnerEvse, PartnerEvseStatus, PartnerLocation
from apps.tariffs import selectors as tariff_selectors

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000  # records per PullEvseData page (Hubject allows up to 2000)
# OICP plug -> (OCPI ConnectorType, ConnectorFormat)
PLUGS: dict[str, tuple[str, str]] = {
    "Type 2 Outlet": ("IEC_62196_T2", "SOCKET"),
    "Type 2 Connector (Cable Attached)": ("IEC_62196_T2", "CABLE"),
    "Type 1 Connector (Cable Attached)": ("IEC_62196_T1", "CABLE"),
    "Type 3 Outlet": ("IEC_62196_T3A", "SOCKET"),
    "CCS Combo 2 Plug (Cable Attached)": ("IEC_62196_T2_COMBO", "CABLE"),
    "CCS Combo 1 Plug (Cable Attached)": ("IEC_62196_T1_COMBO", "CABLE"),
    "CHAdeMO": ("CHADEMO", "CABLE"),
    "Type F Schuko": ("DOMESTIC_F", "SOCKET"),
    "Type E French Standard": ("DOMESTIC_E", "SOCKET"),
    "Type G British Standard": ("DOMESTIC_G", "SOCKET"),
    "Type J Swiss Standard": ("DOMESTIC_J", "SOCKET"),
    "IEC 60309 Single Phase": ("IEC_60309_2_single_16", "SOCKET"),
    "IEC 60309 Three Phase": ("IEC_60309_2_three_16", "SOCKET"),
    "NEMA 5-20": ("NEMA_5_20", "SOCKET"),
    "Tesla Connector": ("TESLA_S", "CABLE"),
}
# OICP EvseStatus -> OCPI Status
STATUS = {
    "Available": PartnerEvseStatus.AVAILABLE,
    "Reserved": PartnerEvseStatus.RESERVED,
    "Occupied": PartnerEvseStatus.CHARGING,
    "OutOfService": PartnerEvseStatus.OUTOFORDER,
    "EvseNotFound": PartnerEvseStatus.REMOVED,
    "Unknown": PartnerEvseStatus.UNKNOWN,
}
# a refused AuthorizeRemoteStart's StatusCode -> the partner session's state
START_REFUSED = {
    "602": S.EVSE_OCCUPIED,
    "700": S.EVSE_INOPERATIVE,
    "501": S.TIMEOUT,
    "310": S.TIMEOUT,
    "603": S.FAILED,
}
STOPPABLE = (S.COMMAND_ACCEPTED, S.PENDING, S.ACTIVE)
MAX_RESERVATION_MINUTES = 99  # the EMP file's AuthorizeRemoteReservationStart.Duration maximum
NOT_YET_CHARGING = (S.REQUESTED, S.COMMAND_ACCEPTED, S.PENDING)  # what a Start or Progress notification moves on


# --------------------------------------------------------------------------- the connection


def connection_of(partner: RoamingPartner) -> OicpConnection | None:
    """The partner's Hubject connection, when the partner is Hubject."""
    try:
        return partner.oicp_connection
    except OicpConnection.DoesNotExist:
        return None


def usable(connection: OicpConnection, operation: str) -> None:
    problem = ""
    if not connection.enabled:
        problem = "the Hubject connection is disabled"
    elif not connection.provider_id:
        problem = "the Hubject connection has no ProviderID (we are not EMP there)"
    elif operation not in connection.enabled_operations:
        problem = f"{operation} is not enabled on the Hubject connection"
    if problem:
        raise Conflict(f"Cannot reach Hubject: {problem}.", code="partner_unavailable")


def connections_pulling() -> list[int]:
    """The Hubject connections we are EMP on that pull EVSE data."""
    return list(
        OicpConnection.objects.filter(enabled=True, enabled_operations__contains=[OicpOperation.PULL_EVSE_DATA])
        .exclude(provider_id="")
        .values_list("pk", flat=True)
    )


# --------------------------------------------------------------------------- EVSE data -> partner catalog


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def coordinates(geo: Any) -> tuple[Decimal, Decimal] | None:
    """(latitude, longitude) of an OICP GeoCoordinates in DecimalDegree or Google form (what we ask for)."""
    if not isinstance(geo, dict):
        return None
    if isinstance(geo.get("DecimalDegree"), dict):
        lat, lon = _decimal(geo["DecimalDegree"].get("Latitude")), _decimal(geo["DecimalDegree"].get("Longitude"))
    elif isinstance(geo.get("Google"), dict):
        parts = str(geo["Google"].get("Coordinates", "")).replace(",", " ").split()
        lat, lon = (_decimal(parts[0]), _decimal(parts[1])) if len(parts) == 2 else (None, None)
    else:
        return None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat.quantize(Decimal("0.000001")), lon.quantize(Decimal("0.000001"))


def parse_stamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        except ValueError:
            pass
    return timezone.now()


def _location_key(record: dict[str, Any]) -> str:
    for key in ("ChargingPoolID", "ChargingStationId", "ChargingStationID", "EvseID"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:36]
    raise ValueError("record without EvseID")


def _party(operator_id: str) -> tuple[str, str]:
    """'DE*ABC' -> ('DE', 'ABC') (the OCPI columns of partner rows)."""
    bare = normalized(operator_id)
    return bare[:2], bare[2:5]


def _name(record: dict[str, Any], language: str) -> str:
    names = [n for n in record.get("ChargingStationNames") or [] if isinstance(n, dict) and n.get("value")]
    chosen = next((n for n in names if str(n.get("lang", "")).lower().startswith(language)), names[0] if names else {})
    return str(chosen.get("value", ""))[:255]


def _connectors(record: dict[str, Any], stamp: dt.datetime) -> list[station_services.PartnerConnectorData]:
    facilities = [f for f in record.get("ChargingFacilities") or [] if isinstance(f, dict)]
    best = max(facilities, key=lambda f: float(f.get("Power") or 0), default={})
    power_kw = float(best.get("Power") or 0)
    power_type = str(best.get("PowerType") or "AC_3_PHASE")
    voltage = int(best.get("Voltage") or (400 if power_type == "AC_3_PHASE" else 230 if power_type != "DC" else 500))
    phases = 3 if power_type == "AC_3_PHASE" else 1
    amperage = int(best.get("Amperage") or (round(power_kw * 1000 / (voltage * phases)) if voltage else 0))
    connectors = []
    for n, plug in enumerate(dict.fromkeys(record.get("Plugs") or []), start=1):
        standard, form = PLUGS.get(str(plug), ("IEC_62196_T2", "SOCKET"))
        connectors.append(
            station_services.PartnerConnectorData(
                connector_id=str(n),
                fields={
                    "standard": standard,
                    "format": form,
                    "power_type": power_type if power_type in ("AC_1_PHASE", "AC_3_PHASE", "DC") else "AC_3_PHASE",
                    "max_voltage": max(0, voltage),
                    "max_amperage": max(0, amperage),
                    "max_electric_power": round(power_kw * 1000) or None,
                    "tariff_ids": [],
                },
                data={"plug": plug, "facility": best},
                last_updated=stamp,
            )
        )
    return connectors


def _evse(record: dict[str, Any], status: str | None) -> station_services.PartnerEvseData:
    stamp = parse_stamp(record.get("lastUpdate"))
    evse_id = str(record["EvseID"])
    capabilities = ["REMOTE_START_STOP_CAPABLE"] if "REMOTE" in (record.get("AuthenticationModes") or []) else []
    if "NFC RFID Classic" in (record.get("AuthenticationModes") or []):
        capabilities.append("RFID_READER")
    if "Reservation" in (record.get("ValueAddedServices") or []):
        capabilities.append("RESERVABLE")
    data = {k: v for k, v in record.items() if k not in ("deltaType",)}
    return station_services.PartnerEvseData(
        uid=evse_id[:36],
        fields={
            "evse_id": evse_id[:48],
            "status": status or PartnerEvseStatus.UNKNOWN,
            "capabilities": capabilities,
            "physical_reference": "",
        },
        data=data,
        last_updated=stamp,
        connectors=_connectors(record, stamp),
    )


def _location(
    key: str, records: list[dict[str, Any]], language: str, statuses: dict[str, str]
) -> station_services.PartnerLocationData | None:
    first = records[0]
    point = coordinates(first.get("GeoCoordinates"))
    if point is None:
        return None
    given = first.get("Address")
    address: dict[str, Any] = given if isinstance(given, dict) else {}
    street = " ".join(str(address.get(k) or "") for k in ("Street", "HouseNum")).strip()
    country_code, party_id = _party(str(first.get("OperatorID", "")))
    stamp = max(parse_stamp(r.get("lastUpdate")) for r in records)
    return station_services.PartnerLocationData(
        country_code=country_code,
        party_id=party_id,
        ocpi_id=key,
        fields={
            "publish": True,
            "name": _name(first, language) or key,
            "address": street[:45],
            "city": str(address.get("City") or "")[:45],
            "postal_code": str(address.get("PostalCode") or "")[:10],
            "state": str(address.get("Region") or "")[:20],
            "country": str(address.get("Country") or "")[:3].upper(),
            "latitude": point[0],
            "longitude": point[1],
            "time_zone": "",
            "operator_name": str(first.get("OperatorName") or "")[:100],
        },
        data={"oicp": {"OperatorID": first.get("OperatorID"), "key": key}},
        last_updated=stamp,
        evses=[_evse(r, statuses.get(normalized(str(r["EvseID"])))) for r in records],
    )


@dataclass
class PullResult:
    records: int = 0
    locations: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)


def pages(client: OicpClient, operation: str, body: dict[str, Any]) -> Iterable[dict[str, Any]]:
    page = 0
    while True:
        answer = client.call(operation, body, query={"page": page, "size": PAGE_SIZE})
        if answer.get("StatusCode", {}).get("Code", "000") != "000":
            raise OicpCallFailed(f"{operation}: {answer['StatusCode']}", status_code_oicp=answer["StatusCode"]["Code"])
        yield answer
        if answer.get("last", True) or not answer.get("content"):
            return
        page += 1


def _statuses(client: OicpClient, connection: OicpConnection) -> dict[str, str]:
    """Normalized EvseID -> OCPI status, of every EVSE Hubject has a status for."""
    answer = client.call(OicpOperation.PULL_EVSE_STATUS, {"ProviderID": connection.provider_id})
    found: dict[str, str] = {}
    for operator in (answer.get("EvseStatuses") or {}).get("OperatorEvseStatus") or []:
        for record in operator.get("EvseStatusRecord") or []:
            found[normalized(str(record["EvseID"]))] = STATUS.get(str(record["EvseStatus"]), PartnerEvseStatus.UNKNOWN)
    return found


def evse_data_pull(*, connection_id: int, full: bool = False) -> PullResult:
    """PullEvseData into the tenant's partner catalog (see the module's docstring); a full pull also pulls the
    statuses. Raises the client's errors (the task retries); what was stored before a failed page stays."""
    connection = OicpConnection.objects.select_related("partner", "tenant").get(pk=connection_id)
    usable(connection, OicpOperation.PULL_EVSE_DATA)
    since = None if full else connection.evse_data_pulled_at
    began = timezone.now()
    body: dict[str, Any] = {"ProviderID": connection.provider_id, "GeoCoordinatesResponseFormat": "DecimalDegree"}
    if since is not None:
        body["LastCall"] = since.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    language = (connection.tenant.language or "en")[:2]
    client = OicpClient(connection)
    result = PullResult()
    try:
        statuses = (
            _statuses(client, connection) if OicpOperation.PULL_EVSE_STATUS in connection.enabled_operations else {}
        )
        keep: set[tuple[str, str, str]] = set()
        for answer in pages(client, OicpOperation.PULL_EVSE_DATA, body):
            records = [r for r in answer.get("content") or [] if isinstance(r, dict) and r.get("EvseID")]
            result.records += len(records)
            _store(connection, records, language, statuses, full=since is None, keep=keep, result=result)
        if since is None:
            result.removed = station_services.partner_locations_unlisted_removed(
                tenant_id=connection.tenant_id, partner_id=connection.partner_id, keep=keep
            )
    finally:
        client.close()
    OicpConnection.objects.filter(pk=connection.pk).update(evse_data_pulled_at=began)
    return result


def _store(
    connection: OicpConnection,
    records: list[dict[str, Any]],
    language: str,
    statuses: dict[str, str],
    *,
    full: bool,
    keep: set[tuple[str, str, str]],
    result: PullResult,
) -> None:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    deleted: list[str] = []
    for record in records:
        if record.get("deltaType") == "delete":
            deleted.append(str(record["EvseID"]))
            continue
        grouped.setdefault((str(record.get("OperatorID", "")), _location_key(record)), []).append(record)
    for (_operator, key), members in grouped.items():
        location = _location(key, members, language, statuses)
        if location is None:
            result.skipped.extend(str(r["EvseID"]) for r in members)
            continue
        keep.add((location.country_code, location.party_id, location.ocpi_id))
        if full:
            # a full pull lists every EVSE of the location: they replace the stored ones
            station_services.partner_location_put(
                tenant_id=connection.tenant_id, partner_id=connection.partner_id, location=location
            )
        else:
            _delta(connection, location)
        result.locations += 1
    if deleted:
        _withdraw(connection, deleted)


@transaction.atomic
def _delta(connection: OicpConnection, location: station_services.PartnerLocationData) -> None:
    """Inserted or updated EVSEs of a location: the location's fields, then each EVSE (the others stay)."""
    station_services.partner_location_put(
        tenant_id=connection.tenant_id, partner_id=connection.partner_id, location=location, evses_given=False
    )
    for evse in location.evses:
        station_services.partner_evse_put(
            tenant_id=connection.tenant_id,
            partner_id=connection.partner_id,
            country_code=location.country_code,
            party_id=location.party_id,
            location_id=location.ocpi_id,
            evse=evse,
        )


def _withdraw(connection: OicpConnection, evse_ids: list[str]) -> None:
    """EVSEs Hubject deleted: REMOVED, as OCPI withdraws them."""
    station_services.partner_evse_statuses_set(
        tenant_id=connection.tenant_id,
        partner_id=connection.partner_id,
        statuses={normalized(e): PartnerEvseStatus.REMOVED for e in evse_ids},
        key=normalized,
    )


def evse_status_pull(*, connection_id: int) -> int:
    """PullEvseStatus: the catalog's Hubject EVSEs take the status Hubject has. Returns how many changed."""
    connection = OicpConnection.objects.select_related("partner").get(pk=connection_id)
    usable(connection, OicpOperation.PULL_EVSE_STATUS)
    client = OicpClient(connection)
    try:
        statuses = _statuses(client, connection)
    finally:
        client.close()
    return station_services.partner_evse_statuses_set(
        tenant_id=connection.tenant_id,
        partner_id=connection.partner_id,
        statuses=statuses,
        key=normalized,
    )


STATUS_BY_ID_CHUNK = 100  # PullEvseStatusById: the EMP file's maxItems


def evse_status_by_id(*, connection_id: int, evse_ids: list[str]) -> int:
    """PullEvseStatusById: the status Hubject has now for these EVSEs of the catalog (up to 100 a request), e.g.
    after a remote start was refused as occupied; only those EVSEs are read and written. Returns how many changed."""
    connection = OicpConnection.objects.select_related("partner").get(pk=connection_id)
    usable(connection, OicpOperation.PULL_EVSE_STATUS)
    evses = {
        normalized(evse.evse_id): evse
        for evse in PartnerEvse.objects.filter(
            location__partner_id=connection.partner_id,
            location__tenant_id=connection.tenant_id,
            evse_id__in=evse_ids,
        )
    }
    changed = 0
    client = OicpClient(connection)
    try:
        wanted = sorted(evse.evse_id for evse in evses.values())
        for start in range(0, len(wanted), STATUS_BY_ID_CHUNK):
            body = {"ProviderID": connection.provider_id, "EvseID": wanted[start : start + STATUS_BY_ID_CHUNK]}
            answer = client.call(OicpOperation.PULL_EVSE_STATUS, body)
            for record in (answer.get("EVSEStatusRecords") or {}).get("EvseStatusRecord") or []:
                evse = evses.get(normalized(str(record.get("EvseID", ""))))
                status = STATUS.get(str(record.get("EvseStatus")), PartnerEvseStatus.UNKNOWN)
                if evse is not None and status != evse.status:
                    station_services.partner_evse_status_set(evse=evse, status=status)
                    changed += 1
    finally:
        client.close()
    return changed


# --------------------------------------------------------------------------- remote start and stop (driver API)


def _identification(token: Token) -> dict[str, Any]:
    evco = token.contract_id or token.uid
    return {"RemoteIdentification": {"EvcoID": evco}}


def _refused_state(code: str) -> str:
    return START_REFUSED.get(code, S.REJECTED)


def _text(answer: dict[str, Any]) -> str:
    status = answer.get("StatusCode") or {}
    return " ".join(str(status.get(k)) for k in ("Code", "Description", "AdditionalInfo") if status.get(k))[:255]


def session_start(*, driver: Driver, evse: PartnerEvse, token: Token) -> PartnerSession:
    """AuthorizeRemoteStart of a Hubject EVSE for our driver: the PartnerSession in `requested`, then (Hubject
    answers once the CPO did, within its 10 s budget) `accepted` or the refusal's state with Hubject's reason."""
    connection = _hubject_evse(driver, evse, token, OicpOperation.AUTHORIZE_REMOTE_START)
    location: PartnerLocation = evse.location
    session_id = str(uuid.uuid4())
    session = session_services.partner_session_request(
        partner_id=location.partner_id,
        token=token,
        state=S.REQUESTED,
        country_code=location.country_code,
        party_id=location.party_id,
        location_id=location.pk,
        location_ocpi_id=location.ocpi_id,
        evse_uid=evse.uid,
        connector_id="",
        authorization_reference=session_id,
    )
    body = {
        "ProviderID": connection.provider_id,
        "EvseID": evse.evse_id,
        "Identification": _identification(token),
        "SessionID": session_id,
        "EMPPartnerSessionID": str(session.pk),
    }
    _call_and_apply(connection, OicpOperation.AUTHORIZE_REMOTE_START, body, session, S.REQUESTED, S.COMMAND_ACCEPTED)
    return PartnerSession.objects.get(pk=session.pk)


def _follow_up(
    session: PartnerSession, operation: str, allowed: tuple[str, ...], waiting: str, extra: dict[str, Any], done: str
) -> PartnerSession:
    """A command on a session we started (or reserved) through Hubject: the session moves to `waiting` if it is in
    one of `allowed`, the call goes out, and Hubject's answer moves it to `done` or back where it was."""
    connection = connection_of(RoamingPartner.objects.get(pk=session.partner_id))
    if connection is None:
        raise Conflict("This session is not reached through Hubject.", code="partner_unavailable")
    usable(connection, operation)
    with transaction.atomic():
        locked = PartnerSession.objects.select_for_update().get(pk=session.pk)
        if locked.state not in allowed:
            raise Conflict(
                f"Partner session {locked.pk} is {locked.get_state_display().lower()} ({locked.state}): "
                f"{operation} needs one of {', '.join(allowed)}.",
                code="partner_session_state",
            )
        before = locked.state
        session_services.partner_session_state_set(session_id=locked.pk, state=waiting, reason="", only_from=[before])
    body = {
        "ProviderID": connection.provider_id,
        "EvseID": _evse_id_of(locked),
        "SessionID": locked.authorization_reference,
        **extra,
    }
    _call_and_apply(connection, operation, body, locked, waiting, done, back=before)
    return PartnerSession.objects.get(pk=session.pk)


def session_stop(*, session: PartnerSession) -> PartnerSession:
    """AuthorizeRemoteStop of a session we started through Hubject: `stop_requested`, then `stop_accepted` (the
    CPO's End notification and CDR complete it) or back to where it was with Hubject's reason."""
    return _follow_up(session, OicpOperation.AUTHORIZE_REMOTE_STOP, STOPPABLE, S.STOP_REQUESTED, {}, S.STOP_ACCEPTED)


def _hubject_evse(driver: Driver, evse: PartnerEvse, token: Token, operation: str) -> OicpConnection:
    location: PartnerLocation = evse.location
    if location.tenant_id != driver.tenant_id or token.driver_id != driver.pk:
        raise Conflict("This EVSE or token is not the driver's to use.", code="partner_unavailable")
    connection = connection_of(location.partner)
    if connection is None:
        raise Conflict("This EVSE is not reached through Hubject.", code="partner_unavailable")
    usable(connection, operation)
    return connection


def reservation_minutes(expires_at: dt.datetime, now: dt.datetime | None = None) -> int:
    """The reservation's Duration in whole minutes (rounded up), as OICP wants it: 1 to 99."""
    seconds = (expires_at - (now or timezone.now())).total_seconds()
    minutes = -int(-seconds // 60)
    if seconds <= 0 or minutes > MAX_RESERVATION_MINUTES:
        raise ApplicationError(
            f"A reservation through Hubject ends in the future and lasts at most {MAX_RESERVATION_MINUTES} minutes.",
            code="validation_error",
            fields={"expires_at": [f"Must be in the next {MAX_RESERVATION_MINUTES} minutes."]},
        )
    return minutes


def reservation_start(*, driver: Driver, evse: PartnerEvse, token: Token, expires_at: dt.datetime) -> PartnerSession:
    """AuthorizeRemoteReservationStart of a Hubject EVSE for our driver until `expires_at` (at most 99 minutes): the
    reservation (a PartnerSession with `reservation_expires_at`) in `reserving`, then RESERVATION or the refusal's
    state with Hubject's reason. Our SessionID is its authorization_reference, as for a remote start."""
    connection = _hubject_evse(driver, evse, token, OicpOperation.AUTHORIZE_REMOTE_RESERVATION_START)
    minutes = reservation_minutes(expires_at)
    location: PartnerLocation = evse.location
    session_id = str(uuid.uuid4())
    session = session_services.partner_session_request(
        partner_id=location.partner_id,
        token=token,
        state=S.RESERVE_REQUESTED,
        country_code=location.country_code,
        party_id=location.party_id,
        location_id=location.pk,
        location_ocpi_id=location.ocpi_id,
        evse_uid=evse.uid,
        connector_id="",
        authorization_reference=session_id,
        reservation_expires_at=expires_at,
    )
    body = {
        "ProviderID": connection.provider_id,
        "EvseID": evse.evse_id,
        "Identification": _identification(token),
        "SessionID": session_id,
        "EMPPartnerSessionId": str(session.pk),  # sic: the reservation messages spell it with "Id"
        "Duration": minutes,
    }
    _call_and_apply(
        connection,
        OicpOperation.AUTHORIZE_REMOTE_RESERVATION_START,
        body,
        session,
        S.RESERVE_REQUESTED,
        S.RESERVATION,
    )
    return PartnerSession.objects.get(pk=session.pk)


def reservation_stop(*, session: PartnerSession) -> PartnerSession:
    """AuthorizeRemoteReservationStop of a reservation made through Hubject: `cancel_requested`, then `canceled`, or
    back to RESERVATION with Hubject's reason."""
    return _follow_up(
        session,
        OicpOperation.AUTHORIZE_REMOTE_RESERVATION_STOP,
        (S.RESERVATION,),
        S.CANCEL_REQUESTED,
        {"EMPPartnerSessionId": str(session.pk)},  # sic: the reservation messages spell it with "Id"
        S.CANCELED_RESERVATION,
    )


def _evse_id_of(session: PartnerSession) -> str:
    return (
        PartnerEvse.objects.filter(location_id=session.location_id, uid=session.evse_uid)
        .values_list("evse_id", flat=True)
        .first()
    ) or session.evse_uid


def _call_and_apply(
    connection: OicpConnection,
    operation: str,
    body: dict[str, Any],
    session: PartnerSession,
    waiting: str,
    accepted: str,
    *,
    back: str | None = None,
) -> None:
    client = OicpClient(connection)
    try:
        answer = client.call(operation, body)
    except (OicpCallFailed, OicpDisabled) as error:
        state = back or S.FAILED
        session_services.partner_session_state_set(
            session_id=session.pk, state=state, reason=f"Hubject: {error}"[:255], only_from=[waiting]
        )
        return
    finally:
        client.close()
    if answer.get("Result"):
        session_services.partner_session_state_set(
            session_id=session.pk, state=accepted, reason="", only_from=[waiting]
        )
        return
    code = str((answer.get("StatusCode") or {}).get("Code", ""))
    state = back or _refused_state(code)
    session_services.partner_session_state_set(
        session_id=session.pk, state=state, reason=f"Hubject: {_text(answer)}", only_from=[waiting]
    )
    if code == "602" and OicpOperation.PULL_EVSE_STATUS in connection.enabled_operations:
        _refresh_status(connection, session)


def _refresh_status(connection: OicpConnection, session: PartnerSession) -> None:
    """The CPO says the EVSE is in use while our catalog may still say Available: ask Hubject for its status now
    (in the roaming worker, after this commit), so the driver search stops offering it."""
    from apps.roaming.oicp import tasks

    evse_id = _evse_id_of(session)
    transaction.on_commit(
        lambda: tasks.oicp_evse_status_by_id.apply_async((connection.pk, [evse_id]), queue=settings.OCPI_TASK_QUEUE),
        robust=True,
    )


# --------------------------------------------------------------------------- Hubject calls us (EMP file)


def _session_by_hubject_id(session_id: str) -> PartnerSession | None:
    return (
        PartnerSession.objects.filter(authorization_reference=session_id, partner__oicp_connection__isnull=False)
        .select_related("partner__tenant", "location")
        .first()
    )


def _evco(identification: dict[str, Any]) -> str:
    for value in identification.values():
        if isinstance(value, dict):
            for key in ("EvcoID", "UID"):
                if value.get(key):
                    return str(value[key])
    return ""


def _location_object(session: PartnerSession, evse_id: str) -> dict[str, Any]:
    """What an invoice line prints of the place (the shape billing reads from an OCPI CDR's `cdr_location`)."""
    place: PartnerLocation | None = session.location
    if place is None:
        return {"id": session.location_ocpi_id, "evse_id": evse_id}
    return {
        "id": place.ocpi_id,
        "name": place.name,
        "address": place.address,
        "city": place.city,
        "postal_code": place.postal_code,
        "country": place.country,
        "evse_uid": session.evse_uid,
        "evse_id": evse_id,
    }


def charge_detail_record(body: dict[str, Any]) -> tuple[str, str, PartnerCdr | None]:
    """A CDR Hubject forwards from the CPO: (code, info, the stored CDR). Only for a session we started through
    Hubject (else 400 "Session is invalid."); a second CDR for the same session changes nothing (009)."""
    session = _session_or_offline(body)
    if session is None:
        return "400", f"no session {body['SessionID']} of ours", None
    start, end = parse_stamp(body["SessionStart"]), parse_stamp(body["SessionEnd"])
    if end < start:
        return "022", "SessionEnd is before SessionStart", None
    charging = (parse_stamp(body["ChargingEnd"]) - parse_stamp(body["ChargingStart"])).total_seconds()
    energy = Decimal(str(body["ConsumedEnergy"])).quantize(Decimal("0.0001"))
    if energy < 0:
        return "022", "ConsumedEnergy is negative", None
    tenant = session.partner.tenant
    country_code, party_id = session.country_code, session.party_id
    data = {
        "oicp": body,
        "cdr_location": _location_object(session, str(body["EvseID"])),
        "cost_unknown": True,  # OICP CDRs carry no price: the CPO's cost is settled under the Hubject contract
    }
    with transaction.atomic():  # the CDR and the completed session are seen together
        cdr = session_services.partner_cdr_create(
            tenant_id=tenant.pk,
            partner_id=session.partner_id,
            cdr=session_services.PartnerCdrData(
                country_code=country_code,
                party_id=party_id,
                ocpi_id=str(body["SessionID"]),
                session_ocpi_id="",
                authorization_reference=str(body["SessionID"]),
                token_uid=_evco(body.get("Identification") or {}),
                fields={
                    "start_date_time": start,
                    "end_date_time": end,
                    "currency": _currency(session),
                    "total_energy": energy,
                    "total_time": (Decimal(max(0.0, charging)) / 3600).quantize(Decimal("0.000001")),
                    "total_cost_excl_vat": Decimal(0),
                    "total_cost_incl_vat": None,
                    "credit": False,
                    "credit_reference_id": "",
                },
                data=data,
                last_updated=timezone.now(),
            ),
        )
        if cdr is None:
            return "009", f"the CDR of session {body['SessionID']} was received already", None
        session_services.partner_session_oicp_update(
            session_id=session.pk, state=S.COMPLETED, start=start, end=end, kwh=energy
        )
    return "000", "", cdr


def _currency(session: PartnerSession) -> str:
    rules = tariff_selectors.retail_rules(partner_ids={session.partner_id})
    _terms, currency = rules.get(session.partner_id, (None, ""))
    return currency or session.partner.tenant.currency


def charging_notification(body: dict[str, Any]) -> tuple[str, str]:
    """Start, Progress, End or Error of a session we started through Hubject: the driver's live view."""
    session = _session_or_offline(body)
    if session is None:
        return "400", f"no session {body['SessionID']} of ours"
    kind = body["Type"]
    if kind == "Start":
        session_services.partner_session_oicp_update(
            session_id=session.pk,
            state=S.ACTIVE,
            start=parse_stamp(body.get("ChargingStart") or body.get("SessionStart")),
            kwh=Decimal(0),
            only_from=NOT_YET_CHARGING,
        )
    elif kind == "Progress":
        session_services.partner_session_oicp_update(
            session_id=session.pk,
            state=S.ACTIVE,
            kwh=_energy(body.get("ConsumedEnergyProgress")),
            only_from=NOT_YET_CHARGING,
        )
    elif kind == "End":
        session_services.partner_session_oicp_update(
            session_id=session.pk,
            state=S.COMPLETED,
            end=parse_stamp(body.get("ChargingEnd") or body.get("SessionEnd")),
            kwh=_energy(body.get("ConsumedEnergy")),
        )
    else:
        reason = f"{body.get('ErrorType', 'Error')}: {body.get('ErrorAdditionalInfo', '')}".strip(": ")
        session_services.partner_session_oicp_update(session_id=session.pk, reason=reason)
    return "000", ""


def _energy(value: Any) -> Decimal | None:
    if value is None:
        return None
    number = _decimal(value)
    return number.quantize(Decimal("0.0001")) if number is not None and number >= 0 else None


# --------------------------------------------------------------------------- Hubject asks us to authorize our driver


def _identity(identification: dict[str, Any]) -> tuple[str, str]:
    """(EvcoID, RFID UID) named by an OICP Identification (either may be empty)."""
    evco = uid = ""
    for value in identification.values():
        if isinstance(value, dict):
            evco = evco or str(value.get("EvcoID") or "")
            uid = uid or str(value.get("UID") or "")
    return evco, uid


def _our_token(identification: dict[str, Any]) -> tuple[OicpConnection, Token] | None:
    """Our token (a tenant's own, not a cached roaming one) that the identification names, with the Hubject
    connection of its tenant we are EMP on: an EvcoID by its ProviderID prefix, a bare RFID UID among all of them."""
    evco, uid = _identity(identification)
    connections = list(
        OicpConnection.objects.filter(enabled=True).exclude(provider_id="").select_related("partner", "tenant")
    )
    if evco:
        connections = [c for c in connections if normalized(evco).startswith(normalized(c.provider_id))]
    tokens = Token.objects.filter(tenant_id__in=[c.tenant_id for c in connections], source=TokenSource.LOCAL)
    token = (
        tokens.filter(contract_id__iexact=evco).order_by("pk").first()
        if evco
        else tokens.filter(uid__iexact=uid).order_by("pk").first()
        if uid
        else None
    )
    if token is None:
        return None
    connection = next(c for c in connections if c.tenant_id == token.tenant_id)
    return connection, Token.objects.select_related("driver", "business_customer", "business_contract").get(pk=token.pk)


def _authorization(status: str, code: str, info: str = "", **extra: Any) -> dict[str, Any]:
    text = {"000": "Success.", "102": "RFID Authentication failed – invalid UID.", "400": "Session is invalid."}  # noqa: RUF001
    status_code = {"Code": code, "Description": text.get(code, "")}
    if info:
        status_code["AdditionalInfo"] = info[:1000]
    answer = {**{k: v for k, v in extra.items() if v}, "AuthorizationStatus": status, "StatusCode": status_code}
    return answer


def _open(connection: OicpConnection, token: Token, session_id: str, evse_id: str, operator_id: str) -> PartnerSession:
    """The driver's partner session under Hubject's SessionID (found again when it exists), PENDING."""
    evse = (
        PartnerEvse.objects.filter(location__partner_id=connection.partner_id, evse_id__iexact=evse_id)
        .select_related("location")
        .first()
        if evse_id
        else None
    )
    country_code, party_id = _party(operator_id)
    with transaction.atomic():
        session = (
            PartnerSession.objects.select_for_update()
            .filter(tenant_id=token.tenant_id, authorization_reference=session_id)
            .first()
            if session_id
            else None
        )
        if session is None:
            session = session_services.partner_session_request(
                partner_id=connection.partner_id,
                token=token,
                state=S.PENDING,
                country_code=country_code,
                party_id=party_id,
                location_id=evse.location_id if evse is not None else None,
                location_ocpi_id=evse.location.ocpi_id if evse is not None else "",
                evse_uid=evse.uid if evse is not None else evse_id[:36],
                connector_id="",
                authorization_reference=session_id,
            )
    return session


def _session_or_offline(body: dict[str, Any]) -> PartnerSession | None:
    """The session we started or authorized under this SessionID; else, when the identification is one of our
    tokens, the session Hubject authorized offline from our PushAuthenticationData (we learn of it only now, from its
    notification or CDR): opened for the token's driver."""
    session_id = str(body["SessionID"])
    session = _session_by_hubject_id(session_id)
    if session is not None:
        return session
    found = _our_token(body.get("Identification") or {})
    if found is None:
        return None
    connection, token = found
    if OicpOperation.PUSH_AUTHENTICATION_DATA not in connection.enabled_operations:
        return None  # Hubject holds none of our tokens: it cannot have authorized this one offline
    evse_id = str(body.get("EvseID") or "")
    _open(connection, token, session_id, evse_id, str(body.get("OperatorID") or evse_id))  # DE*ABC*E1: DE, ABC
    return _session_by_hubject_id(session_id)


def authorize_start(body: dict[str, Any]) -> dict[str, Any]:
    """AuthorizeStart from a CPO through Hubject: may our driver charge there? Authorized opens the driver's partner
    session under Hubject's SessionID (its CDR and notifications find it); NotAuthorized says why (102)."""
    session_id = str(body.get("SessionID") or "")
    ids: dict[str, Any] = {"SessionID": session_id, "CPOPartnerSessionID": body.get("CPOPartnerSessionID")}
    found = _our_token(body["Identification"])
    if found is None:
        return _authorization("NotAuthorized", "102", "not a token of ours", **ids)
    connection, token = found
    status, reason = token_status(token=token, at=timezone.now())
    if status != AuthorizationStatus.ACCEPTED:
        return _authorization("NotAuthorized", "102", f"the token is {status.lower()} ({reason})", **ids)
    session = _open(connection, token, session_id, str(body.get("EvseID") or ""), str(body["OperatorID"]))
    return _authorization(
        "Authorized", "000", ProviderID=connection.provider_id, EMPPartnerSessionID=str(session.pk), **ids
    )


def _may_stop(identification: dict[str, Any], started: Token) -> bool:
    """The card that started the session, or another usable card of the same driver or business customer."""
    evco, uid = _identity(identification)
    if (evco and evco.lower() == started.contract_id.lower()) or (uid and uid.lower() == started.uid.lower()):
        return True
    found = _our_token(identification)
    if found is None:
        return False
    _connection, other = found
    same_owner = (other.driver_id is not None and other.driver_id == started.driver_id) or (
        other.business_customer_id is not None and other.business_customer_id == started.business_customer_id
    )
    return same_owner and token_status(token=other, at=timezone.now())[0] == AuthorizationStatus.ACCEPTED


def authorize_stop(body: dict[str, Any]) -> dict[str, Any]:
    """AuthorizeStop: may this identification stop our driver's session? The card that started it, or another
    usable card of the same driver or business customer (a second card in the household's car)."""
    session_id = str(body["SessionID"])
    ids: dict[str, Any] = {"SessionID": session_id, "CPOPartnerSessionID": body.get("CPOPartnerSessionID")}
    session = _session_by_hubject_id(session_id)
    if session is None or session.token_id is None:
        return _authorization("NotAuthorized", "400", f"no session {session_id} of ours", **ids)
    token = Token.objects.get(pk=session.token_id)
    if not _may_stop(body["Identification"], token):
        return _authorization("NotAuthorized", "102", "neither the card that started it nor one of its owner", **ids)
    return _authorization(
        "Authorized",
        "000",
        ProviderID=connection_of(session.partner).provider_id,  # type: ignore[union-attr]
        EMPPartnerSessionID=str(session.pk),
        **ids,
    )
