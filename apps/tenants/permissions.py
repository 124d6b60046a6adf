"""DRF permission: reads for every member; writes for the roles a view names; API keys by scope.

Kept apart from the view base classes: DRF imports it while `rest_framework.views` is still loading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from apps.tenants.access import DEFAULT_WRITE_ROLES, access_for

SAFE_METHODS = permissions.SAFE_METHODS


class TenantRolePermission(permissions.BasePermission):
    """Reads for every member; writes for the roles the view names; API keys by scope."""

    message = "Your role does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        access = access_for(request)
        if access.is_superuser:
            return True
        write = request.method not in SAFE_METHODS
        if access.api_key is not None:
            area = getattr(view, "scope_area", None)
            return area is not None and access.api_key.allows(area, write=write)
        if not access.roles:
            return False
        if not write:
            return True
        if superuser_only(view) and not getattr(view, "detail", False):
            return False  # detail actions decide after the lookup, so unknown objects stay 404
        return any(role in set(view_write_roles(view)) for role in access.roles.values())

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if superuser_only(view):
            return access_for(request).is_superuser
        tenant_id = view.object_tenant_id(obj) if hasattr(view, "object_tenant_id") else None
        if tenant_id is None:
            return access_for(request).is_superuser
        return access_for(request).can_write(tenant_id, view_write_roles(view))


def view_write_roles(view: Any) -> Sequence[str]:
    return tuple(getattr(view, "write_roles", DEFAULT_WRITE_ROLES))


def superuser_only(view: Any) -> bool:
    return getattr(view, "action", None) in getattr(view, "superuser_only_actions", ())
