"""Our EVSEs at Hubject (OICP 2.3, we are CPO): PushEvseData and PushEvseStatus.

- **EVSE data.** `evse_data_sync(connection)` sends what Hubject should hold: every EVSE of the tenant at a published
  location, not decommissioned, whose eMI3 id is an EvseID of our OperatorID (others are counted as skipped: Hubject
  refuses them, 018). The first sync, and any sync asked `full=True` (the admin's action), is one `fullLoad`: Hubject
  replaces our records with these. Afterwards a sync sends only the difference with what Hubject acknowledged
  (`OicpEvseState`, the record itself): `insert` for new EVSEs, `update` for changed records, `delete` (with the
  record Hubject has) for EVSEs gone, in chunks of `CHUNK`. A delta Hubject refuses means our view of its data is
  wrong: the states are dropped and the next sync is a fullLoad again.
- **EVSE status.** `evse_status_push(connection, evse_pks)` sends the current status of those EVSEs (`update`), read
  when sent; `evse_status_full_load` all of them after a data fullLoad. Status changes arrive through the outbox
  (`apps.roaming.oicp.subscribers`) and a Celery task per change; both syncs run under a row lock on the connection,
  so one connection's pushes go one at a time and in order ("sequential" in Hubject's words), and each sends the
  state at that moment, so the last push is always the current state.

Every body is validated against Hubject's CPO file by the client before it is sent (`client.OicpClient.call`).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.roaming.models import OicpConnection, OicpEvseState, OicpOperation
from apps.roaming.ocpi.objects import alpha3, evse_status
from apps.roaming.oicp.client import OicpCallFailed, OicpClient, OicpDisabled
from apps.roaming.oicp.schema import OicpValidationError
from apps.stations.models import ChargePoint, Connector, Evse, Location

CHUNK = 500  # records per delta request
EVSE_ID = re.compile(r"^[A-Za-z]{2}\*?[A-Za-z0-9]{3}\*?E[A-Za-z0-9*]{1,30}$")  # the files' ISO form
HOUSE_NUMBER = re.compile(r"^(?P<street>.*?[^\d\s,])[\s,]+(?P<number>\d+\s?[A-Za-z]?(?:\s?[-/]\s?\d+[A-Za-z]?)?)$")

PLUGS: dict[tuple[str, str | None], str] = {
    (Connector.Standard.IEC_62196_T2, Connector.Format.SOCKET): "Type 2 Outlet",
    (Connector.Standard.IEC_62196_T2, Connector.Format.CABLE): "Type 2 Connector (Cable Attached)",
    (Connector.Standard.IEC_62196_T2_COMBO, None): "CCS Combo 2 Plug (Cable Attached)",
    (Connector.Standard.IEC_62196_T1, None): "Type 1 Connector (Cable Attached)",
    (Connector.Standard.IEC_62196_T1_COMBO, None): "CCS Combo 1 Plug (Cable Attached)",
    (Connector.Standard.CHADEMO, None): "CHAdeMO",
    (Connector.Standard.DOMESTIC_F, None): "Type F Schuko",
    (Connector.Standard.TESLA_S, None): "Tesla Connector",
}
ACCESSIBILITY_LOCATION = {
    Location.ParkingType.ON_STREET: "OnStreet",
    Location.ParkingType.PARKING_LOT: "ParkingLot",
    Location.ParkingType.PARKING_GARAGE: "ParkingGarage",
    Location.ParkingType.UNDERGROUND_GARAGE: "UndergroundParkingGarage",
}
# OCPI's EVSE status (objects.evse_status: OCPP status, online, decommissioned) -> OICP EvseStatus
OICP_STATUS = {
    "AVAILABLE": "Available",
    "BLOCKED": "Occupied",
    "CHARGING": "Occupied",
    "RESERVED": "Reserved",
    "INOPERATIVE": "OutOfService",
    "OUTOFORDER": "OutOfService",
    "PLANNED": "OutOfService",
    "REMOVED": "OutOfService",
    "UNKNOWN": "Unknown",
}


def normalized(identifier: str) -> str:
    """An OperatorID or EvseID without its optional separators (DE*VLT*E1 and DEVLTE1 are the same EVSE)."""
    return re.sub(r"[*\-]", "", identifier).upper()


def is_ours(connection: OicpConnection, evse_id: str) -> bool:
    return bool(
        connection.operator_id
        and EVSE_ID.match(evse_id)
        and normalized(evse_id).startswith(normalized(connection.operator_id) + "E")
    )


# --------------------------------------------------------------------------- records


def _street(address: str) -> tuple[str, str]:
    """'Stationsplein 12' -> ('Stationsplein', '12'); an address without a trailing number stays whole."""
    found = HOUSE_NUMBER.match(address.strip())
    if found and len(found["number"]) <= 10:
        return found["street"].strip(), found["number"].replace(" ", "")
    return address.strip(), ""


def _utc_offset(zone: str, at: dt.datetime) -> str:
    offset = at.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset() or dt.timedelta()
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _coordinate(value: Decimal) -> str:
    return f"{Decimal(value):.6f}"


def power_kw(connector: Connector) -> int:
    if connector.max_electric_power:
        watts = int(connector.max_electric_power)
    else:
        phases = 3 if connector.power_type == Connector.PowerType.AC_3_PHASE else 1
        watts = int(connector.max_voltage) * int(connector.max_amperage) * phases
    return min(999, max(1, round(watts / 1000)))


def _facility(connector: Connector) -> dict[str, Any]:
    if connector.standard == Connector.Standard.CHADEMO:
        modes = ["CHAdeMO"]
    else:
        modes = ["Mode_4"] if connector.power_type == Connector.PowerType.DC else ["Mode_3"]
    return {
        "PowerType": connector.power_type,
        "Voltage": min(999, int(connector.max_voltage)),
        "Amperage": min(99, int(connector.max_amperage)),
        "Power": power_kw(connector),
        "ChargingModes": modes,
    }


def pool_id(connection: OicpConnection, location: Location) -> str:
    """The location as an eMI3 charging pool id (`DE*VLT*P42`): EMPs group our EVSEs into one place by it (without
    it, each charging station would be a place of its own in their apps)."""
    separator = "*" if "*" in connection.operator_id else ""
    return f"{connection.operator_id}{separator}P{location.pk}"


def evse_data_record(
    connection: OicpConnection, evse: Evse, charge_point: ChargePoint, location: Location, connectors: list[Connector]
) -> dict[str, Any]:
    """The EvseDataRecord of one of our EVSEs (the CPO file's required fields and what we know beyond them)."""
    street, number = _street(location.address)
    plugs = list(dict.fromkeys(PLUGS.get((c.standard, c.format)) or PLUGS[(c.standard, None)] for c in connectors))
    if not connectors:  # described by nobody yet: the charger's default plug, as the OCPI EVSE object shows it
        connectors = [Connector(evse=evse)]
        plugs = [PLUGS[(Connector.Standard.IEC_62196_T2, Connector.Format.SOCKET)]]
    record: dict[str, Any] = {
        "EvseID": evse.evse_uid,
        "ChargingPoolID": pool_id(connection, location),
        "ChargingStationId": charge_point.identity[:50],
        "ChargingStationNames": [{"lang": connection.tenant.language[:2] or "en", "value": location.name[:150]}],
        "Address": {
            "Country": alpha3(location.country),
            "City": location.city[:50],
            "Street": street[:100],
            "PostalCode": location.postal_code[:10],
            "HouseNum": number,
            "TimeZone": _utc_offset(location.timezone, timezone.now()),
        },
        "GeoCoordinates": {
            "DecimalDegree": {
                "Latitude": _coordinate(location.latitude),
                "Longitude": _coordinate(location.longitude),
            }
        },
        "Plugs": plugs,
        "ChargingFacilities": [_facility(c) for c in connectors],
        "RenewableEnergy": False,
        "CalibrationLawDataAvailability": "Not Available",
        "AuthenticationModes": ["NFC RFID Classic", "REMOTE"],
        "PaymentOptions": ["Contract"],
        "ValueAddedServices": ["Reservation"],
        "Accessibility": "Free publicly accessible",
        "HotlinePhoneNumber": connection.hotline_phone_number,
        "IsOpen24Hours": bool(location.opening_24_7),
        "IsHubjectCompatible": True,
        "DynamicInfoAvailable": "true",
    }
    if charge_point.vendor:
        record["HardwareManufacturer"] = charge_point.vendor[:50]
    if location.parking_type in ACCESSIBILITY_LOCATION:
        record["AccessibilityLocation"] = ACCESSIBILITY_LOCATION[location.parking_type]  # type: ignore[index]
    return record


@dataclass
class Network:
    """What Hubject should hold of the tenant's network: EvseID -> (EVSE pk, record); EVSEs left out."""

    records: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _evses(connection: OicpConnection) -> Iterable[tuple[Evse, list[Connector]]]:
    evses = list(
        Evse.objects.filter(
            tenant_id=connection.tenant_id,
            decommissioned_at__isnull=True,
            charge_point__decommissioned_at__isnull=True,
            charge_point__location__publish=True,
            charge_point__location__decommissioned_at__isnull=True,
        )
        .select_related("charge_point__location")
        .order_by("pk")
    )
    connectors: dict[int, list[Connector]] = {}
    for connector in Connector.objects.filter(evse__in=evses).order_by("evse_id", "id"):
        connectors.setdefault(connector.evse_id, []).append(connector)
    return [(evse, connectors.get(evse.pk, [])) for evse in evses]


def network(connection: OicpConnection) -> Network:
    found = Network()
    for evse, connectors in _evses(connection):
        if not is_ours(connection, evse.evse_uid):
            found.skipped.append(evse.evse_uid)
            continue
        charge_point = evse.charge_point
        assert charge_point.location is not None
        record = evse_data_record(connection, evse, charge_point, charge_point.location, connectors)
        found.records.setdefault(evse.evse_uid, (evse.pk, record))
    return found


# --------------------------------------------------------------------------- EVSE data


@dataclass
class SyncResult:
    action: str = "none"  # fullLoad or delta
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    refused: str = ""  # Hubject's StatusCode and text when it refused a request

    @property
    def sent(self) -> int:
        return self.inserted + self.updated + self.deleted


def _body(connection: OicpConnection, action: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ActionType": action,
        "OperatorEvseData": {
            "OperatorID": connection.operator_id,
            "OperatorName": connection.tenant.name[:100],
            "EvseDataRecord": records,
        },
    }


def refusal(answer: dict[str, Any]) -> str:
    if answer.get("Result") is True:
        return ""
    code = answer.get("StatusCode") or {}
    return f"{code.get('Code', '')} {code.get('Description', '')} {code.get('AdditionalInfo', '')}".strip()


def _locked(connection_id: int) -> OicpConnection:
    return OicpConnection.objects.select_for_update().select_related("tenant", "partner").get(pk=connection_id)


def evse_data_sync(*, connection_id: int, full: bool = False) -> SyncResult:
    """Bring Hubject's copy of our EVSE data up to date (see the module's docstring). Raises the client's
    OicpCallFailed when Hubject cannot be reached (the task retries) once what was acknowledged before, and the
    operation's last error, are stored; a refusal is returned in `refused`."""
    failure: Exception | None = None
    with transaction.atomic():
        connection = _locked(connection_id)
        if not connection.enabled or OicpOperation.PUSH_EVSE_DATA not in connection.enabled_operations:
            return SyncResult()
        wanted = network(connection)
        states = {state.evse_id: state for state in OicpEvseState.objects.filter(connection=connection)}
        client = OicpClient(connection)
        try:
            if full or not states:
                result = _full_load(connection, client, wanted)
            else:
                result = _deltas(connection, client, wanted, states)
        except (OicpCallFailed, OicpDisabled, OicpValidationError) as error:
            failure, result = error, SyncResult()
        finally:
            client.close()
        result.skipped = len(wanted.skipped)
    if failure is not None:
        raise failure
    return result


def _full_load(connection: OicpConnection, client: OicpClient, wanted: Network) -> SyncResult:
    result = SyncResult(action="fullLoad")
    records = [record for _, record in wanted.records.values()]
    answer = client.call(OicpOperation.PUSH_EVSE_DATA, _body(connection, "fullLoad", records))
    if refused := refusal(answer):
        result.refused = refused
        return result
    now = timezone.now()
    OicpEvseState.objects.filter(connection=connection).delete()
    OicpEvseState.objects.bulk_create(
        OicpEvseState(connection=connection, evse_id=evse_id, evse_pk=pk, record=record, pushed_at=now)
        for evse_id, (pk, record) in wanted.records.items()
    )
    result.inserted = len(records)
    if OicpOperation.PUSH_EVSE_STATUS in connection.enabled_operations:
        _status_call(connection, client, "fullLoad", [pk for pk, _ in wanted.records.values()])
    return result


def _deltas(
    connection: OicpConnection, client: OicpClient, wanted: Network, states: dict[str, OicpEvseState]
) -> SyncResult:
    result = SyncResult(action="delta")
    inserts = [evse_id for evse_id in wanted.records if evse_id not in states]
    updates = [e for e, (_, record) in wanted.records.items() if e in states and states[e].record != record]
    deletes = [evse_id for evse_id in states if evse_id not in wanted.records]
    now = timezone.now()
    for action, evse_ids in (("delete", deletes), ("insert", inserts), ("update", updates)):
        for start in range(0, len(evse_ids), CHUNK):
            chunk = evse_ids[start : start + CHUNK]
            records = [states[e].record if action == "delete" else wanted.records[e][1] for e in chunk]
            answer = client.call(OicpOperation.PUSH_EVSE_DATA, _body(connection, action, records))
            if refused := refusal(answer):
                # our view of Hubject's data is wrong (or the data is): start over with a fullLoad next time
                OicpEvseState.objects.filter(connection=connection).delete()
                result.refused = refused
                return result
            if action == "delete":
                OicpEvseState.objects.filter(connection=connection, evse_id__in=chunk).delete()
                result.deleted += len(chunk)
                continue
            for evse_id in chunk:
                pk, record = wanted.records[evse_id]
                OicpEvseState.objects.update_or_create(
                    connection=connection, evse_id=evse_id, defaults={"evse_pk": pk, "record": record, "pushed_at": now}
                )
            if action == "insert":
                result.inserted += len(chunk)
            else:
                result.updated += len(chunk)
    if inserts and OicpOperation.PUSH_EVSE_STATUS in connection.enabled_operations:
        _status_call(connection, client, "update", [wanted.records[e][0] for e in inserts])
    return result


# --------------------------------------------------------------------------- EVSE status


def status_records(connection: OicpConnection, evse_pks: Iterable[int]) -> list[dict[str, str]]:
    """The current OICP status of those of the EVSEs that Hubject holds (the EvseID it knows)."""
    rows = OicpEvseState.objects.filter(connection=connection, evse_pk__in=list(evse_pks))
    held = dict(rows.values_list("evse_pk", "evse_id"))
    evses = Evse.objects.filter(pk__in=held).select_related("charge_point").order_by("pk")
    return [
        {"EvseID": held[evse.pk], "EvseStatus": OICP_STATUS[evse_status(evse, evse.charge_point)]}
        for evse in evses
        if evse.pk in held
    ]


def _status_call(connection: OicpConnection, client: OicpClient, action: str, evse_pks: list[int]) -> str:
    records = status_records(connection, evse_pks)
    if not records and action != "fullLoad":
        return ""
    body = {
        "ActionType": action,
        "OperatorEvseStatus": {
            "OperatorID": connection.operator_id,
            "OperatorName": connection.tenant.name[:100],
            "EvseStatusRecord": records,
        },
    }
    return refusal(client.call(OicpOperation.PUSH_EVSE_STATUS, body))


def evse_status_push(*, connection_id: int, evse_pks: list[int]) -> int:
    """Send the current status of these EVSEs (those Hubject holds); the number sent. A refusal is recorded on the
    operation (admin) and not retried: the next change sends the state again."""
    failure: Exception | None = None
    with transaction.atomic():
        connection = _locked(connection_id)
        if not connection.enabled or OicpOperation.PUSH_EVSE_STATUS not in connection.enabled_operations:
            return 0
        client = OicpClient(connection)
        try:
            records = status_records(connection, evse_pks)
            if records:
                _status_call(connection, client, "update", evse_pks)
        except (OicpCallFailed, OicpDisabled, OicpValidationError) as error:
            failure = error  # recorded on the operation by the client: kept, the transaction commits
        finally:
            client.close()
    if failure is not None:
        raise failure
    return len(records)


def connections_pushing(*, tenant_id: int, operation: str) -> list[int]:
    """The tenant's enabled Hubject connections (with an OperatorID) that call `operation`."""
    return list(
        OicpConnection.objects.filter(tenant_id=tenant_id, enabled=True, enabled_operations__contains=[operation])
        .exclude(operator_id="")
        .values_list("pk", flat=True)
    )
