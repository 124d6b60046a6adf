"""The vocabulary of token authorization, shared by the OCPP layer (Authorize, StartTransaction, local list)
and the roaming layer (which plugs in authorizers for tokens we do not know).

The decision itself is `apps.customers.services.token_authorize`. Concurrent transactions (ConcurrentTx)
are not decided here: the sessions layer knows which sessions run.

Reason codes (`AuthorizationResult.reason`, listed in `Reason`) are stable, so protocol adapters can map
them (e.g. `location_not_allowed` -> OCPI AllowedType NOT_ALLOWED).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from apps.customers.models import TokenType, WhitelistType, parse_hhmm

if TYPE_CHECKING:
    from apps.customers.models import Token
    from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)


class AuthorizationStatus:
    """OCPP 1.6 AuthorizationStatus values decided here (ConcurrentTx belongs to the sessions layer)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"

    ALL = (ACCEPTED, BLOCKED, EXPIRED, INVALID)


class Reason:
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # no such token and no roaming authorizer knew it
    BLOCKED = "blocked"  # the operator blocked the token
    NOT_VALID = "not_valid"  # the token's OCPI `valid` flag is false
    TOKEN_EXPIRED = "token_expired"
    PARENT_BLOCKED = "parent_blocked"  # the token named by group_id is blocked or not valid
    DRIVER_INACTIVE = "driver_inactive"
    CUSTOMER_INACTIVE = "customer_inactive"
    NO_CREDIT = "no_credit"  # the driver's or business customer's account has no credit (`credit_blocked`)
    CONTRACT_NOT_STARTED = "contract_not_started"
    CONTRACT_EXPIRED = "contract_expired"
    LOCATION_NOT_ALLOWED = "location_not_allowed"
    OUTSIDE_TIME_WINDOW = "outside_time_window"
    ROAMING = "roaming"  # decided by a roaming authorizer (its own reason follows after a colon)
    ROAMING_NO_ANSWER = "roaming_no_answer"  # real-time authorization required, nobody answered
    ROAMING_PARTNER_INACTIVE = "roaming_partner_inactive"  # its eMSP is suspended, unregistered or removed


@dataclass(frozen=True)
class AuthorizationResult:
    status: str  # "Accepted" | "Blocked" | "Expired" | "Invalid"
    token: Token | None
    parent_id_tag: str | None
    expiry_date: dt.datetime | None
    reason: str
    authorization_reference: str = ""  # a roaming partner's reference of its decision (OCPI AuthorizationInfo)

    @property
    def accepted(self) -> bool:
        return self.status == AuthorizationStatus.ACCEPTED


# --------------------------------------------------------------------------- roaming


@dataclass(frozen=True)
class RoamingToken:
    """What a roaming partner tells us about its token (OCPI Token fields), cached as a Token row."""

    uid: str
    contract_id: str
    issuer: str
    country_code: str
    party_id: str
    type: str = TokenType.RFID
    visual_number: str = ""
    group_id: str = ""
    valid: bool = True
    whitelist: str = WhitelistType.ALLOWED
    language: str = ""
    default_profile_type: str = ""
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class RoamingAuthorization:
    """A roaming partner's answer. `token`, when given, creates or refreshes a cached roaming Token row."""

    status: str  # one of AuthorizationStatus.ALL
    reason: str = ""
    expiry_date: dt.datetime | None = None
    token: RoamingToken | None = None
    authorization_reference: str = ""  # the partner's reference, carried by the session and its CDR


@runtime_checkable
class RoamingAuthorizer(Protocol):
    """Asks a roaming partner (OCPI eMSP, Hubject) about a token. Return None when the partner does not know
    it (the next authorizer is asked). Must not raise for ordinary "no"; a raised error counts as no answer."""

    def authorize(
        self, *, tenant: Tenant, id_tag: str, location_id: Any | None, at: dt.datetime
    ) -> RoamingAuthorization | None: ...


def roaming_authorizers() -> list[RoamingAuthorizer]:
    """The authorizers named in `settings.ROAMING_AUTHORIZERS` (dotted paths to classes or instances), in order."""
    found: list[RoamingAuthorizer] = []
    for path in getattr(settings, "ROAMING_AUTHORIZERS", []):
        obj = import_string(path)
        authorizer = obj() if isinstance(obj, type) else obj
        if not isinstance(authorizer, RoamingAuthorizer):
            raise TypeError(f"{path} does not implement RoamingAuthorizer.authorize(*, tenant, id_tag, ...)")
        found.append(authorizer)
    return found


def ask_roaming_authorizers(
    *, tenant: Tenant, id_tag: str, location_id: Any | None, at: dt.datetime
) -> RoamingAuthorization | None:
    """The first answer of the configured authorizers; None when none knows the token or none is configured."""
    for authorizer in roaming_authorizers():
        try:
            answer = authorizer.authorize(tenant=tenant, id_tag=id_tag, location_id=location_id, at=at)
        except Exception:  # a partner outage must not break Authorize: counts as no answer
            logger.exception("Roaming authorizer %r failed for id tag %s", authorizer, id_tag)
            continue
        if answer is None:
            continue
        if answer.status not in AuthorizationStatus.ALL:
            logger.error("Roaming authorizer %r answered an unknown status %r", authorizer, answer.status)
            continue
        return answer
    return None


def roaming_active_parties(*, tenant: Tenant) -> set[tuple[str, str]] | None:
    """The issuers (country code, party id, upper case) whose roaming tokens may charge now: the parties of the
    tenant's active roaming partners, as the authorizers that know partners tell (an optional
    `active_parties(*, tenant)` method). None when no authorizer tells: every stored token decides alone."""
    parties: set[tuple[str, str]] | None = None
    for authorizer in roaming_authorizers():
        tell = getattr(authorizer, "active_parties", None)
        if tell is None:
            continue
        parties = (parties or set()) | {(cc.upper(), pid.upper()) for cc, pid in tell(tenant=tenant)}
    return parties


def roaming_issuer_active(token: Token, parties: set[tuple[str, str]] | None) -> bool:
    """Is this roaming token's issuer (its eMSP) an active partner (`parties`: roaming_active_parties)?"""
    return parties is None or (token.country_code.upper(), token.party_id.upper()) in parties


# --------------------------------------------------------------------------- local auth list


@dataclass(frozen=True)
class LocalAuthEntry:
    """One entry of an OCPP SendLocalList. `status` None means "remove this id tag" (in a differential update)."""

    id_tag: str
    status: str | None
    expiry_date: dt.datetime | None = None
    parent_id_tag: str | None = None


# --------------------------------------------------------------------------- the token's own status


def token_status(*, token: Token, at: dt.datetime) -> tuple[str, str]:
    """The token's own status (flags, expiry, owner, contract dates), without location and time rules."""
    contract = token.business_contract
    if token.blocked:
        return AuthorizationStatus.BLOCKED, Reason.BLOCKED
    if not token.valid:
        return AuthorizationStatus.INVALID, Reason.NOT_VALID
    if token.expires_at is not None and at >= token.expires_at:
        return AuthorizationStatus.EXPIRED, Reason.TOKEN_EXPIRED
    if token.driver is not None and not token.driver.is_active:
        return AuthorizationStatus.BLOCKED, Reason.DRIVER_INACTIVE
    if token.business_customer is not None and not token.business_customer.is_active:
        return AuthorizationStatus.BLOCKED, Reason.CUSTOMER_INACTIVE
    if (token.driver is not None and token.driver.credit_blocked) or (
        token.business_customer is not None and token.business_customer.credit_blocked
    ):  # OCPP 1.6 has no "no credit" status (2.0.1's NoCredit): Blocked, with its own reason
        return AuthorizationStatus.BLOCKED, Reason.NO_CREDIT
    if contract is not None:
        if at < contract.valid_from:
            return AuthorizationStatus.INVALID, Reason.CONTRACT_NOT_STARTED
        if contract.valid_until is not None and at >= contract.valid_until:
            return AuthorizationStatus.EXPIRED, Reason.CONTRACT_EXPIRED
    return AuthorizationStatus.ACCEPTED, Reason.ACCEPTED


def token_expiry(token: Token) -> dt.datetime | None:
    """Until when an acceptance holds: the earlier of the token's and its contract's end."""
    ends = [token.expires_at]
    if token.business_contract is not None:
        ends.append(token.business_contract.valid_until)
    known = [end for end in ends if end is not None]
    return min(known) if known else None


# --------------------------------------------------------------------------- time windows


def within_time_windows(windows: list[dict[str, Any]], local: dt.datetime) -> bool:
    """Is the local wall-clock time inside one of the (already validated) windows? Empty means always.

    A window ending before it starts crosses midnight: it belongs to the day it starts, so
    Friday 22:00-06:00 covers Friday 22:00 to Saturday 05:59.
    """
    if not windows:
        return True
    day = local.isoweekday()
    previous_day = 7 if day == 1 else day - 1
    now = local.time().replace(tzinfo=None)
    for window in windows:
        start, end = parse_hhmm(window["start_time"]), parse_hhmm(window["end_time"])
        days = window["days_of_week"]
        if start < end:
            if day in days and start <= now < end:
                return True
        elif (day in days and now >= start) or (previous_day in days and now < end):
            return True
    return False
