"""Our eMSP objects as OCPI 2.2.1 sends them (mod_tokens.asciidoc Token), for every module that sends them: the
tokens Sender (GET and pushes) and the commands Sender (the `token` of START_SESSION and RESERVE_NOW).

The eMSP party of our own tokens is the tenant's party towards the partner (`our_country_code`/`our_party_id`).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.customers.authorization import AuthorizationStatus, token_status
from apps.customers.models import Token
from apps.roaming.models import RoamingPartner
from apps.roaming.ocpi.transport import ocpi_datetime


def contract_id(token: Token, partner: RoamingPartner) -> str:
    """Token.contract_id (CiString(36), required): the token's eMAID, else one made of our party and its uid (stable:
    the same token always gets the same contract id)."""
    if token.contract_id:
        return token.contract_id[:36]
    return f"{partner.our_country_code}-{partner.our_party_id}-{token.uid}"[:36]


def token_object(token: Token, partner: RoamingPartner) -> dict[str, Any]:
    """The Token object of one of our tokens for `partner` (optional fields only when set). `valid` is whether it may
    charge now (not blocked, not expired, its driver, customer and contract active), as our own chargers decide."""
    status, _reason = token_status(token=token, at=timezone.now())
    body: dict[str, Any] = {
        "country_code": (token.country_code or partner.our_country_code).upper(),
        "party_id": (token.party_id or partner.our_party_id).upper(),
        "uid": token.uid,
        "type": token.type,
        "contract_id": contract_id(token, partner),
    }
    if token.visual_number:
        body["visual_number"] = token.visual_number[:64]
    body["issuer"] = (token.issuer or partner.tenant.name)[:64]
    if token.group_id:
        body["group_id"] = token.group_id
    body["valid"] = status == AuthorizationStatus.ACCEPTED
    body["whitelist"] = token.whitelist
    if token.language:
        body["language"] = token.language
    if token.default_profile_type:
        body["default_profile_type"] = token.default_profile_type
    if token.energy_contract_supplier_name:
        energy: dict[str, str] = {"supplier_name": token.energy_contract_supplier_name}
        if token.energy_contract_id:
            energy["contract_id"] = token.energy_contract_id
        body["energy_contract"] = energy
    body["last_updated"] = ocpi_datetime(token.updated_at)
    return body
