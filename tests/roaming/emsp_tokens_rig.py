"""Our tenant as eMSP with a CPO partner: the CPO simulator (apps/roaming/cpo_sim.py) registered with us over real
HTTP (token A -> B -> C), for the tokens Sender tests."""

from __future__ import annotations

from typing import Any

from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import RoamingPartner
from apps.tenants.models import Tenant
from tests.roaming.factories import partner_for


def cpo_registered(
    ocpi_base: str, tenant: Tenant, sim: CpoSimulator, modules: list[str] | None = None, **fields: Any
) -> RoamingPartner:
    """`sim` (a CPO) registered with `tenant`, for which we play EMSP, with the tokens module enabled."""
    partner, token_a = partner_for(
        tenant,
        name=fields.pop("name", "Sim CPO"),
        country_code=sim.country_code,
        party_id=sim.party_id,
        roles=["CPO"],
        our_roles=fields.pop("our_roles", ["EMSP"]),
        enabled_modules=modules or ["tokens"],
        **fields,
    )
    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert answer["status_code"] == 1000, answer
    partner.refresh_from_db()
    return partner


def tokens_url(sim: CpoSimulator) -> str:
    return sim.peer_endpoint("tokens", "SENDER")
