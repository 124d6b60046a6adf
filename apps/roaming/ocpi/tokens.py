"""OCPI 2.2.1 tokens module, Receiver interface (we are CPO; mod_tokens.asciidoc):
`{tokens}/{country_code}/{party_id}/{token_uid}[?type=]` with GET, PUT and PATCH.

Every field of a pushed Token is checked against the spec's rules (types, lengths, enums, cardinality, DateTime);
bad input is OCPI 2001 naming the field, and nothing stored changes. The URL's party must be the Token's and one
the partner registered; its uid and type (default RFID) must be the Token's.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.http import HttpResponse

from apps.customers.models import Token
from apps.roaming import tokens as token_store
from apps.roaming.models import PartnerToken
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.transport import (
    INVALID_PARAMETERS,
    UNKNOWN_TOKEN,
    OcpiError,
    OcpiRequest,
    envelope,
    ocpi_datetime,
    ocpi_view,
)
from apps.roaming.tokens import TokenData

TOKEN_TYPES = ("AD_HOC_USER", "APP_USER", "OTHER", "RFID")
WHITELIST_TYPES = ("ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER")
PROFILE_TYPES = ("CHEAP", "FAST", "GREEN", "REGULAR")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_PARTY = re.compile(r"^[A-Za-z0-9]{3}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2}$")


def parse_token(body: Any, prefix: str = "token") -> TokenData:
    """A complete Token object (PUT, or a PATCH merged onto the stored one), or OCPI 2001 naming the field."""
    obj = f.as_object(body, prefix)
    country_code = f.cistring(obj, "country_code", prefix, 2)
    party_id = f.cistring(obj, "party_id", prefix, 3)
    assert country_code is not None
    assert party_id is not None
    if not _COUNTRY.match(country_code):
        raise f.invalid(f"{prefix}.country_code", f"{country_code!r} is not an ISO 3166-1 alpha-2 country code.")
    if not _PARTY.match(party_id):
        raise f.invalid(f"{prefix}.party_id", f"{party_id!r} is not a 3-character party id (ISO 15118).")
    uid = f.cistring(obj, "uid", prefix, 36)
    token_type = f.enum(obj, "type", prefix, TOKEN_TYPES)
    contract_id = f.cistring(obj, "contract_id", prefix, 36)
    visual_number = f.string(obj, "visual_number", prefix, 64, required=False)
    issuer = f.string(obj, "issuer", prefix, 64)
    group_id = f.cistring(obj, "group_id", prefix, 36, required=False)
    valid = f.boolean(obj, "valid", prefix)
    whitelist = f.enum(obj, "whitelist", prefix, WHITELIST_TYPES)
    language = f.string(obj, "language", prefix, 2, required=False)
    if language and not _LANGUAGE.match(language):
        raise f.invalid(f"{prefix}.language", f"{language!r} is not an ISO 639-1 language code.")
    profile = f.enum(obj, "default_profile_type", prefix, PROFILE_TYPES, required=False)
    supplier, energy_contract_id = "", ""
    if obj.get("energy_contract") is not None:
        contract = f.as_object(obj["energy_contract"], f"{prefix}.energy_contract")
        supplier = f.string(contract, "supplier_name", f"{prefix}.energy_contract", 64) or ""
        energy_contract_id = f.string(contract, "contract_id", f"{prefix}.energy_contract", 64, required=False) or ""
    last_updated = f.datetime(obj, "last_updated", prefix)
    assert uid is not None
    assert token_type is not None
    assert contract_id is not None
    assert issuer is not None
    assert valid is not None
    assert whitelist is not None
    assert last_updated is not None
    return TokenData(
        country_code=country_code.upper(),
        party_id=party_id.upper(),
        uid=uid,
        type=token_type,
        contract_id=contract_id,
        issuer=issuer,
        valid=valid,
        whitelist=whitelist,
        last_updated=last_updated,
        visual_number=visual_number or "",
        group_id=group_id or "",
        language=(language or "").lower(),
        default_profile_type=profile or "",
        energy_contract_supplier_name=supplier,
        energy_contract_id=energy_contract_id,
    )


def token_json(token: Token, last_updated: Any) -> dict[str, Any]:
    """The OCPI Token object as stored (optional fields only when set)."""
    body: dict[str, Any] = {
        "country_code": token.country_code,
        "party_id": token.party_id,
        "uid": token.uid,
        "type": token.type,
        "contract_id": token.contract_id,
    }
    if token.visual_number:
        body["visual_number"] = token.visual_number
    body["issuer"] = token.issuer
    if token.group_id:
        body["group_id"] = token.group_id
    body["valid"] = token.valid
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
    body["last_updated"] = ocpi_datetime(last_updated)
    return body


def _type_param(ocpi: OcpiRequest) -> str | None:
    unknown = sorted(set(ocpi.http.GET) - {"type"})
    if unknown:
        raise OcpiError(INVALID_PARAMETERS, f"Unknown query parameter(s): {', '.join(unknown)}.")
    value = ocpi.http.GET.get("type")
    if value is None:
        return None
    if value not in TOKEN_TYPES:
        raise OcpiError(INVALID_PARAMETERS, f"type: {value!r} is not one of {', '.join(TOKEN_TYPES)}.")
    return value


def _check_identity(data: TokenData, *, country_code: str, party_id: str, uid: str, token_type: str | None) -> None:
    if (data.country_code, data.party_id) != (country_code.upper(), party_id.upper()):
        raise OcpiError(
            INVALID_PARAMETERS,
            f"token.country_code/party_id {data.country_code}/{data.party_id} differ from the URL's "
            f"{country_code}/{party_id}.",
        )
    if data.uid.lower() != uid.lower():
        raise OcpiError(INVALID_PARAMETERS, f"token.uid {data.uid!r} differs from the URL's {uid!r}.")
    if token_type is not None and data.type != token_type:
        raise OcpiError(INVALID_PARAMETERS, f"token.type {data.type} differs from the URL's type={token_type}.")


@ocpi_view(methods=["GET", "PUT", "PATCH"], module="tokens", functional=True)
def token(ocpi: OcpiRequest, country_code: str, party_id: str, token_uid: str) -> HttpResponse:
    f.segment(country_code, "country_code", 2)
    f.segment(party_id, "party_id", 3)
    f.segment(token_uid, "token_uid", 36)
    partner = ocpi.partner
    if (country_code.upper(), party_id.upper()) not in token_store.partner_parties(partner):
        raise OcpiError(
            INVALID_PARAMETERS, f"{country_code}/{party_id} is not a party you registered; push only your own tokens."
        )
    token_type = _type_param(ocpi)
    method = ocpi.http.method

    if method == "GET":
        found = token_store.partner_token_get(
            partner=partner, country_code=country_code, party_id=party_id, uid=token_uid, type=token_type or "RFID"
        )
        if found is None:
            raise OcpiError(UNKNOWN_TOKEN, f"Unknown token {token_uid} ({token_type or 'RFID'}).", http_status=404)
        stored, push = found
        return envelope(ocpi.http, token_json(stored, push.last_updated))

    body = ocpi.json_body()
    if method == "PUT":
        data = parse_token(body)
        _check_identity(data, country_code=country_code, party_id=party_id, uid=token_uid, token_type=token_type)
    else:  # PATCH: the given fields onto the stored token, then the whole is checked again
        patch = f.as_object(body, "token")
        f.datetime(patch, "last_updated", "token")  # required in every PATCH
        found = token_store.partner_token_get(
            partner=partner, country_code=country_code, party_id=party_id, uid=token_uid, type=token_type or "RFID"
        )
        if found is None:
            raise OcpiError(UNKNOWN_TOKEN, f"Unknown token {token_uid} ({token_type or 'RFID'}).", http_status=404)
        stored, push = found
        data = parse_token({**token_json(stored, push.last_updated), **patch})
        _check_identity(
            data, country_code=country_code, party_id=party_id, uid=token_uid, token_type=token_type or "RFID"
        )
    try:
        with transaction.atomic():
            token_store.partner_token_store(partner=partner, data=data)
    except token_store.TokenRefused as refused:
        raise OcpiError(INVALID_PARAMETERS, refused.message) from None
    return envelope(ocpi.http, None)


__all__ = ["PartnerToken", "parse_token", "token", "token_json"]
