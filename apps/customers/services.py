"""Writes for customers: drivers, business customers, contracts, tokens, vehicles; token authorization.

Every write validates the row (`full_clean`: field rules, constraints, and that linked rows belong to the
same tenant) before saving, so the API, the admin, imports and protocol adapters share one set of rules.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from typing import IO, Any, TypeVar

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core import events
from apps.customers import selectors, token_import
from apps.customers.authorization import (
    AuthorizationResult,
    AuthorizationStatus,
    Reason,
    RoamingAuthorization,
    RoamingToken,
    ask_roaming_authorizers,
    roaming_active_parties,
    roaming_issuer_active,
    token_expiry,
    token_status,
    within_time_windows,
)
from apps.customers.models import (
    BusinessCustomer,
    Contract,
    Driver,
    Token,
    TokenSource,
    Vehicle,
    WhitelistType,
    wire_id_for,
)
from apps.customers.token_import import ImportReport, RowError
from apps.tenants.models import Tenant

__all__ = [
    "ImportReport",
    "RowError",
    "business_customer_create",
    "business_customer_update",
    "contract_create",
    "contract_update",
    "driver_create",
    "driver_update",
    "token_authorize",
    "token_cache_roaming",
    "token_create",
    "token_delete",
    "token_import_csv",
    "token_set_blocked",
    "token_uid_lock",
    "token_update",
    "tokens_changed",
    "tokens_of_changed",
    "vehicle_create",
    "vehicle_update",
]

M = TypeVar("M", bound=models.Model)


def _save(instance: M, fields: dict[str, Any]) -> M:
    m2m = {name: fields.pop(name) for name in list(fields) if _is_m2m(instance, name)}
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    for name, value in m2m.items():
        getattr(instance, name).set(value)
    return instance


def _is_m2m(instance: models.Model, name: str) -> bool:
    try:
        return bool(instance._meta.get_field(name).many_to_many)
    except FieldDoesNotExist:
        return False


# --------------------------------------------------------------------------- CRUD


# --------------------------------------------------------------------------- token changes (TokensChanged)

# the fields of a token's account and contract that decide whether it may charge (`authorization.token_status` and
# the contract rules of `token_authorize`): a change of one is a change of each of its tokens for whoever was told
DECIDING_FIELDS: dict[type[models.Model], tuple[str, ...]] = {
    Driver: ("is_active", "credit_blocked"),
    BusinessCustomer: ("is_active", "credit_blocked"),
    Contract: ("valid_from", "valid_until", "time_windows", "allowed_locations"),
}
_TOKENS_OF = {Driver: "driver", BusinessCustomer: "business_customer", Contract: "business_contract"}


def tokens_changed(*, tenant_id: int, token_ids: Iterable[int]) -> None:
    """Publish `TokensChanged` in the caller's transaction (roaming pushes our tokens to CPO partners on commit)."""
    ids = sorted(set(token_ids))
    if ids:
        events.publish(events.TokensChanged(tenant_id=tenant_id, token_ids=ids))


def _deciding(instance: models.Model) -> dict[str, Any]:
    """The stored values of the instance's deciding fields (many-to-many: the sorted ids)."""
    names = DECIDING_FIELDS[type(instance)]
    if instance.pk is None:
        return {}
    plain = [n for n in names if not _is_m2m(instance, n)]
    stored: dict[str, Any] = type(instance)._default_manager.filter(pk=instance.pk).values(*plain).first() or {}
    for name in names:
        if _is_m2m(instance, name):
            stored[name] = sorted(getattr(instance, name).values_list("pk", flat=True))
    return stored


def tokens_of_changed(*, instance: Driver | BusinessCustomer | Contract) -> int:
    """A driver's, business customer's or contract's deciding fields changed (the admin calls this after its form
    saved them): the tenant's own tokens on it get a new `updated_at` (the OCPI Token's last_updated) and are
    published as changed. Returns how many."""
    tokens = Token.objects.filter(
        tenant_id=instance.tenant_id, source=TokenSource.LOCAL, **{_TOKENS_OF[type(instance)]: instance}
    )
    ids = list(tokens.order_by("pk").values_list("pk", flat=True))
    if ids:
        tokens.update(updated_at=timezone.now())
        tokens_changed(tenant_id=instance.tenant_id, token_ids=ids)
    return len(ids)


def _save_deciding(instance: M, fields: dict[str, Any]) -> M:
    """`_save`, and when a deciding field changed, its tokens are changed too."""
    before = _deciding(instance)
    saved = _save(instance, fields)
    if before and _deciding(saved) != before:
        tokens_of_changed(instance=saved)  # type: ignore[arg-type]
    return saved


@transaction.atomic
def business_customer_create(*, tenant: Tenant, **fields: Any) -> BusinessCustomer:
    return _save(BusinessCustomer(tenant=tenant), fields)


@transaction.atomic
def business_customer_update(*, business_customer: BusinessCustomer, **fields: Any) -> BusinessCustomer:
    return _save_deciding(business_customer, fields)


@transaction.atomic
def driver_create(*, tenant: Tenant, **fields: Any) -> Driver:
    return _save(Driver(tenant=tenant), fields)


@transaction.atomic
def driver_update(*, driver: Driver, **fields: Any) -> Driver:
    return _save_deciding(driver, fields)


def _check_locations(tenant_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    locations = fields.get("allowed_locations")
    if locations is not None and any(location.tenant_id != tenant_id for location in locations):
        raise ValidationError({"allowed_locations": "Belongs to another tenant."})
    return fields


@transaction.atomic
def contract_create(*, tenant: Tenant, **fields: Any) -> Contract:
    """`allowed_locations` (stations.Location rows of the same tenant) restricts where its tokens charge."""
    return _save(Contract(tenant=tenant), _check_locations(tenant.pk, fields))


@transaction.atomic
def contract_update(*, contract: Contract, **fields: Any) -> Contract:
    return _save_deciding(contract, _check_locations(contract.tenant_id, fields))


def _token_links(fields: dict[str, Any]) -> dict[str, Any]:
    """A token on a contract is on that contract's business customer unless one is given explicitly."""
    contract = fields.get("business_contract")
    if contract is not None and fields.get("business_customer") is None:
        fields["business_customer"] = contract.business_customer
    return fields


@transaction.atomic
def token_create(*, tenant: Tenant, **fields: Any) -> Token:
    token = _save(Token(tenant=tenant), _token_links(fields))
    tokens_changed(tenant_id=token.tenant_id, token_ids=[token.pk])
    return token


@transaction.atomic
def token_update(*, token: Token, **fields: Any) -> Token:
    token = _save(token, _token_links(fields))
    tokens_changed(tenant_id=token.tenant_id, token_ids=[token.pk])
    return token


@transaction.atomic
def token_set_blocked(*, token: Token, blocked: bool) -> Token:
    if token.blocked != blocked:
        token.blocked = blocked
        token.save(update_fields=["blocked", "updated_at"])
        tokens_changed(tenant_id=token.tenant_id, token_ids=[token.pk])
    return token


@transaction.atomic
def token_delete(*, token: Token) -> None:
    """Delete a token nothing points to (sessions protect theirs: ProtectedError). Partners that were sent it are
    told it is no longer valid (OCPI has no DELETE of a token)."""
    tenant_id, pk = token.tenant_id, token.pk
    token.delete()
    tokens_changed(tenant_id=tenant_id, token_ids=[pk])


@transaction.atomic
def vehicle_create(*, tenant: Tenant, **fields: Any) -> Vehicle:
    return _save(Vehicle(tenant=tenant), fields)


@transaction.atomic
def vehicle_update(*, vehicle: Vehicle, **fields: Any) -> Vehicle:
    return _save(vehicle, fields)


# --------------------------------------------------------------------------- import


def token_import_csv(*, tenant: Tenant, file: IO[Any], chunk_size: int = token_import.CHUNK_SIZE) -> ImportReport:
    """Import tokens from a CSV file (format and transaction rules: `apps.customers.token_import`)."""
    return token_import.import_tokens(tenant=tenant, file=file, chunk_size=chunk_size)


# --------------------------------------------------------------------------- authorization


def _token_by_uid(tenant: Tenant, uid: str) -> Token | None:
    """By uid or OCPP idTag (the token's wire id), ignoring case."""
    return selectors.token_get(tenant=tenant, uid=uid)


def token_uid_lock(*, tenant_id: int, uid: str) -> None:
    """Writers of one uid (ignoring case) of a tenant go one at a time until their transaction ends, so two that
    find no row both creating it (two starts of an unknown roaming token answered by its eMSP at once, two pushes
    of one token) cannot collide on the unique uid: the second finds the first's row."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("token_uid_lock must run inside transaction.atomic()")
    with transaction.get_connection().cursor() as cursor:
        key = f"{tenant_id}:{uid.lower()}"
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('customers.token_uid'), hashtext(%s))", [key])


@transaction.atomic
def token_cache_roaming(*, tenant: Tenant, data: RoamingToken) -> Token:
    """Create or refresh the cached row of a roaming partner's token. Our own tokens, and another issuer's (another
    country code or party id), are never overwritten: the row is returned as it is."""
    fields = {
        "type": data.type,
        "contract_id": data.contract_id,
        "visual_number": data.visual_number,
        "issuer": data.issuer,
        "group_id": data.group_id,
        "valid": data.valid,
        "whitelist": data.whitelist,
        "language": data.language,
        "default_profile_type": data.default_profile_type,
        "country_code": data.country_code,
        "party_id": data.party_id,
        "expires_at": data.expires_at,
    }
    token_uid_lock(tenant_id=tenant.pk, uid=data.uid)
    token = (
        Token.objects.select_for_update()
        .alias(uid_ci=Lower("uid"))
        .filter(tenant=tenant, uid_ci=Lower(Value(data.uid)))
        .first()
    )
    if token is None:
        return _save(Token(tenant=tenant, uid=data.uid, source=TokenSource.ROAMING), fields)
    if token.source != TokenSource.ROAMING:
        return token
    if (token.country_code.upper(), token.party_id.upper()) != (data.country_code.upper(), data.party_id.upper()):
        return token  # one uid per tenant: the first issuer keeps it
    return _save(token, fields)


def _result(
    status: str, token: Token | None, reason: str, expiry: dt.datetime | None = None, reference: str = ""
) -> AuthorizationResult:
    parent = wire_id_for(token.group_id) if token is not None and token.group_id else None
    return AuthorizationResult(
        status=status,
        token=token,
        parent_id_tag=parent,
        expiry_date=expiry,
        reason=reason,
        authorization_reference=reference,
    )


def _from_roaming(tenant: Tenant, answer: RoamingAuthorization, cached: Token | None) -> AuthorizationResult:
    token = token_cache_roaming(tenant=tenant, data=answer.token) if answer.token is not None else cached
    reason = f"{Reason.ROAMING}:{answer.reason}" if answer.reason else Reason.ROAMING
    expiry = answer.expiry_date if answer.expiry_date is not None else (token.expires_at if token else None)
    accepted = answer.status == AuthorizationStatus.ACCEPTED
    return _result(answer.status, token, reason, expiry if accepted else None, answer.authorization_reference)


def token_authorize(
    *,
    tenant: Tenant,
    id_tag: str,
    location_id: Any | None = None,
    at: dt.datetime | None = None,
    tz: str | dt.tzinfo | None = None,
    foreign_location: bool = False,
) -> AuthorizationResult:
    """May `id_tag` charge (at `location_id`, at `at`)? For OCPP Authorize and StartTransaction.

    Decides Accepted / Blocked / Expired / Invalid with a stable `reason` (see `Reason`); ConcurrentTx is
    the sessions layer's call. Time windows of the token's contract are read in `tz` (the location's time
    zone; the tenant's when not given). Tokens we do not know, and cached roaming tokens that need real-time
    authorization (whitelist NEVER, or ALLOWED_OFFLINE while the partner answers), are asked of the roaming
    authorizers (`settings.ROAMING_AUTHORIZERS`); their answer is honoured. No transaction is held while a
    partner is asked: only caching the partner's token writes.

    `foreign_location`: the question is about a location of another operator (a CPO partner asks us, as eMSP, in
    real time; `location_id` is then None): a contract with allowed locations lists ours only, so it refuses there.
    """
    at = at or timezone.now()
    token = _token_by_uid(tenant, id_tag)

    if (
        token is not None
        and token.source == TokenSource.ROAMING
        and not roaming_issuer_active(token, roaming_active_parties(tenant=tenant))
    ):  # its eMSP is suspended or gone: none of its tokens charges here, whatever the whitelist
        return _result(AuthorizationStatus.INVALID, token, Reason.ROAMING_PARTNER_INACTIVE)
    if token is None or (token.source == TokenSource.ROAMING and token.whitelist != WhitelistType.ALWAYS):
        answer = ask_roaming_authorizers(tenant=tenant, id_tag=id_tag, location_id=location_id, at=at)
        if answer is not None:
            return _from_roaming(tenant, answer, token)
        if token is None:
            return _result(AuthorizationStatus.INVALID, None, Reason.UNKNOWN)
        if token.whitelist == WhitelistType.NEVER:
            return _result(AuthorizationStatus.INVALID, token, Reason.ROAMING_NO_ANSWER)
        # ALLOWED / ALLOWED_OFFLINE: the partner is silent, the cached token decides

    status, reason = token_status(token=token, at=at)
    if status != AuthorizationStatus.ACCEPTED:
        return _result(status, token, reason)

    if token.group_id and token.group_id.lower() != token.uid.lower():
        parent = _token_by_uid(tenant, token.group_id)
        if parent is not None and (parent.blocked or not parent.valid):
            return _result(AuthorizationStatus.BLOCKED, token, Reason.PARENT_BLOCKED)

    contract = token.business_contract
    if contract is not None:
        if foreign_location and contract.allowed_locations.exists():
            return _result(AuthorizationStatus.INVALID, token, Reason.LOCATION_NOT_ALLOWED)
        if location_id is not None and not _location_allowed(contract, location_id):
            return _result(AuthorizationStatus.INVALID, token, Reason.LOCATION_NOT_ALLOWED)
        if contract.time_windows:
            zone = tz if isinstance(tz, dt.tzinfo) else zoneinfo.ZoneInfo(tz or tenant.timezone)
            if not within_time_windows(contract.time_windows, at.astimezone(zone)):
                return _result(AuthorizationStatus.INVALID, token, Reason.OUTSIDE_TIME_WINDOW)

    return _result(AuthorizationStatus.ACCEPTED, token, Reason.ACCEPTED, token_expiry(token))


def _location_allowed(contract: Contract, location_id: Any) -> bool:
    """A contract with allowed locations allows only those; one without allows every location."""
    allowed = {str(pk) for pk in contract.allowed_locations.values_list("pk", flat=True)}
    return not allowed or str(location_id) in allowed
