from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.serializers import ErrorSerializer
from apps.core.errors import ApplicationError
from apps.tenants import selectors, services
from apps.tenants.access import access_for
from apps.tenants.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    EmptySerializer,
    InvitationAcceptedSerializer,
    InvitationAcceptSerializer,
    InvitationSerializer,
    StaffUserSerializer,
    TenantSerializer,
)
from apps.tenants.models import ApiKey, Invitation, Membership, Role, Tenant
from apps.tenants.scoping import TenantScopedGenericViewSet, TenantScopedViewSet


class TenantFilter(django_filters.FilterSet):
    class Meta:
        model = Tenant
        fields = ["slug", "is_active", "country", "currency"]


@extend_schema_view(
    create=extend_schema(description="Platform superusers only."),
    destroy=extend_schema(description="Platform superusers only; refused while the tenant owns data."),
    partial_update=extend_schema(description="Tenant admins edit their tenant; `is_active` is the platform's (403)."),
    update=extend_schema(description="Tenant admins edit their tenant; `is_active` is the platform's (403)."),
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

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        tenant: Tenant = serializer.instance  # type: ignore[assignment]
        wanted = serializer.validated_data.get("is_active", tenant.is_active)  # type: ignore[union-attr]
        if wanted != tenant.is_active and not self.access.is_superuser:
            raise ApplicationError(
                "Only the platform operator can disable or enable a tenant.",
                code="platform_only",
                fields={"is_active": ["Only the platform operator can change this."]},
                status_code=403,
            )
        serializer.save()
        services.tenant_changed(tenant_id=tenant.pk)


class StaffUserFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    username = django_filters.CharFilter(field_name="user__username")
    email = django_filters.CharFilter(field_name="user__email", lookup_expr="iexact")

    class Meta:
        model = Membership
        fields = ["tenant", "role", "is_active", "source"]


NOT_CREATED_HERE = (
    "Staff users are not created here: invite them with POST /api/v1/staff-invitations/ "
    "(the person chooses their own password when accepting)."
)


@extend_schema_view(
    partial_update=extend_schema(description="Change the role, or turn the access to this tenant off or on."),
    update=extend_schema(description="Change the role, or turn the access to this tenant off or on."),
    destroy=extend_schema(description="Remove the person's access to this tenant; their other tenants keep theirs."),
)
class StaffUserViewSet(
    TenantScopedGenericViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """People working for a tenant: one row per person and tenant (a membership). People join by invitation
    (`/staff-invitations/`); a tenant changes only its own row (role, access), never the person's account."""

    queryset = selectors.membership_list()
    serializer_class = StaffUserSerializer
    filterset_class = StaffUserFilter
    scope_area = "staff"
    write_roles = (Role.ADMIN,)

    def http_method_not_allowed(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        if request.method == "POST" and not self.detail:
            raise exceptions.MethodNotAllowed("POST", detail=NOT_CREATED_HERE)
        return super().http_method_not_allowed(request, *args, **kwargs)  # type: ignore[no-any-return]

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        membership: Membership = serializer.instance  # type: ignore[assignment]
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        serializer.instance = services.membership_update(
            membership=membership,
            role=data.get("role"),
            is_active=data.get("is_active"),
            acting_key=self.access.api_key,
        )

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_delete(membership=instance)


class InvitationFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Invitation
        fields = ["tenant", "role"]


class InvitationAcceptPermission(permissions.BasePermission):
    """Whoever holds the token may accept, logged in or not; never an API key (a key is not a person)."""

    message = "An invitation is accepted by the invited person, not by an API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        return access_for(request).api_key is None


ERROR = ErrorSerializer


@extend_schema_view(
    create=extend_schema(
        description="Invite an e-mail address to a role in the tenant; the link is e-mailed to it and works for "
        f"{settings.STAFF_INVITATION_DAYS} days. The answer is the same whoever the address belongs to. A password, "
        "username or user id is refused: the person picks their account when accepting. API keys need `*`.",
        responses={201: InvitationSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 409: ERROR},
    ),
    destroy=extend_schema(
        description="Revoke the invitation (its link stops working). An accepted one answers 409: remove the "
        "membership (`DELETE /staff-users/{id}/`) instead.",
        responses={204: None, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
    ),
)
class InvitationViewSet(
    TenantScopedGenericViewSet,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
):
    """Invitations of people into a tenant. The person accepts with the link from the e-mail (or
    `POST /staff-invitations/accept/`): with the account they are logged in with, or by creating one."""

    queryset = selectors.invitation_list()
    serializer_class = InvitationSerializer
    filterset_class = InvitationFilter
    scope_area = "staff"
    write_roles = (Role.ADMIN,)

    def get_permissions(self) -> list[Any]:
        if self.action == "accept":
            return [InvitationAcceptPermission()]
        return list(super().get_permissions())

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        user = self.request.user if getattr(self.request.user, "pk", None) else None
        serializer.instance = services.invitation_create(
            tenant=self.resolve_tenant(data.get("tenant")),
            email=data["email"],
            role=data["role"],
            invited_by=user,  # type: ignore[arg-type]
            invited_by_key=self.access.api_key,
        )

    def perform_destroy(self, instance: Invitation) -> None:
        services.invitation_revoke(invitation=instance)

    @extend_schema(
        request=EmptySerializer,
        responses={200: InvitationSerializer, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        description="E-mail a new link (the old one stops working) with a new expiry. A revoked or accepted "
        "invitation answers 409.",
    )
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def resend(self, request: Request, pk: str | None = None) -> Response:
        invitation = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        invitation = services.invitation_resend(invitation=invitation)
        return Response(InvitationSerializer(invitation, context=self.get_serializer_context()).data)

    @extend_schema(
        request=InvitationAcceptSerializer,
        responses={201: InvitationAcceptedSerializer, 400: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        auth=[{}, {"cookieAuth": []}, *([{"oidcAuth": []}] if settings.OIDC_ENABLED else [])],  # type: ignore[list-item]
        description=(
            "The invited person accepts. Not logged in: send `password` (and optionally your name) to create your "
            "account, whose login is the invited e-mail address; 409 `account_exists` if an account already uses "
            "that login (log in and accept with it). Logged in (session or OIDC token): send only the token to "
            "accept with your account; a password is then refused (400), never ignored. An unknown, expired, "
            "revoked or used token is 404 `invitation_not_found`. API keys cannot accept (403)."
        ),
    )
    @action(detail=False, methods=["post"], serializer_class=InvitationAcceptSerializer)
    def accept(self, request: Request) -> Response:
        serializer = InvitationAcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user if getattr(request.user, "is_authenticated", False) else None
        membership = services.invitation_accept(
            token=data["token"],
            user=user,  # type: ignore[arg-type]
            password=data.get("password"),
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
        )
        return Response(InvitationAcceptedSerializer(membership).data, status=status.HTTP_201_CREATED)


class ApiKeyFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = ApiKey
        fields = ["tenant", "name"]


class ApiKeyViewSet(TenantScopedViewSet):
    """Per-tenant API keys. The secret is returned once, on creation; DELETE revokes the key.

    A key calling these routes never grants scopes it does not hold, never changes or revokes a key that holds
    more than itself, and never changes or revokes itself (403 `scope_escalation` / `own_api_key`)."""

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
        user = request.user if getattr(request.user, "pk", None) else None
        key, raw = services.api_key_create(
            tenant=self.resolve_tenant(data.get("tenant")),
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data.get("expires_at"),
            created_by=user,  # type: ignore[arg-type]
            acting_key=self.access.api_key,
        )
        body = ApiKeyCreatedSerializer(key, context=self.get_serializer_context()).data
        body["key"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {k: data[k] for k in ("name", "scopes", "expires_at") if k in data}
        serializer.instance = services.api_key_update(
            api_key=serializer.instance,  # type: ignore[arg-type]
            acting_key=self.access.api_key,
            **kwargs,
        )

    def perform_destroy(self, instance: ApiKey) -> None:
        services.api_key_revoke(api_key=instance, acting_key=self.access.api_key)
