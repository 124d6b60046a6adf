"""Our tenant as eMSP towards CPO partners: its own tokens as they see them, and real-time authorization of them
(mod_tokens Sender). The wire side (views, the Token and AuthorizationInfo objects) is
`apps/roaming/ocpi/emsp_tokens.py`; the pushes to the CPOs' tokens Receivers are `apps/roaming/ocpi/push.py`
(object key `token:<pk>`).

What a CPO may decide alone must never let a token charge where our own chargers would refuse it, so the Token it
gets says so (`ocpi_state`):
- `valid` is the token's own status now (`customers.authorization.token_status`: blocked, not valid, expired, its
  driver's or business customer's account inactive or without credit, its contract over) and its group's (a blocked
  or invalid parent token refuses it, as `token_authorize` does); a contract that has not started yet leaves it valid
  but asks in real time (below);
- `whitelist` is the token's, made stricter where a CPO's cache cannot apply our rules: NEVER (always ask us) for a
  token whose contract restricts locations or hours or has not started yet; at most ALLOWED_OFFLINE (ask us when
  online) for a token or contract with an end date (the cache would not notice it pass).
Real-time authorization runs `customers.services.token_authorize`, the decision of our own chargers' Authorize, with
the location marked foreign (a contract's allowed locations are ours only); its reasons map to the OCPI AllowedType.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers import services as customer_services
from apps.customers.authorization import AuthorizationResult, AuthorizationStatus, Reason, token_expiry, token_status
from apps.customers.models import Contract, Token, TokenSource, WhitelistType
from apps.roaming.models import EmspAuthorization, RoamingPartner, Role


def serves_tokens(partner: RoamingPartner) -> bool:
    """Do we play eMSP towards this partner (its tokens Sender is ours)?"""
    return Role.EMSP in (partner.our_roles or [])


def token_list(*, partner: RoamingPartner) -> QuerySet[Token]:
    """The tenant's own tokens (source local) with what decides their OCPI `valid` and `whitelist` (account,
    contract, whether the contract restricts locations, whether the group's parent token refuses): one query per
    page, whatever the page size."""
    parent_refuses = (
        Token.objects.alias(uid_ci=Lower("uid"))
        .filter(tenant_id=OuterRef("tenant_id"), uid_ci=Lower(OuterRef("group_id")))
        .exclude(pk=OuterRef("pk"))
        .filter(Q(blocked=True) | Q(valid=False))
    )
    restricted = Contract.allowed_locations.through.objects.filter(contract_id=OuterRef("business_contract_id"))
    return (
        Token.objects.filter(tenant_id=partner.tenant_id, source=TokenSource.LOCAL)
        .select_related("driver", "business_customer", "business_contract")
        .annotate(parent_refuses=Exists(parent_refuses), contract_restricted=Exists(restricted))
    )


def token_get(*, partner: RoamingPartner, uid: str, type: str) -> Token | None:
    """One of the tenant's own tokens by uid (ignoring case, as every uid here) and type: the key of a Token for
    the CPO (mod_tokens: uid + type). Another tenant's token, a partner's token cached here, or another type: None."""
    return (
        token_list(partner=partner)
        .alias(uid_ci=Lower("uid"))
        .filter(uid_ci=Lower(Value(uid)), type=type)
        .order_by("pk")
        .first()
    )


def ocpi_state(token: Token, *, at: dt.datetime | None = None) -> tuple[bool, str]:
    """(`valid`, `whitelist`) of the Token a CPO gets (module docstring). `token` comes from `token_list`."""
    at = at or timezone.now()
    status, reason = token_status(token=token, at=at)
    not_started = reason == Reason.CONTRACT_NOT_STARTED
    valid = (status == AuthorizationStatus.ACCEPTED or not_started) and not getattr(token, "parent_refuses", False)
    whitelist = token.whitelist
    contract = token.business_contract
    if contract is not None and (contract.time_windows or getattr(token, "contract_restricted", False) or not_started):
        whitelist = WhitelistType.NEVER
    elif whitelist in (WhitelistType.ALWAYS, WhitelistType.ALLOWED) and token_expiry(token) is not None:
        whitelist = WhitelistType.ALLOWED_OFFLINE
    return valid, whitelist


# --------------------------------------------------------------------------- real-time authorization


class Allowed:
    """OCPI 2.2.1 AllowedType (mod_tokens_allowed_enum)."""

    ALLOWED = "ALLOWED"
    BLOCKED = "BLOCKED"
    EXPIRED = "EXPIRED"
    NO_CREDIT = "NO_CREDIT"
    NOT_ALLOWED = "NOT_ALLOWED"


# our authorization reasons (customers.authorization.Reason) -> AllowedType; NOT_ALLOWED is "valid, but not here"
ALLOWED_BY_REASON: dict[str, str] = {
    Reason.ACCEPTED: Allowed.ALLOWED,
    Reason.BLOCKED: Allowed.BLOCKED,
    Reason.NOT_VALID: Allowed.BLOCKED,  # invalidated: AllowedType has no "invalid"; NOT_ALLOWED says "Token is valid"
    Reason.PARENT_BLOCKED: Allowed.BLOCKED,
    Reason.DRIVER_INACTIVE: Allowed.BLOCKED,
    Reason.CUSTOMER_INACTIVE: Allowed.BLOCKED,
    Reason.NO_CREDIT: Allowed.NO_CREDIT,
    Reason.TOKEN_EXPIRED: Allowed.EXPIRED,
    Reason.CONTRACT_EXPIRED: Allowed.EXPIRED,
    Reason.CONTRACT_NOT_STARTED: Allowed.NOT_ALLOWED,
    Reason.LOCATION_NOT_ALLOWED: Allowed.NOT_ALLOWED,
    Reason.OUTSIDE_TIME_WINDOW: Allowed.NOT_ALLOWED,
}


def allowed_type(result: AuthorizationResult) -> str:
    """The AllowedType of our decision; a reason not listed (a new one) refuses, by its status."""
    found = ALLOWED_BY_REASON.get(result.reason)
    if found is not None:
        return found
    if result.accepted:
        return Allowed.ALLOWED
    return {AuthorizationStatus.BLOCKED: Allowed.BLOCKED, AuthorizationStatus.EXPIRED: Allowed.EXPIRED}.get(
        result.status, Allowed.NOT_ALLOWED
    )


@dataclass(frozen=True)
class Decision:
    allowed: str
    reason: str
    record: EmspAuthorization


def token_authorize_for_partner(
    *, partner: RoamingPartner, token: Token, location_id: str = "", evse_uids: list[str] | None = None
) -> Decision:
    """May our `token` charge at the partner's location (or at all, without one)? Our chargers' decision
    (`token_authorize`), recorded with a fresh `authorization_reference` when ALLOWED (the CPO's session and CDR
    carry it back to us)."""
    result = customer_services.token_authorize(
        tenant=partner.tenant, id_tag=token.uid, at=timezone.now(), foreign_location=True
    )
    if result.token is None or result.token.pk != token.pk:  # cannot happen: uids are unique per tenant
        result = AuthorizationResult(AuthorizationStatus.INVALID, token, None, None, Reason.UNKNOWN)
    allowed = allowed_type(result)
    reference = uuid.uuid4().hex if allowed == Allowed.ALLOWED else ""
    record = EmspAuthorization.objects.create(
        tenant_id=partner.tenant_id,
        partner=partner,
        token=token,
        allowed=allowed,
        reason=result.reason[:40],
        authorization_reference=reference,
        location_id=location_id,
        evse_uids=list(evse_uids or []),
    )
    return Decision(allowed=allowed, reason=result.reason, record=record)
