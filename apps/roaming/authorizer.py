"""The OCPI roaming authorizer (`settings.ROAMING_AUTHORIZERS`): what our chargers' Authorize and StartTransaction
ask about tokens that are not ours (apps.customers.services.token_authorize asks it for unknown tokens and for
roaming tokens whose whitelist is not ALWAYS).

- A token an eMSP pushed (or we cached earlier) is decided by its WhitelistType (mod_tokens.asciidoc):
  ALWAYS never comes here (the stored token decides); ALLOWED: the stored token decides, no network round trip
  (the spec lets the CPO choose); ALLOWED_OFFLINE and NEVER: real-time authorization at the token's eMSP. When that
  eMSP cannot be reached, this returns None: the customers layer then lets ALLOWED_OFFLINE tokens charge from the
  stored token and refuses NEVER tokens (reason roaming_no_answer).
- An unknown token is asked of every registered partner of the tenant with a tokens Sender endpoint, in order, until
  one knows it (`POST {tokens}/{uid}/authorize` with the LocationReferences; 404 or 2004 means "not mine").
The eMSP's Token in the answer is cached as a roaming Token (with its party), so the session started with it
carries the partner (ChargingSession.roaming_partner).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import quote

from django.conf import settings

from apps.customers import selectors as customer_selectors
from apps.customers.authorization import AuthorizationStatus, RoamingAuthorization, RoamingToken
from apps.customers.models import TokenSource, WhitelistType
from apps.roaming import services
from apps.roaming.models import CommandType, Module, PartnerStatus, RoamingCommand, RoamingPartner, TokenKind
from apps.roaming.ocpi import client
from apps.roaming.ocpi import fields as f
from apps.roaming.ocpi.tokens import parse_token
from apps.roaming.ocpi.transport import OcpiError
from apps.roaming.tokens import partner_parties
from apps.stations import selectors as station_selectors
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

COMMAND_AUTHORIZES = dt.timedelta(minutes=15)
ALLOWED_TO_STATUS = {
    "ALLOWED": (AuthorizationStatus.ACCEPTED, "allowed"),
    "BLOCKED": (AuthorizationStatus.BLOCKED, "blocked"),
    "EXPIRED": (AuthorizationStatus.EXPIRED, "expired"),
    "NO_CREDIT": (AuthorizationStatus.INVALID, "no_credit"),
    "NOT_ALLOWED": (AuthorizationStatus.INVALID, "not_allowed"),
}


def _usable(partner: RoamingPartner) -> bool:
    return (
        partner.status == PartnerStatus.REGISTERED
        and partner.their_token_kind in (TokenKind.B, TokenKind.C)
        and Module.TOKENS in (partner.enabled_modules or [])
        and bool(partner.endpoint_url("tokens", "SENDER"))
    )


def _partners_for(tenant: Tenant, country_code: str, party_id: str) -> list[RoamingPartner]:
    """The tenant's registered partners to ask: the token's eMSP when the party is known, else every one."""
    candidates = RoamingPartner.objects.filter(
        tenant=tenant, status=PartnerStatus.REGISTERED, enabled_modules__contains=[Module.TOKENS]
    ).order_by("pk")
    partners = [p for p in candidates if _usable(p)]
    if not country_code:
        return partners
    party = (country_code.upper(), party_id.upper())
    return [p for p in partners if party in partner_parties(p)]


def _commanded(tenant: Tenant, uid: str, at: dt.datetime) -> bool:
    """Did the token's eMSP send START_SESSION or RESERVE_NOW with it in the last 15 minutes? Then it authorized
    the token itself, and the CPO SHALL NOT ask again (mod_commands.asciidoc, StartSession/ReserveNow)."""
    return (
        RoamingCommand.objects.filter(
            partner__tenant=tenant,
            command__in=[CommandType.START_SESSION, CommandType.RESERVE_NOW],
            created_at__gte=at - COMMAND_AUTHORIZES,
            request__token__uid__iexact=uid,
        )
        .exclude(module="oicp")  # Hubject's starts: the Hubject authorizer answers them, with their SessionID
        .exists()
    )


def _location_references(location_id: Any | None) -> dict[str, Any] | None:
    if location_id is None:
        return None
    location = station_selectors.location_list().filter(pk=location_id).first()
    if location is None:
        return None
    return {"location_id": location.ocpi_id or str(location.pk)}


def _roaming_token(data: Any) -> RoamingToken | None:
    """The eMSP's Token from an AuthorizationInfo, when it is one (a malformed token is not cached)."""
    try:
        token = parse_token(data, prefix="authorization_info.token")
    except OcpiError as error:
        logger.warning("Real-time authorization answer with a malformed token: %s", error.message)
        return None
    return RoamingToken(
        uid=token.uid,
        contract_id=token.contract_id,
        issuer=token.issuer,
        country_code=token.country_code,
        party_id=token.party_id,
        type=token.type,
        visual_number=token.visual_number,
        group_id=token.group_id,
        valid=token.valid,
        whitelist=token.whitelist,
        language=token.language,
        default_profile_type=token.default_profile_type,
    )


def authorize_at_partner(
    partner: RoamingPartner, *, uid: str, token_type: str, location_id: Any | None
) -> RoamingAuthorization | None:
    """`POST {their tokens}/{uid}/authorize?type=`; None when they do not know the token (404 / 2004). Raises
    client.PartnerCallError when they cannot be reached or answer nonsense."""
    base = (partner.endpoint_url("tokens", "SENDER") or "").rstrip("/")
    url = f"{base}/{quote(uid, safe='')}/authorize?type={token_type}"
    try:
        answer = client.call(
            "POST",
            url,
            token=partner.their_token,
            token_style=partner.token_style,
            body=_location_references(location_id),
            routing=partner,
            timeout=float(getattr(settings, "OCPI_AUTHORIZE_TIMEOUT", 5)),
        )
    except client.PartnerCallError as error:
        if error.http_status == 404 or error.ocpi_status == 2004:
            return None
        raise
    info = answer.data
    if not isinstance(info, dict) or info.get("allowed") not in ALLOWED_TO_STATUS:
        raise client.PartnerCallError(f"POST {url}: the answer is not an AuthorizationInfo: {str(info)[:200]}")
    status, reason = ALLOWED_TO_STATUS[info["allowed"]]
    return RoamingAuthorization(
        status=status,
        reason=reason,
        token=_roaming_token(info.get("token")),
        authorization_reference=_reference(info),
    )


def _reference(info: dict[str, Any]) -> str:
    """AuthorizationInfo.authorization_reference (CiString(36)); a malformed one is left out (logged)."""
    try:
        return f.cistring(info, "authorization_reference", "authorization_info", 36, required=False) or ""
    except OcpiError as error:
        logger.warning("Real-time authorization answer with a malformed reference: %s", error.message)
        return ""


class OcpiAuthorizer:
    """A RoamingAuthorizer (apps.customers.authorization) over the OCPI tokens module."""

    def active_parties(self, *, tenant: Tenant) -> set[tuple[str, str]]:
        """The parties whose tokens may charge: those of the tenant's registered partners. A suspended, unregistered
        or deleted partner's tokens (pushed or cached) are refused until it is registered again."""
        parties: set[tuple[str, str]] = set()
        for partner in RoamingPartner.objects.filter(tenant=tenant, status=PartnerStatus.REGISTERED):
            parties |= partner_parties(partner)
        return parties

    def authorize(
        self, *, tenant: Tenant, id_tag: str, location_id: Any | None, at: dt.datetime
    ) -> RoamingAuthorization | None:
        token = customer_selectors.token_get(tenant=tenant, uid=id_tag)
        if token is not None and token.source != TokenSource.ROAMING:
            return None  # ours: never asked of anyone
        if token is not None and token.whitelist in (WhitelistType.ALWAYS, WhitelistType.ALLOWED):
            return None  # the stored token decides, without a round trip
        uid = token.uid if token is not None else id_tag
        if _commanded(tenant, uid, at):
            return RoamingAuthorization(status=AuthorizationStatus.ACCEPTED, reason="commanded")
        token_type = token.type if token is not None else "RFID"
        partners = _partners_for(tenant, token.country_code if token else "", token.party_id if token else "")
        for partner in partners:
            try:
                answer = authorize_at_partner(partner, uid=uid, token_type=token_type, location_id=location_id)
            except client.PartnerCallError as error:
                logger.warning("Real-time authorization of %s at %s failed: %s", uid, partner.party, error.message)
                services.partner_error_record(partner_id=partner.pk, module="tokens", message=error.message)
                continue
            if answer is not None and answer.token is not None and not _own_token(partner, uid, answer.token):
                message = (
                    f"Real-time authorization of {uid}: the answer carries token {answer.token.uid!r} of "
                    f"{answer.token.country_code}*{answer.token.party_id}, not one of this partner's; ignored."
                )
                logger.warning("%s (partner %s)", message, partner.party)
                services.partner_error_record(partner_id=partner.pk, module="tokens", message=message)
                continue
            if answer is not None:
                return answer
        return None


def _own_token(partner: RoamingPartner, uid: str, token: RoamingToken) -> bool:
    """An eMSP answers for its own tokens only: the asked uid, one of its parties (else it could plant a token in
    another eMSP's name, or take over another's uid)."""
    return token.uid.lower() == uid.lower() and (
        token.country_code.upper(),
        token.party_id.upper(),
    ) in partner_parties(partner)


__all__ = ["OcpiAuthorizer", "authorize_at_partner"]
