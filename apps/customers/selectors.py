"""Reads for customers, and the OCPP local authorization list."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Lower
from django.utils import timezone

from apps.customers.authorization import (
    AuthorizationStatus,
    LocalAuthEntry,
    roaming_active_parties,
    roaming_issuer_active,
    token_expiry,
    token_status,
)
from apps.customers.models import (
    LOCAL_WHITELIST_TYPES,
    BusinessCustomer,
    Contract,
    Driver,
    Token,
    TokenSource,
    Vehicle,
    wire_id_for,
)
from apps.tenants.models import Tenant


def business_customer_list() -> QuerySet[BusinessCustomer]:
    return BusinessCustomer.objects.all()


def driver_list() -> QuerySet[Driver]:
    return Driver.objects.all()


def contract_list() -> QuerySet[Contract]:
    return Contract.objects.all()


def token_list() -> QuerySet[Token]:
    return Token.objects.all()


def vehicle_list() -> QuerySet[Vehicle]:
    return Vehicle.objects.all()


def token_get(*, tenant: Tenant, uid: str) -> Token | None:
    """The tenant's token with this uid or OCPP idTag (its wire id), ignoring letter case (chargers differ in how
    they print uids). At most one token matches: a wire id is the uid itself or never another token's uid."""
    key = Lower(Value(uid))
    return (
        Token.objects.select_related("business_contract", "business_customer", "driver")
        .alias(uid_ci=Lower("uid"), wire_ci=Lower("wire_id"))
        .filter(Q(uid_ci=key) | Q(wire_ci=key), tenant=tenant)
        .order_by("pk")
        .first()
    )


def wire_id_of(id_tag: str) -> str:
    """The OCPP idTag a charger knows a token (or group) by: the uid when it fits in 20 characters, else its
    derived wire id (`Token.wire_id`, computed the same way without a query)."""
    return wire_id_for(id_tag)


def token_business_customer_id(token: Token) -> int | None:
    """Who pays for a token's sessions when a business customer does: the token's own business customer, else its
    contract's, else its driver's employer. The one rule: the session stores it at start, its price uses that
    customer's contract price list, and the monthly invoice of that customer bills it."""
    if token.business_customer_id is not None:
        return token.business_customer_id
    if token.business_contract is not None:
        return token.business_contract.business_customer_id
    if token.driver is not None:
        return token.driver.business_customer_id
    return None


# --------------------------------------------------------------------------- OCPP local authorization list


def local_auth_list_tokens(*, tenant: Tenant) -> QuerySet[Token]:
    """Tokens a charger may decide about on its own.

    Whitelist ALWAYS, ALLOWED or ALLOWED_OFFLINE only (NEVER means real-time authorization). Tokens whose
    contract restricts locations or time windows are left out: a charger's list cannot express those rules,
    so the charger has to ask us.
    """
    return (
        Token.objects.filter(tenant=tenant, whitelist__in=LOCAL_WHITELIST_TYPES)
        .filter(Q(business_contract__isnull=True) | Q(business_contract__time_windows=[]))
        .exclude(business_contract__allowed_locations__isnull=False)
        .select_related("business_contract", "business_customer", "driver")
        .order_by("uid", "pk")
    )


def local_auth_list(
    *, tenant: Tenant, charge_point_id: Any | None = None, at: dt.datetime | None = None
) -> list[LocalAuthEntry]:
    """The OCPP local authorization list: every locally usable token with its status now, by its OCPP idTag
    (`Token.wire_id`, at most 20 characters; the parentIdTag likewise).

    Blocked, expired and invalid tokens stay in the list with that status, so a charger that cached them as
    Accepted learns otherwise; so do the tokens of a roaming partner that is suspended or gone (Invalid), whatever
    their whitelist, until the partner is active again. `charge_point_id` is accepted for the OCPP layer's
    convenience; the list is the same for every charge point of the tenant (location-restricted tokens are not in
    it).
    Entries are sorted by id tag, so equal lists compare equal.
    """
    at = at or timezone.now()
    entries = []
    parties = roaming_active_parties(tenant=tenant)
    for token in local_auth_list_tokens(tenant=tenant).iterator(chunk_size=2000):
        status, _ = token_status(token=token, at=at)
        if token.source == TokenSource.ROAMING and not roaming_issuer_active(token, parties):
            status = AuthorizationStatus.INVALID  # its eMSP is suspended or gone: listed refused, never accepted
        entries.append(
            LocalAuthEntry(
                id_tag=token.wire_id,
                status=status,
                expiry_date=token_expiry(token) if status == AuthorizationStatus.ACCEPTED else None,
                parent_id_tag=wire_id_for(token.group_id) if token.group_id else None,
            )
        )
    return entries


def local_auth_list_hash(entries: Iterable[LocalAuthEntry]) -> str:
    """A stable digest of a list's content: the OCPP layer compares it with what it sent last and, when it
    differs, bumps the charger's listVersion and sends `local_auth_list_diff`."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda entry: entry.id_tag):
        expiry = entry.expiry_date.isoformat() if entry.expiry_date else ""
        digest.update(f"{entry.id_tag}\x1f{entry.status}\x1f{expiry}\x1f{entry.parent_id_tag or ''}\x1e".encode())
    return digest.hexdigest()


def local_auth_list_diff(
    *, previous: Iterable[LocalAuthEntry], current: Iterable[LocalAuthEntry]
) -> list[LocalAuthEntry]:
    """The entries of a differential SendLocalList: new or changed entries as they are now, and removed id
    tags with `status=None` (OCPP: an entry without idTagInfo is deleted from the charger's list)."""
    before = {entry.id_tag: entry for entry in previous}
    after = {entry.id_tag: entry for entry in current}
    changed = [entry for tag, entry in after.items() if before.get(tag) != entry]
    removed = [LocalAuthEntry(id_tag=tag, status=None) for tag in before if tag not in after]
    return sorted(changed + removed, key=lambda entry: entry.id_tag)
