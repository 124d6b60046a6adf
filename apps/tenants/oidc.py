"""OIDC login (Keycloak-compatible) with mozilla-django-oidc, mapping token claims to tenant roles.

Claims (names configurable with OIDC_TENANT_CLAIM / OIDC_ROLE_CLAIM):
- tenants: either a list of tenant slugs, or an object {slug: role};
- roles: a list of role names (admin, operations, finance, read_only); with a list of slugs, the
  highest listed role applies to each of them. Unknown slugs and roles are ignored; no valid role
  means no access. Memberships are synced at every login, so revoking a claim revokes access.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.contrib.drf import OIDCAuthentication

from apps.tenants.models import Role, Tenant, User
from apps.tenants.services import ROLE_RANK, memberships_sync

VALID_ROLES = {choice.value for choice in Role}


def roles_from_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Map the token's claims to {tenant slug: role}."""
    tenants = claims.get(settings.OIDC_TENANT_CLAIM) or []
    if isinstance(tenants, dict):
        return {str(slug): str(role) for slug, role in tenants.items() if role in VALID_ROLES}
    if isinstance(tenants, str):
        tenants = [tenants]
    roles = claims.get(settings.OIDC_ROLE_CLAIM) or []
    if isinstance(roles, str):
        roles = [roles]
    valid = [Role(role) for role in roles if role in VALID_ROLES]
    if not valid:
        return {}
    best = max(valid, key=lambda role: ROLE_RANK[role])
    return {str(slug): best.value for slug in tenants}


class TenantOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        subject = claims.get("sub")
        if not subject:
            return self.UserModel.objects.none()
        return self.UserModel.objects.filter(oidc_subject=subject)

    def create_user(self, claims: dict[str, Any]) -> User:
        username = claims.get("preferred_username") or claims.get("email") or claims["sub"]
        base, n = username, 1
        while User.objects.filter(username=username).exists():
            n += 1
            username = f"{base}-{n}"
        user = User.objects.create(
            username=username,
            email=claims.get("email", ""),
            first_name=claims.get("given_name", ""),
            last_name=claims.get("family_name", ""),
            oidc_subject=claims["sub"],
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        self._sync(user, claims)
        return user

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        user.email = claims.get("email", user.email)
        user.first_name = claims.get("given_name", user.first_name)
        user.last_name = claims.get("family_name", user.last_name)
        user.save(update_fields=["email", "first_name", "last_name"])
        self._sync(user, claims)
        return user

    def _sync(self, user: User, claims: dict[str, Any]) -> None:
        by_slug = roles_from_claims(claims)
        ids = dict(Tenant.objects.filter(slug__in=by_slug, is_active=True).values_list("slug", "pk"))
        memberships_sync(user=user, roles={ids[slug]: role for slug, role in by_slug.items() if slug in ids})


class TenantOIDCAuthentication(OIDCAuthentication):  # type: ignore[misc]
    """Bearer access tokens from the same provider, for API clients."""

    def __init__(self, backend: Any = None) -> None:
        super().__init__(backend or TenantOIDCBackend())
