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
