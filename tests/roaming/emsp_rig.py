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
    fields.setdefault("roles", ["CPO"])
    fields.setdefault("our_roles", ["EMSP"])
    partner, token_a = partner_for(
        tenant, name="Sim CPO", country_code=cpo.country_code, party_id=cpo.party_id, **fields
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


# --------------------------------------------------------------------------- rows as a CPO partner sent them (walkers)


def _cpo_partner(tenant: Tenant) -> RoamingPartner:
    return partner_for(tenant, roles=["CPO"], our_roles=["EMSP"], enabled_modules=EMSP_MODULES)[0]


def partner_location_for(tenant: Tenant, partner: RoamingPartner | None = None) -> PartnerLocation:
    """A partner location of `tenant` with one EVSE and one connector."""
    from django.utils import timezone

    partner = partner or _cpo_partner(tenant)
    now = timezone.now()
    location = PartnerLocation.objects.create(
        tenant=tenant,
        partner=partner,
        country_code=partner.country_code,
        party_id=partner.party_id,
        ocpi_id=f"LOC-{partner.pk}",
        name=f"Partner station {partner.pk}",
        address="Stationsplein 1",
        city="Utrecht",
        country="NLD",
        latitude="52.089444",
        longitude="5.110278",
        data={"id": f"LOC-{partner.pk}"},
        last_updated=now,
    )
    evse = PartnerEvse.objects.create(
        location=location, uid="EVSE1", evse_id="NL*CPO*E1", status="AVAILABLE", last_updated=now
    )
    PartnerConnector.objects.create(
        evse=evse,
        connector_id="1",
        standard="IEC_62196_T2",
        format="SOCKET",
        power_type="AC_3_PHASE",
        max_voltage=230,
        max_amperage=32,
        tariff_ids=["T1"],
        last_updated=now,
    )
    return location


def partner_connector_for(tenant: Tenant) -> PartnerConnector:
    return PartnerConnector.objects.get(evse__location=partner_location_for(tenant))


def partner_tariff_for(tenant: Tenant) -> PartnerTariff:
    from django.utils import timezone

    partner = _cpo_partner(tenant)
    return PartnerTariff.objects.create(
        tenant=tenant,
        partner=partner,
        country_code=partner.country_code,
        party_id=partner.party_id,
        ocpi_id="T1",
        currency="EUR",
        data={"id": "T1"},
        last_updated=timezone.now(),
    )


def partner_session_for(tenant: Tenant) -> PartnerSession:
    from django.utils import timezone

    partner = _cpo_partner(tenant)
    return PartnerSession.objects.create(
        tenant=tenant,
        partner=partner,
        country_code=partner.country_code,
        party_id=partner.party_id,
        ocpi_id=f"S-{partner.pk}",
        state="ACTIVE",
        data={"id": f"S-{partner.pk}"},
        last_updated=timezone.now(),
    )


def partner_cdr_for(tenant: Tenant) -> PartnerCdr:
    from django.utils import timezone

    session = partner_session_for(tenant)
    now = timezone.now()
    return PartnerCdr.objects.create(
        tenant=tenant,
        partner=session.partner,
        country_code=session.country_code,
        party_id=session.party_id,
        ocpi_id=f"CDR-{session.pk}",
        session=session,
        start_date_time=now,
        end_date_time=now,
        currency="EUR",
        total_energy=10,
        total_time=1,
        total_cost_excl_vat=3,
        data={"id": f"CDR-{session.pk}"},
        last_updated=now,
    )


def hub_client_for(tenant: Tenant) -> Any:
    from django.utils import timezone

    from apps.roaming.models import HubClientInfo

    hub = partner_for(tenant, roles=["HUB"], our_roles=["EMSP"])[0]
    return HubClientInfo.objects.create(
        partner=hub, country_code="NL", party_id="CPO", role="CPO", status="CONNECTED", last_updated=timezone.now()
    )


def pull_state_for(tenant: Tenant) -> Any:
    from apps.roaming.models import PullState

    return PullState.objects.create(partner=_cpo_partner(tenant), module="locations")
