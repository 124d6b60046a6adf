"""Our eMSP side against a simulated CPO over real HTTP (apps/roaming/cpo_sim.py): the CPO registered with us as a
partner of the tenant, one of its locations with an EVSE as the receivers would store it, a driver with a token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.customers.models import Driver, Token
from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import RoamingPartner
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tenants.models import Tenant
from tests.customers.factories import DriverFactory, TokenFactory
from tests.roaming.factories import partner_for

CPO_MODULES = ["credentials", "locations", "tariffs", "sessions", "cdrs", "tokens", "commands"]


def register_cpo(ocpi_base: str, cpo: CpoSimulator, tenant: Tenant, **fields: Any) -> RoamingPartner:
    """The simulated CPO registered with us (token A -> B -> C) as the tenant's partner: we play eMSP towards it."""
    fields.setdefault("enabled_modules", ["locations", "tariffs", "sessions", "cdrs", "tokens", "commands"])
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


def partner_evse(
    partner: RoamingPartner,
    *,
    location_id: str = "LOC-100",
    uid: str = "EVSE-100",
    evse_id: str = "NL*CPO*E100*1",
    connectors: tuple[str, ...] = ("1",),
) -> PartnerEvse:
    """A location of the partner with one EVSE (what the locations receiver stores)."""
    now = timezone.now()
    location, _ = PartnerLocation.objects.get_or_create(
        partner=partner,
        country_code=partner.country_code,
        party_id=partner.party_id,
        ocpi_id=location_id,
        defaults={
            "tenant": partner.tenant,
            "name": "Sim CPO Plaza",
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "country": "NLD",
            "latitude": "52.089400",
            "longitude": "5.110200",
            "last_updated": now,
        },
    )
    evse = PartnerEvse.objects.create(location=location, uid=uid, evse_id=evse_id, status="AVAILABLE", last_updated=now)
    for connector_id in connectors:
        PartnerConnector.objects.create(
            evse=evse,
            connector_id=connector_id,
            standard="IEC_62196_T2",
            format="SOCKET",
            power_type="AC_3_PHASE",
            max_voltage=230,
            max_amperage=32,
            last_updated=now,
        )
    return evse


@dataclass
class Driven:
    driver: Driver
    token: Token


def driver_with_token(tenant: Tenant, **token_fields: Any) -> Driven:
    driver = DriverFactory(tenant=tenant)
    token = TokenFactory(tenant=tenant, driver=driver, **token_fields)
    return Driven(driver, token)
