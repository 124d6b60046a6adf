"""Reads for tenancy."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.tenants.models import ApiKey, Invitation, Membership, Tenant
from apps.tenants.services import hash_api_key, invitation_token, parse_api_key


def api_key_lookup(*, raw_key: str) -> ApiKey | None:
    """The key whose hash matches, whatever its state (the caller decides about expiry/revocation)."""
    prefix = parse_api_key(raw_key)
    if prefix is None:
        return None
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
    if key is None or not _constant_time_equal(key.key_hash, hash_api_key(raw_key)):
        return None
    return key


def _constant_time_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def tenant_list() -> QuerySet[Tenant]:
    return Tenant.objects.all()


def membership_list() -> QuerySet[Membership]:
    return Membership.objects.select_related("user", "tenant")


def invitation_list() -> QuerySet[Invitation]:
    return Invitation.objects.select_related("tenant", "invited_by", "invited_by_key", "accepted_by")


def invitation_open_by_token(*, token: str) -> Invitation | None:
    """The open invitation behind a link's token, else None (unknown, expired, revoked, accepted)."""
    key = token.partition(".")[0]
    invitation = Invitation.objects.select_related("tenant").filter(key=key).first() if key else None
    if invitation is None or not _constant_time_equal(invitation_token(invitation), token):
        return None
    return invitation if invitation.is_open and invitation.tenant.is_active else None


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("tenant", "created_by")


def roles_for_user(user_id: int) -> dict[int, str]:
    """The person's role per tenant, where that tenant and the tenant's grant of access are both on."""
    return dict(
        Membership.objects.filter(user_id=user_id, is_active=True, tenant__is_active=True).values_list(
            "tenant_id", "role"
        )
    )


def languages_for_tenants(tenant_ids: set[int]) -> set[str]:
    """The distinct default languages of these tenants."""
    return set(Tenant.objects.filter(pk__in=tenant_ids).values_list("language", flat=True).distinct())


def time_zones_for_tenants(tenant_ids: set[int]) -> set[str]:
    """The distinct time zones of these tenants."""
    return set(Tenant.objects.filter(pk__in=tenant_ids).values_list("timezone", flat=True).distinct())
