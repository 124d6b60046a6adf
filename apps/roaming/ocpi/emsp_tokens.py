"""OCPI 2.2.1 tokens module, Sender interface (we are eMSP; mod_tokens.asciidoc "Sender Interface"):

- `GET /ocpi/emsp/2.2.1/tokens[?date_from&date_to&offset&limit]`: our tenant's own tokens (RFID, APP_USER,
  AD_HOC_USER, OTHER) as Token objects of our party towards the partner, paginated (transport.paginate), ordered by
  (last_updated, id) on an index of the tenant's local tokens;
- `POST /ocpi/emsp/2.2.1/tokens/{token_uid}/authorize[?type=RFID]` with an optional LocationReferences body:
  real-time authorization, answered with an AuthorizationInfo (`apps.roaming.emsp_tokens` decides, with our
  chargers' own rules). Unknown token (another tenant's, a partner's, another type): HTTP 404 with 2004 and no data.
  Malformed LocationReferences or type: 2001 naming the field, and nothing is recorded.
Only partners towards which we play EMSP (`our_roles`) with the tokens module enabled reach these.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.customers.authorization import Reason
from apps.customers.models import Token, TokenType
from apps.roaming import emsp_tokens
from apps.roaming.models import Module, RoamingPartner
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.transport import (
    CLIENT_ERROR,
    INVALID_PARAMETERS,
    UNKNOWN_TOKEN,
    OcpiError,
    OcpiRequest,
    envelope,
    ocpi_datetime,
    ocpi_view,
    paginate,
)

PATH = "/ocpi/emsp/2.2.1/tokens"
TOKEN_TYPES = tuple(TokenType.values)


def _cut(value: str, length: int) -> str:
    return value[:length]


def token_object(
    token: Token, partner: RoamingPartner, *, issuer: str, at: dt.datetime | None = None
) -> dict[str, Any]:
    """Our token as an OCPI Token of our party towards `partner` (mod_tokens_token_object). `issuer`: the tenant's
    name, for tokens without one of their own; a token without an eMAID gets its uid as contract_id (unique here)."""
    valid, whitelist = emsp_tokens.ocpi_state(token, at=at)
    document: dict[str, Any] = {
        "country_code": partner.our_country_code,
        "party_id": partner.our_party_id,
        "uid": token.uid,
        "type": token.type,
        "contract_id": token.contract_id or token.uid,
        "issuer": _cut(token.issuer or issuer, 64),
        "valid": valid,
        "whitelist": whitelist,
        "last_updated": ocpi_datetime(token.updated_at),
    }
    if token.visual_number:
        document["visual_number"] = token.visual_number
    if token.group_id:
        document["group_id"] = token.group_id
    if token.language:
        document["language"] = token.language
    if token.default_profile_type:
        document["default_profile_type"] = token.default_profile_type
    if token.energy_contract_supplier_name:
        energy: dict[str, str] = {"supplier_name": token.energy_contract_supplier_name}
        if token.energy_contract_id:
            energy["contract_id"] = token.energy_contract_id
        document["energy_contract"] = energy
    return document


def _check_role(ocpi: OcpiRequest) -> None:
    if not emsp_tokens.serves_tokens(ocpi.partner):
        raise OcpiError(CLIENT_ERROR, "We are not your eMSP: no tokens Sender for you.", http_status=404)


@ocpi_view(methods=["GET"], module=Module.TOKENS, functional=True)
def tokens(ocpi: OcpiRequest) -> HttpResponse:
    _check_role(ocpi)
    partner = ocpi.partner
    issuer = partner.tenant.name
    now = timezone.now()
    return paginate(
        ocpi,
        emsp_tokens.token_list(partner=partner),
        lambda rows: [token_object(t, partner, issuer=issuer, at=now) for t in rows],
        updated_field="updated_at",
    )


# --------------------------------------------------------------------------- real-time authorization


def _messages() -> dict[str, str]:
    """The driver-facing text of each reason (AuthorizationInfo.info), in the active language."""
    return {
        Reason.ACCEPTED: gettext("Charging is allowed."),
        Reason.BLOCKED: gettext("This card is blocked. Please contact your charging provider."),
        Reason.NOT_VALID: gettext("This card is no longer valid."),
        Reason.PARENT_BLOCKED: gettext("The card this one is grouped with is blocked."),
        Reason.DRIVER_INACTIVE: gettext("Your charging account is inactive."),
        Reason.CUSTOMER_INACTIVE: gettext("Your company's charging account is inactive."),
        Reason.NO_CREDIT: gettext("Your charging account has no credit left."),
        Reason.TOKEN_EXPIRED: gettext("This card has expired."),
        Reason.CONTRACT_EXPIRED: gettext("Your charging contract has ended."),
        Reason.CONTRACT_NOT_STARTED: gettext("Your charging contract has not started yet."),
        Reason.LOCATION_NOT_ALLOWED: gettext("Your contract does not allow charging at this location."),
        Reason.OUTSIDE_TIME_WINDOW: gettext("Your contract does not allow charging at this time."),
    }


def info_text(reason: str, language: str) -> dict[str, str]:
    """DisplayText of the reason in `language` (the token's, else the tenant's; English when we lack it)."""
    with translation.override(language or "en"):
        text = _messages().get(reason) or gettext("Charging is not allowed.")
        return {"language": translation.get_language()[:2], "text": text[:512]}


def _token_type(ocpi: OcpiRequest) -> str:
    unknown = sorted(set(ocpi.http.GET) - {"type"})
    if unknown:
        raise OcpiError(INVALID_PARAMETERS, f"Unknown query parameter(s): {', '.join(unknown)}.")
    value = ocpi.http.GET.get("type", "RFID")
    if value not in TOKEN_TYPES:
        raise f.invalid("type", f"{value!r} is not one of {', '.join(TOKEN_TYPES)}.")
    return value


def parse_location_references(body: Any) -> tuple[str, list[str]] | None:
    """The optional LocationReferences (mod_tokens_locationreferences_class): location_id CiString(36) required,
    evse_uids a list of CiString(36); None when no body was sent."""
    if body is None:
        return None
    obj = f.as_object(body, "location")
    location_id = f.cistring(obj, "location_id", "location", 36)
    assert location_id is not None
    raw = obj.get("evse_uids")
    evse_uids: list[str] = []
    if raw is not None:
        if not isinstance(raw, list):
            raise f.invalid("location.evse_uids", "must be a list of EVSE uids.")
        for n, item in enumerate(raw):
            uid = f.cistring({f"evse_uids[{n}]": item}, f"evse_uids[{n}]", "location", 36)
            assert uid is not None
            evse_uids.append(uid)
    unknown = sorted(set(obj) - {"location_id", "evse_uids"})
    if unknown:
        raise f.invalid("location", f"unknown field(s): {', '.join(unknown)} (LocationReferences).")
    return location_id, evse_uids


@ocpi_view(methods=["POST"], module=Module.TOKENS, functional=True)
def authorize(ocpi: OcpiRequest, token_uid: str) -> HttpResponse:
    _check_role(ocpi)
    uid = f.segment(token_uid, "token_uid", 36)
    token_type = _token_type(ocpi)
    references = parse_location_references(ocpi.json_body())
    partner = ocpi.partner
    token = emsp_tokens.token_get(partner=partner, uid=uid, type=token_type)
    if token is None:
        raise OcpiError(UNKNOWN_TOKEN, f"Unknown token {uid!r} of type {token_type}.", http_status=404)
    location_id, evse_uids = references or ("", [])
    decision = emsp_tokens.token_authorize_for_partner(
        partner=partner, token=token, location_id=location_id, evse_uids=evse_uids
    )
    info: dict[str, Any] = {
        "allowed": decision.allowed,
        "token": token_object(token, partner, issuer=partner.tenant.name),
        "info": info_text(decision.reason, token.language or partner.tenant.language),
    }
    if decision.allowed == emsp_tokens.Allowed.ALLOWED:
        info["authorization_reference"] = decision.record.authorization_reference
        if references is not None:
            info["location"] = {"location_id": location_id, **({"evse_uids": evse_uids} if evse_uids else {})}
    return envelope(ocpi.http, info)
