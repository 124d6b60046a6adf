from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import ApplicationError
from apps.tenants import selectors, services
from apps.tenants.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    StaffUserSerializer,
    TenantSerializer,
)
from apps.tenants.models import ApiKey, Membership, Role, Tenant
from apps.tenants.scoping import TenantScopedViewSet


class TenantFilter(django_filters.FilterSet):
    class Meta:
        model = Tenant
        fields = ["slug", "is_active", "country", "currency"]


@extend_schema_view(
    create=extend_schema(description="Platform superusers only."),
    destroy=extend_schema(description="Platform superusers only; refused while the tenant owns data."),
)
class TenantViewSet(TenantScopedViewSet):
    """White-label tenants. Members see their tenants; tenant admins edit theirs."""

    queryset = selectors.tenant_list()
    serializer_class = TenantSerializer
    filterset_class = TenantFilter
    tenant_field = "pk"
    scope_area = "tenants"
    write_roles = (Role.ADMIN,)
    superuser_only_actions = frozenset({"create", "destroy"})
    delete_instead = "deactivate it instead (PATCH is_active: false)"

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        serializer.save()


class StaffUserFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    username = django_filters.CharFilter(field_name="user__username")
    email = django_filters.CharFilter(field_name="user__email", lookup_expr="iexact")

    class Meta:
        model = Membership
        fields = ["tenant", "role"]


class StaffUserViewSet(TenantScopedViewSet):
    """Staff users and their role in a tenant. Deleting removes the role, not the person's other roles."""

    queryset = selectors.membership_list()
    serializer_class = StaffUserSerializer
    filterset_class = StaffUserFilter
    scope_area = "staff"
    write_roles = (Role.ADMIN,)

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        user = data.pop("user")
        if "is_active" in user:  # membership_create takes no is_active (was a 500 found by make api-fuzz)
            raise serializers.ValidationError({"is_active": ["Set it with an update, not on creation."]})
        tenant = self.resolve_tenant(data.get("tenant"))
        serializer.instance = services.membership_create(
            tenant=tenant,
            role=data["role"],
            password=data.get("password"),
            **user,
        )

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        membership: Membership = serializer.instance  # type: ignore[assignment]
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        user_fields = {k: v for k, v in data.get("user", {}).items() if k != "username"}
        if user_fields:
            self._check_user_editable(membership)
        serializer.instance = services.membership_update(membership=membership, role=data.get("role"), **user_fields)

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_delete(membership=instance)

    def _check_user_editable(self, membership: Membership) -> None:
        """A person's own fields belong to every tenant they work for: only edit them when all are yours."""
        if self.access.is_superuser:
            return
        writable = self.access.writable_tenant_ids(self.write_roles) or set()
        others = membership.user.memberships.exclude(tenant_id__in=writable).exists()
        if membership.user.is_superuser or others:
            raise ApplicationError(
                "This user also works for other tenants; only their role here can be changed.",
                code="shared_user",
                status_code=403,
            )


class ApiKeyFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ApiKey
        fields = ["tenant", "name"]


class ApiKeyViewSet(TenantScopedViewSet):
    """Per-tenant API keys. The secret is returned once, on creation; DELETE revokes the key."""

    queryset = selectors.api_key_list()
    serializer_class = ApiKeySerializer
    filterset_class = ApiKeyFilter
    scope_area = "api_keys"
    write_roles = (Role.ADMIN,)

    @extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self._check_scopes(data["scopes"])
        user = request.user if getattr(request.user, "pk", None) else None
        key, raw = services.api_key_create(
            tenant=self.resolve_tenant(data.get("tenant")),
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data.get("expires_at"),
            created_by=user,  # type: ignore[arg-type]
        )
        body = ApiKeyCreatedSerializer(key, context=self.get_serializer_context()).data
        body["key"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        self._check_scopes(serializer.validated_data.get("scopes", []))  # type: ignore[union-attr]
        serializer.save()

    def perform_destroy(self, instance: ApiKey) -> None:
        services.api_key_revoke(api_key=instance)

    def _check_scopes(self, scopes: list[str]) -> None:
        """An API key managing keys cannot hand out more than it holds itself."""
        caller_key = self.access.api_key
        if caller_key is None or "*" in caller_key.scopes:
            return
        extra = sorted(set(scopes) - set(caller_key.scopes))
        if extra:
            raise ApplicationError(
                "An API key cannot grant scopes it does not hold.",
                code="scope_escalation",
                fields={"scopes": [f"Not held by the calling key: {', '.join(extra)}."]},
                status_code=403,
            )
