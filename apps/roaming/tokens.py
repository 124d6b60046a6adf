"""Tokens an eMSP partner pushes to us (OCPI tokens module, we are Receiver): writes and reads.

A pushed token is a `customers.Token` (source roaming, the eMSP's country code and party id), so Authorize,
StartTransaction, the OCPP local list, sessions, CDRs and exports treat it like any token; `PartnerToken` keeps
which partner pushed it and its `last_updated`. One uid per tenant (the Token table's rule, compared ignoring
case): a uid that is one of our own tokens, or another eMSP's, is refused, never overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Lower

from apps.core.errors import ApplicationError
from apps.customers import services as customer_services
from apps.customers.models import Token, TokenSource
from apps.roaming.models import PartnerToken, RoamingPartner


@dataclass(frozen=True)
class TokenData:
    """An OCPI 2.2.1 Token object, validated (apps.roaming.ocpi.tokens.parse_token)."""

    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str
    issuer: str
    valid: bool
    whitelist: str
    last_updated: dt.datetime
    visual_number: str = ""
    group_id: str = ""
    language: str = ""
    default_profile_type: str = ""
    energy_contract_supplier_name: str = ""
    energy_contract_id: str = ""

    def token_fields(self) -> dict[str, object]:
        fields = asdict(self)
        fields.pop("uid")
        fields.pop("last_updated")
        return fields


class TokenRefused(ApplicationError):
    """The push cannot be stored (another issuer's uid, a field our Token table refuses)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="token_refused")


def partner_parties(partner: RoamingPartner) -> set[tuple[str, str]]:
    """The (country code, party id) pairs the partner speaks for: its registered roles, else its configured party."""
    parties = {(partner.country_code.upper(), partner.party_id.upper())}
    for role in partner.credentials_roles or []:
        if isinstance(role, dict) and role.get("country_code") and role.get("party_id"):
            parties.add((str(role["country_code"]).upper(), str(role["party_id"]).upper()))
    return parties


def _locked(tenant_id: int, uid: str) -> Token | None:
    return (
        Token.objects.select_for_update()
        .alias(uid_ci=Lower("uid"))
        .filter(tenant_id=tenant_id, uid_ci=Lower(Value(uid)))
        .first()
    )


def _validation_message(error: ValidationError) -> str:
    parts = []
    for field, messages in error.message_dict.items():
        label = "token" if field == "__all__" else f"token.{field}"
        parts.append(f"{label}: {' '.join(str(m) for m in messages)}")
    return "; ".join(parts)


@transaction.atomic
def partner_token_store(*, partner: RoamingPartner, data: TokenData) -> Token:
    """PUT (or a PATCH merged by the caller): create or replace the partner's token. Refuses (TokenRefused, nothing
    written) a uid that belongs to our own tokens or to another eMSP."""
    customer_services.token_uid_lock(tenant_id=partner.tenant_id, uid=data.uid)
    token = _locked(partner.tenant_id, data.uid)
    party = (data.country_code.upper(), data.party_id.upper())
    if token is not None:
        if token.source != TokenSource.ROAMING:
            raise TokenRefused(f"token.uid: {data.uid!r} is the uid of a token this operator issued itself.")
        if (token.country_code.upper(), token.party_id.upper()) != party:
            raise TokenRefused(
                f"token.uid: {data.uid!r} is a token of {token.country_code}*{token.party_id}; uids are unique here."
            )
        pushed_by = PartnerToken.objects.filter(token=token).values_list("partner_id", flat=True).first()
        if pushed_by is not None and pushed_by != partner.pk:
            raise TokenRefused(f"token.uid: {data.uid!r} is a token another partner pushed; uids are unique here.")
    fields = {**data.token_fields(), "country_code": party[0], "party_id": party[1]}
    try:
        with transaction.atomic():
            if token is None:
                token = customer_services.token_create(
                    tenant=partner.tenant, uid=data.uid, source=TokenSource.ROAMING, **fields
                )
            else:
                token = customer_services.token_update(token=token, **fields)
    except ValidationError as error:
        raise TokenRefused(_validation_message(error)) from None
    PartnerToken.objects.update_or_create(token=token, defaults={"partner": partner, "last_updated": data.last_updated})
    return token


def partner_token_get(
    *, partner: RoamingPartner, country_code: str, party_id: str, uid: str, type: str | None
) -> tuple[Token, PartnerToken] | None:
    """A token this partner pushed, by its OCPI identity (country code, party id, uid ignoring case, and type when
    given)."""
    tokens = Token.objects.alias(uid_ci=Lower("uid")).filter(
        tenant_id=partner.tenant_id,
        uid_ci=Lower(Value(uid)),
        source=TokenSource.ROAMING,
        country_code__iexact=country_code,
        party_id__iexact=party_id,
        roaming_push__partner=partner,
    )
    if type is not None:
        tokens = tokens.filter(type=type)
    token = tokens.select_related("roaming_push").first()
    if token is None:
        return None
    return token, token.roaming_push
