"""Who may reach which tenant: computed once per request, used by API permissions, views and admin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from apps.tenants.models import ApiKey, Role
from apps.tenants.selectors import roles_for_user

DEFAULT_WRITE_ROLES: tuple[str, ...] = (Role.ADMIN, Role.OPERATIONS)


@dataclass(frozen=True)
class Access:
    """What one caller may reach: all tenants (superuser), or a role per tenant id."""

    is_superuser: bool = False
    roles: dict[int, str] = field(default_factory=dict)
    api_key: ApiKey | None = None

    @property
    def tenant_ids(self) -> set[int] | None:
        """None means every tenant."""
        return None if self.is_superuser else set(self.roles)

    def can_read(self, tenant_id: int) -> bool:
        return self.is_superuser or tenant_id in self.roles

    def can_write(self, tenant_id: int, write_roles: Iterable[str]) -> bool:
        if self.is_superuser:
            return True
        if self.api_key is not None:
            return tenant_id == self.api_key.tenant_id
        return self.roles.get(tenant_id) in set(write_roles)

    def writable_tenant_ids(self, write_roles: Iterable[str]) -> set[int] | None:
        if self.is_superuser:
            return None
        if self.api_key is not None:
            return {self.api_key.tenant_id}
        wanted = set(write_roles)
        return {tenant_id for tenant_id, role in self.roles.items() if role in wanted}


NO_ACCESS = Access()


def access_for_user(user: Any) -> Access:
    if user is None or not getattr(user, "is_authenticated", False):
        return NO_ACCESS
    api_key = getattr(user, "api_key", None)
    if isinstance(api_key, ApiKey):
        return Access(roles={api_key.tenant_id: "api"}, api_key=api_key)
    if not user.is_active:
        return NO_ACCESS
    if user.is_superuser:
        return Access(is_superuser=True)
    return Access(roles=roles_for_user(user.pk))


def access_for(request: Any) -> Access:
    """The caller's access, computed once per request."""
    cached = getattr(request, "_evp_access", None)
    if cached is None:
        cached = access_for_user(getattr(request, "user", None))
        request._evp_access = cached  # type: ignore[union-attr]
    return cached  # type: ignore[no-any-return]


def scope_queryset(queryset: QuerySet[Any], access: Access, tenant_field: str = "tenant") -> QuerySet[Any]:
    ids = access.tenant_ids
    if ids is None:
        return queryset
    return queryset.filter(**{f"{tenant_field}__in": ids})
