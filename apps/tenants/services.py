"""Writes for tenancy: people (invitations, memberships) and API keys.

How a tenant gets its people: by invitation, as Stripe, GitHub organisations, Atlassian or Auth0 organisations do.

A user account (username, password, e-mail, name) belongs to the person, not to a tenant: one person may work for
several tenants with one login, so any tenant able to write the account could take over the person's access to
every other tenant (set the password, or the e-mail a reset goes to). Tenants therefore never name, create, look up
or edit accounts. They invite an e-mail address with a role; the person who reads that mail accepts, either by
creating an account (choosing their own password; the login is the invited address) or, explicitly, with the
account they already have. The inviting tenant learns nothing about the address (whether an account uses it, or in
which tenants) until then: creating an invitation answers the same for every address, and accepting is done by the
person, never by the tenant's staff or keys. What a tenant controls lives on its own Membership row: the role,
and whether the access is on; removing it removes that tenant's access only.

Not even a person who works for one tenant alone is editable by that tenant (password, e-mail, name, username,
active): the account may join other tenants later, and whoever set its password or the address a reset goes to
could then reach those too. A password sent to a tenant surface is refused with an error naming it, never
ignored; only the person sets one (when creating their account on acceptance, or at /admin/password_change/).

Tenant-scoped accounts (a username unique per tenant, the login form asking for the tenant) were the alternative;
they would split a person who works for two operators into two logins and break the OIDC login, which matches
one account by the identity provider's `sub` and syncs its memberships in every tenant from the claims.

Platform operators (superusers, `seed_demo`) may still create accounts and grant memberships directly.

API keys: see the rules above `api_key_create`.
"""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext

from apps.core import cache, i18n
from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.tenants.models import ApiKey, Invitation, Membership, MembershipSource, Role, Tenant, User
from apps.tenants.scopes import WILDCARD, scopes_cover, validate_scope

API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def tenant_changed(*, tenant_id: int) -> None:
    """Every write of a tenant's own row (settings, branding, time zone, VAT rate, `is_active`) calls this: the
    tenant's cached reads that hold it (namespace `tenant`) are dropped on commit (`apps/core/cache.py`)."""
    cache.invalidate("tenant", tenant_id)


def hash_api_key(raw_key: str) -> str:
    """Keys are 256-bit random, so a fast hash is enough (no password stretching needed)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def parse_api_key(raw_key: str) -> str | None:
    """Return the lookup prefix of a well-formed key (`evp_<prefix>_<secret>`), else None."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != settings.API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


# --------------------------------------------------------------------------- API keys
#
# What a key may do to keys (`acting_key`: the key making the call, None for people):
# - it never grants more than it holds: a new key's scopes, and new scopes of a key, must be covered by its own
#   (`stations:write` covers `stations:read`; only `*` covers `*`);
# - it never touches a key more powerful than itself (changing or revoking a key needs the key's scopes covered);
# - it never changes or revokes itself. Self-revocation was considered (a leaked key shutting itself off) and
#   refused: rotation works without it (key 1 creates key 2, key 2 revokes key 1), a tenant admin revokes a leaked
#   key in the admin or the API, and a script or fuzzer that revokes its own key leaves the integration dead with
#   nobody left to notice.


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = list(scopes)
    errors = []
    for scope in scopes:
        try:
            validate_scope(scope)
        except DjangoValidationError as exc:
            errors.extend(exc.messages)
    if errors:
        raise ApplicationError(" ".join(errors), code="invalid_scope", fields={"scopes": errors})
    if not scopes:
        raise ApplicationError("A key needs at least one scope.", fields={"scopes": ["At least one scope."]})
    return sorted(set(scopes))


def _check_grant(acting_key: ApiKey | None, scopes: Iterable[str]) -> None:
    if acting_key is None:
        return
    extra = sorted(scope for scope in set(scopes) if not scopes_cover(acting_key.scopes, scope))
    if extra:
        raise ApplicationError(
            "An API key cannot grant scopes it does not hold.",
            code="scope_escalation",
            fields={"scopes": [f"Not held by the calling key: {', '.join(extra)}."]},
            status_code=403,
        )


def _check_reach(acting_key: ApiKey | None, api_key: ApiKey, verb: str) -> None:
    if acting_key is None:
        return
    if acting_key.pk == api_key.pk:
        raise ApplicationError(
            f"An API key cannot {verb} itself: use another key, or ask a tenant admin.",
            code="own_api_key",
            status_code=403,
        )
    if not all(scopes_cover(acting_key.scopes, scope) for scope in api_key.scopes):
        raise ApplicationError(
            f"An API key cannot {verb} a key that holds scopes it does not hold itself.",
            code="scope_escalation",
            status_code=403,
        )


@transaction.atomic
def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    created_by: User | None = None,
    acting_key: ApiKey | None = None,
    prefix: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plain secret, which is shown this once and never stored."""
    scopes = _check_scopes(scopes)
    _check_grant(acting_key, scopes)
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
        scopes=scopes,
        expires_at=expires_at,
        created_by=created_by if created_by is not None and created_by.pk else None,
    )
    return key, raw


_UNSET: object = object()


@transaction.atomic
def api_key_update(
    *,
    api_key: ApiKey,
    acting_key: ApiKey | None = None,
    name: str | None = None,
    scopes: Iterable[str] | None = None,
    expires_at: datetime | object | None = _UNSET,
) -> ApiKey:
    """Rename a key, change its scopes or expiry (never its secret: make a new key for that)."""
    _check_reach(acting_key, api_key, "change")
    changed = []
    if scopes is not None:
        new_scopes = _check_scopes(scopes)
        _check_grant(acting_key, new_scopes)
        if new_scopes != sorted(api_key.scopes):
            api_key.scopes = new_scopes
            changed.append("scopes")
    if name is not None and name != api_key.name:
        if ApiKey.objects.filter(tenant_id=api_key.tenant_id, name=name).exclude(pk=api_key.pk).exists():
            raise Conflict("An API key with this name exists.", fields={"name": ["An API key with this name exists."]})
        api_key.name = name
        changed.append("name")
    if expires_at is not _UNSET and expires_at != api_key.expires_at:
        if isinstance(expires_at, datetime) and expires_at <= timezone.now():
            raise ApplicationError(
                "The expiry must lie in the future.", fields={"expires_at": ["Must be in the future."]}
            )
        api_key.expires_at = expires_at  # type: ignore[assignment]
        changed.append("expires_at")
    if changed:
        api_key.save(update_fields=[*changed, "updated_at"])
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, acting_key: ApiKey | None = None) -> ApiKey:
    _check_reach(acting_key, api_key, "revoke")
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


# --------------------------------------------------------------------------- people (design: module docstring)

INVITATION_TOKEN_SALT = "apps.tenants.invitation"


def _check_people_power(acting_key: ApiKey | None, what: str) -> None:
    """A role reaches every area of the API (every role reads everything), so only a key that already holds
    everything (`*`) may hand one out: otherwise a `staff:write` key could invite an address it controls as a tenant
    admin and, through that person, create a `*` key."""
    if acting_key is not None and WILDCARD not in acting_key.scopes:
        raise ApplicationError(
            f"Only an API key with the '*' scope can {what}: a role reaches more than this key holds.",
            code="scope_escalation",
            status_code=403,
        )


def invitation_token(invitation: Invitation) -> str:
    """The secret in the invitation e-mail: `<key>.<HMAC(SECRET_KEY, key, nonce, tenant, address, role)>`."""
    message = f"{invitation.key}:{invitation.nonce}:{invitation.tenant_id}:{invitation.email.lower()}:{invitation.role}"
    signature = salted_hmac(INVITATION_TOKEN_SALT, message, algorithm="sha256").hexdigest()
    return f"{invitation.key}.{signature}"


def invitation_url(invitation: Invitation) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/invitations/{invitation_token(invitation)}/"


def _new_invitation_secret(invitation: Invitation) -> None:
    invitation.nonce = secrets.token_hex(16)
    invitation.expires_at = timezone.now() + timedelta(days=settings.STAFF_INVITATION_DAYS)
    invitation.sent_at = None


def _send_on_commit(invitation: Invitation) -> None:
    from apps.tenants import tasks

    invitation_id = invitation.pk
    transaction.on_commit(lambda: tasks.invitation_send.delay(invitation_id))


def normalize_email(email: str) -> str:
    return User.objects.normalize_email(email.strip())


@transaction.atomic
def invitation_create(
    *,
    tenant: Tenant,
    email: str,
    role: str,
    invited_by: User | None = None,
    invited_by_key: ApiKey | None = None,
) -> Invitation:
    """Invite an address to a role in the tenant and e-mail the link. Answers the same for every address."""
    _check_people_power(invited_by_key, "invite people")
    email = normalize_email(email)
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}.", fields={"role": [f"Use one of {', '.join(Role.values)}."]})
    open_invitations = Invitation.objects.select_for_update().filter(
        tenant=tenant, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    )
    for existing in open_invitations:
        if existing.is_open:
            raise Conflict(
                "An open invitation for this address exists in this tenant: resend or revoke it.",
                code="invitation_exists",
                fields={"email": ["An open invitation for this address exists in this tenant."]},
            )
        existing.revoked_at = timezone.now()  # expired: make way for the new one
        existing.save(update_fields=["revoked_at", "updated_at"])
    invitation = Invitation(
        tenant=tenant,
        email=email,
        role=role,
        key=secrets.token_hex(8),
        invited_by=invited_by if invited_by is not None and invited_by.pk else None,
        invited_by_key=invited_by_key,
    )
    _new_invitation_secret(invitation)
    invitation.save()
    _send_on_commit(invitation)
    return invitation


def _lock_open(invitation: Invitation) -> Invitation:
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.status == "accepted":
        raise Conflict(
            "This invitation has been accepted; change or remove the membership instead.", code="invitation_accepted"
        )
    return locked


@transaction.atomic
def invitation_resend(*, invitation: Invitation) -> Invitation:
    """A new link (the old one stops working) with a new expiry, e-mailed again."""
    invitation = _lock_open(invitation)
    if invitation.revoked_at is not None:
        raise Conflict("This invitation has been revoked; invite the address again.", code="invitation_revoked")
    _new_invitation_secret(invitation)
    invitation.save(update_fields=["nonce", "expires_at", "sent_at", "updated_at"])
    _send_on_commit(invitation)
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    invitation = _lock_open(invitation)
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at", "updated_at"])
    return invitation


def invitation_send_email(*, invitation: Invitation) -> None:
    """E-mail the link to the invited address (run by the `tenants.invitation_send` task), in the tenant's default
    language (the person has no account with us yet), the expiry in the tenant's zone, named."""
    tenant = invitation.tenant
    expires = invitation.expires_at.astimezone(zoneinfo.ZoneInfo(tenant.timezone))
    with translation.override(i18n.pick(tenant.language)):
        subject = gettext("You are invited to %(tenant)s") % {"tenant": tenant.name}
        body = "\n\n".join(
            [
                gettext("%(tenant)s invites you to its back office on the EV charging platform, as %(role)s.")
                % {"tenant": tenant.name, "role": invitation.get_role_display()},
                gettext("Accept here: %(url)s") % {"url": invitation_url(invitation)},
                gettext(
                    "You can create an account (you choose its password; your login is this e-mail address), or "
                    "accept with the account you already have."
                ),
                gettext(
                    "The link works until %(expires)s. If you did not expect it, ignore this e-mail: nothing happens "
                    "until you accept."
                )
                % {"expires": f"{expires:%Y-%m-%d %H:%M} {expires.tzname()}"},
            ]
        )
    send_mail(subject, body, tenant.sender_email or settings.DEFAULT_FROM_EMAIL, [invitation.email])
    Invitation.objects.filter(pk=invitation.pk, nonce=invitation.nonce).update(sent_at=timezone.now())


class InvitationNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(
            "No open invitation has this token: it is unknown, expired, revoked or already accepted. "
            "Ask the tenant for a new one.",
            code="invitation_not_found",
        )


def _open_invitation_for_update(token: str) -> Invitation:
    key, _, _signature = token.partition(".")
    invitation = (
        Invitation.objects.select_for_update().select_related("tenant").filter(key=key).first() if key else None
    )
    if (
        invitation is None
        or not constant_time_compare(invitation_token(invitation), token)
        or not invitation.is_open
        or not invitation.tenant.is_active
    ):
        raise InvitationNotFound()
    return invitation


def _set_password(user: User, password: str) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ApplicationError(
            "The password is too weak: " + " ".join(exc.messages),
            code="weak_password",
            fields={"password": exc.messages},
        ) from exc
    user.set_password(password)


@transaction.atomic
def invitation_accept(
    *,
    token: str,
    user: User | None = None,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """The invited person accepts: with the account they are logged in with (`user`), or by creating one whose login
    is the invited address and whose password they choose now. Never both: a password sent by a logged-in person is
    refused, not ignored."""
    invitation = _open_invitation_for_update(token)
    if user is not None:
        if password:
            raise ApplicationError(
                f"You are logged in as {user.get_username()}: accept with that account (send no password), "
                "or log out to create a new account.",
                code="password_not_applicable",
                fields={"password": ["Not used when accepting with the account you are logged in with."]},
            )
        if not user.is_active:
            raise ApplicationError("This account is disabled.", code="account_disabled", status_code=403)
        if Membership.objects.filter(user=user, tenant=invitation.tenant).exists():
            raise Conflict(f"You already work for {invitation.tenant.name}.", code="already_member")
    else:
        if not password:
            raise ApplicationError(
                "Choose a password for your new account (or log in to accept with the account you have).",
                fields={"password": ["This field is required to create an account."]},
            )
        username = invitation.email.lower()
        if User.objects.filter(username__iexact=username).exists():
            raise Conflict(
                "An account with this e-mail address as its login exists: log in with it to accept.",
                code="account_exists",
            )
        user = User(
            username=username,
            email=invitation.email,
            first_name=first_name,
            last_name=last_name,
            is_staff=True,
        )
        _set_password(user, password)
        user.save()
    membership = Membership.objects.create(
        user=user, tenant=invitation.tenant, role=invitation.role, source=MembershipSource.INVITATION
    )
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    return membership


@transaction.atomic
def staff_user_create(
    *,
    username: str,
    password: str | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    """Platform operators only (superusers, `seed_demo`): a new account; its password is applied, never ignored."""
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("This username is taken.", code="username_taken", fields={"username": ["Taken."]})
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_staff=True)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return user


@transaction.atomic
def membership_grant(*, user: User, tenant: Tenant, role: str, source: str = MembershipSource.PLATFORM) -> Membership:
    """Platform operators only: give an account a role in a tenant without an invitation."""
    if Membership.objects.filter(user=user, tenant=tenant).exists():
        raise Conflict("This user already has a role in this tenant.", code="already_member")
    membership = Membership.objects.create(user=user, tenant=tenant, role=role, source=source)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


@transaction.atomic
def membership_update(
    *,
    membership: Membership,
    role: str | None = None,
    is_active: bool | None = None,
    acting_key: ApiKey | None = None,
) -> Membership:
    """What a tenant may change about one of its people: their role and access here, nothing of their account."""
    changed = []
    if role is not None and role != membership.role:
        _check_people_power(acting_key, "change roles")
        membership.role = role
        changed.append("role")
    if is_active is not None and is_active != membership.is_active:
        membership.is_active = is_active
        changed.append("is_active")
    if changed:
        membership.save(update_fields=[*changed, "updated_at"])
    return membership


@transaction.atomic
def membership_delete(*, membership: Membership) -> None:
    """Remove a person's access to one tenant; their account and their other tenants are untouched. A person left
    without any tenant can no longer log in to the admin."""
    user = membership.user
    membership.delete()
    if user.is_staff and not user.is_superuser and not user.memberships.exists():
        user.is_staff = False
        user.save(update_fields=["is_staff"])


@transaction.atomic
def memberships_sync(*, user: User, roles: dict[int, str]) -> None:
    """OIDC login: the memberships that come from claims become exactly `roles` (tenant id -> role).

    A claimed tenant's membership is taken over by the claims (role from the token); memberships the person
    accepted by invitation in tenants the token does not name stay, until that tenant removes them. A tenant's
    suspension (`is_active` off) survives logins."""
    existing = {m.tenant_id: m for m in user.memberships.select_for_update().order_by("pk")}
    for tenant_id, membership in existing.items():
        if tenant_id not in roles:
            if membership.source == MembershipSource.OIDC:
                membership.delete()
        elif membership.role != roles[tenant_id] or membership.source != MembershipSource.OIDC:
            membership.role = roles[tenant_id]
            membership.source = MembershipSource.OIDC
            membership.save(update_fields=["role", "source", "updated_at"])
    for tenant_id, role in roles.items():
        if tenant_id not in existing:
            Membership.objects.create(user=user, tenant_id=tenant_id, role=role, source=MembershipSource.OIDC)
    should_be_staff = user.is_superuser or user.memberships.exists()
    if user.is_staff != should_be_staff:
        user.is_staff = should_be_staff
        user.save(update_fields=["is_staff"])


ROLE_RANK = {Role.READ_ONLY: 0, Role.FINANCE: 1, Role.OPERATIONS: 2, Role.ADMIN: 3}
