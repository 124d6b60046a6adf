"""Energy API: the site tree and its time-of-use limits (CRUD), grid signals and building load (append-only)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.energy import selectors, services
from apps.energy.api.serializers import (
    BuildingLoadReadingSerializer,
    GridNodeSerializer,
    GridSignalSerializer,
    TimeOfUseLimitSerializer,
)
from apps.tenants.models import User
from apps.tenants.scoping import ServiceViewSet, TenantScopedViewSet, call_validated


class GridNodeViewSet(ServiceViewSet):
    """Nodes of a site's electrical tree (grid connection, site, sub-distribution, charge point)."""

    queryset = selectors.grid_node_list()
    serializer_class = GridNodeSerializer
    scope_area = "energy"
    create_service = staticmethod(services.grid_node_create)
    update_service = staticmethod(services.grid_node_update)
    instance_kwarg = "node"


class TimeOfUseLimitViewSet(ServiceViewSet):
    """Recurring limits in the site's local time, e.g. weekdays 17:00-20:00 at 60 %."""

    queryset = selectors.tou_limit_list()
    serializer_class = TimeOfUseLimitSerializer
    scope_area = "energy"
    create_service = staticmethod(services.tou_limit_create)
    update_service = staticmethod(services.tou_limit_update)
    delete_service = staticmethod(services.tou_limit_delete)
    instance_kwarg = "window"


class GridSignalViewSet(TenantScopedViewSet):
    """Capacity limits posted by the grid operator or energy company (API key scope `energy:write`).
    Append-only: a later signal replaces an earlier one; the rows are the audit trail."""

    queryset = selectors.grid_signal_list()
    serializer_class = GridSignalSerializer
    scope_area = "energy"

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        tenant = self.resolve_tenant(data.pop("tenant", None))
        user = self.request.user if isinstance(self.request.user, User) else None
        serializer.instance = call_validated(
            services.grid_signal_create, tenant=tenant, created_by=user, api_key=self.access.api_key, **data
        )


class BuildingLoadReadingViewSet(TenantScopedViewSet):
    """Measured non-EV load below a node; the newest reading of the last 15 minutes is subtracted."""

    queryset = selectors.building_load_list()
    serializer_class = BuildingLoadReadingSerializer
    scope_area = "energy"

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        tenant = self.resolve_tenant(data.pop("tenant", None))
        serializer.instance = call_validated(services.building_load_record, tenant=tenant, **data)
