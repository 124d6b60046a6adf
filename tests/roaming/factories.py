from __future__ import annotations

from typing import Any

from apps.roaming import services
from apps.roaming.models import RoamingPartner
from apps.tenants.models import Tenant

_counter = iter(range(10**6))


def partner_for(tenant: Tenant, **fields: Any) -> tuple[RoamingPartner, str]:
    """A pending partner of `tenant` and its plain CREDENTIALS_TOKEN_A (through the service, as the API does)."""
    n = next(_counter)
    fields.setdefault("name", f"Partner {n}")
    fields.setdefault("country_code", "NL")
    fields.setdefault("party_id", f"P{n % 100:02d}")
    fields.setdefault("roles", ["EMSP"])
    fields.setdefault("our_country_code", tenant.ocpi_country_code or "DE")
    fields.setdefault("our_party_id", tenant.ocpi_party_id or "OWN")
    return services.partner_create(tenant=tenant, **fields)


RECEIVER_MODULES = ["locations", "tokens", "commands", "chargingprofiles"]


def registered(ocpi_base: str, sim: Any, tenant: Tenant, modules: list[str] | None = None) -> RoamingPartner:
    """The partner simulator registered with us (token A -> B -> C) as the tenant's partner of its party, with the
    CPO Receiver modules enabled."""
    partner, token_a = partner_for(
        tenant,
        name="Sim eMSP",
        country_code=sim.country_code,
        party_id=sim.party_id,
        enabled_modules=modules or RECEIVER_MODULES,
    )
    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert answer["status_code"] == 1000, answer
    partner.refresh_from_db()
    return partner
