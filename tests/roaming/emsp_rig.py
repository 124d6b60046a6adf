"""The eMSP receivers' test rig: the CPO simulator (apps/roaming/cpo_sim.py) registered with a tenant of ours that
plays eMSP towards it, and OCPI objects of that CPO to push."""

from __future__ import annotations

import copy
from typing import Any

from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import RoamingPartner
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tariffs.models import PartnerTariff
from apps.tenants.models import Tenant
from tests.roaming.factories import partner_for

EMSP_MODULES = ["locations", "tariffs", "sessions", "cdrs"]


def cpo_registered(ocpi_base: str, cpo: CpoSimulator, tenant: Tenant, **fields: Any) -> RoamingPartner:
    """The CPO simulator registered with us (token A -> B -> C) as `tenant`'s CPO partner; we play eMSP."""
    fields.setdefault("enabled_modules", EMSP_MODULES)
    partner, token_a = partner_for(
        tenant,
        name="Sim CPO",
        country_code=cpo.country_code,
        party_id=cpo.party_id,
        roles=["CPO"],
        our_roles=["EMSP"],
        **fields,
    )
    answer = cpo.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert answer["status_code"] == 1000, answer
    partner.refresh_from_db()
    return partner


def stored() -> list[tuple[Any, ...]]:
    """Every row the eMSP receivers may write, to compare before and after a refused request."""
    rows: list[tuple[Any, ...]] = []
    for model in (PartnerLocation, PartnerEvse, PartnerConnector, PartnerTariff, PartnerSession, PartnerCdr):
        rows += [(model.__name__, *row) for row in model.objects.order_by("pk").values_list()]
    return rows


def connector(connector_id: str = "1", **fields: Any) -> dict[str, Any]:
    return {
        "id": connector_id,
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 32,
        "max_electric_power": 22000,
        "tariff_ids": ["T1"],
        "last_updated": "2026-01-01T10:00:00Z",
        **fields,
    }


def evse(uid: str = "EVSE1", **fields: Any) -> dict[str, Any]:
    return {
        "uid": uid,
        "evse_id": f"NL*CPO*E{uid}",
        "status": "AVAILABLE",
        "capabilities": ["REMOTE_START_STOP_CAPABLE"],
        "connectors": [connector()],
        "last_updated": "2026-01-01T10:00:00Z",
        **fields,
    }


def location(cpo: CpoSimulator, location_id: str = "LOC1", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "id": location_id,
        "publish": True,
        "name": f"Station {location_id}",
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
        "evses": [evse()],
        "operator": {"name": "Sim Charging"},
        "time_zone": "Europe/Amsterdam",
        "last_updated": "2026-01-01T10:00:00Z",
        **fields,
    }


def tariff(cpo: CpoSimulator, tariff_id: str = "T1", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "id": tariff_id,
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.35, "vat": 21.0, "step_size": 1}]}],
        "last_updated": "2026-01-01T10:00:00Z",
        **fields,
    }


def session(cpo: CpoSimulator, session_id: str = "S1", token_uid: str = "CARD-1", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "id": session_id,
        "start_date_time": "2026-01-01T10:00:00Z",
        "kwh": 0,
        "cdr_token": {
            "country_code": "DE",
            "party_id": "ALP",
            "uid": token_uid,
            "type": "RFID",
            "contract_id": "DE-ALP-C00001",
        },
        "auth_method": "WHITELIST",
        "location_id": "LOC1",
        "evse_uid": "EVSE1",
        "connector_id": "1",
        "currency": "EUR",
        "status": "ACTIVE",
        "last_updated": "2026-01-01T10:00:00Z",
        **fields,
    }


def cdr(cpo: CpoSimulator, cdr_id: str = "CDR1", token_uid: str = "CARD-1", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": cpo.country_code,
        "party_id": cpo.party_id,
        "id": cdr_id,
        "start_date_time": "2026-01-01T10:00:00Z",
        "end_date_time": "2026-01-01T11:00:00Z",
        "session_id": "S1",
        "cdr_token": {
            "country_code": "DE",
            "party_id": "ALP",
            "uid": token_uid,
            "type": "RFID",
            "contract_id": "DE-ALP-C00001",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC1",
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "country": "NLD",
            "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
            "evse_uid": "EVSE1",
            "evse_id": "NL*CPO*EEVSE1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [
            {"start_date_time": "2026-01-01T10:00:00Z", "dimensions": [{"type": "ENERGY", "volume": 10.5}]}
        ],
        "total_cost": {"excl_vat": 3.675, "incl_vat": 4.45},
        "total_energy": 10.5,
        "total_time": 1.0,
        "last_updated": "2026-01-01T11:00:05Z",
        **fields,
    }


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)
