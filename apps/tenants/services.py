"""Writes for tenancy: staff memberships and API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, Conflict
from apps.tenants.models import ApiKey, Membership, Role, Tenant, User

API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def hash_api_key(raw_key: str) -> str:
    """Keys are 256-bit random, so a fast hash is enough (no password stretching needed)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def parse_api_key(raw_key: str) -> str | None:
    """Return the lookup prefix of a well-formed key (`evp_<prefix>_<secret>`), else None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != settings.API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    created_by: User | None = None,
    prefix: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain secret, which is shown this once and never stored."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must lie in the future.", fields={"expires_at": ["Must be in the future."]})
    if ApiKey.objects.filter(tenant=tenant, name=name).exists():
        raise Conflict("An API key with this name exists.", fields={"name": ["An API key with this name exists."]})
    prefix = prefix or secrets.token_hex(4)
    raw = f"{settings.API_KEY_PREFIX}_{prefix}_{secret or secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        key_hash=hash_api_key(raw),
        scopes=sorted(set(scopes)),
        expires_at=expires_at,
        created_by=created_by,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key, so authentication stays one cheap read."""
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


@transaction.atomic
def membership_create(
    *,
    tenant: Tenant,
    username: str,
    role: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> Membership:
    """Give a staff user a role in a tenant, creating the user when the username is new."""
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"email": email, "first_name": first_name, "last_name": last_name, "is_staff": True},
    )
    if created:
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(update_fields=["password"])
    elif Membership.objects.filter(user=user, tenant=tenant).exists():
        raise Conflict(
            "This user already has a role in this tenant.", fields={"username": ["Already a member of this tenant."]}
        )
    elif not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return Membership.objects.create(user=user, tenant=tenant, role=role)


@transaction.atomic
def membership_update(*, membership: Membership, role: str | None = None, **user_fields: object) -> Membership:
    if role is not None and role != membership.role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    changed = [name for name, value in user_fields.items() if getattr(membership.user, name) != value]
    for name in changed:
        setattr(membership.user, name, user_fields[name])
    if changed:
        membership.user.save(update_fields=changed)
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership) -> None:
    """Remove a user's role in a tenant; a user left without any tenant loses admin access."""
    user = membership.user
    membership.delete()
    if not user.is_superuser and not user.memberships.exists():
        user.is_staff = False
        user.save(update_fields=["is_staff"])


@transaction.atomic
def memberships_sync(*, user: User, roles: dict[int, str]) -> None:
    """Make the user's memberships exactly `roles` (tenant id -> role); used by OIDC login."""
    existing = {m.tenant_id: m for m in user.memberships.select_for_update().order_by("pk")}
    for tenant_id, membership in existing.items():
        if tenant_id not in roles:
            membership.delete()
        elif membership.role != roles[tenant_id]:
            membership.role = roles[tenant_id]
            membership.save(update_fields=["role", "updated_at"])
    for tenant_id, role in roles.items():
        if tenant_id not in existing:
            Membership.objects.create(user=user, tenant_id=tenant_id, role=role)
    should_be_staff = bool(roles) or user.is_superuser
    if user.is_staff != should_be_staff:
        user.is_staff = should_be_staff
        user.save(update_fields=["is_staff"])


ROLE_RANK = {Role.READ_ONLY: 0, Role.FINANCE: 1, Role.OPERATIONS: 2, Role.ADMIN: 3}
