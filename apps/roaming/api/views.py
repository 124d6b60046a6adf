from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.serializers import ErrorSerializer
from apps.roaming import selectors, services
from apps.roaming.api.serializers import (
    EmptySerializer,
    PullSerializer,
    ResyncSerializer,
    RoamingPartnerCreatedSerializer,
    RoamingPartnerSerializer,
    TokenASerializer,
)
from apps.roaming.models import RoamingPartner
from apps.roaming.ocpi import handshake
from apps.tenants.models import Role
from apps.tenants.scoping import TenantScopedViewSet, call_validated

ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}
HANDSHAKE_ERRORS = {
    **ERRORS,
    502: OpenApiResponse(
        ErrorSerializer,
        description="`handshake_failed`: the partner could not be used; `fields.ocpi_status` is the OCPI status it "
        "amounts to (3001 unreachable or unusable, 3002 no mutual version, 3003 no mutual endpoints, or theirs). "
        "Also recorded in `last_errors.credentials`.",
    ),
}


def _our_base_url(request: Request) -> str:
    return (settings.OCPI_BASE_URL or request.build_absolute_uri("/")).rstrip("/")


class RoamingPartnerViewSet(TenantScopedViewSet):
    """OCPI roaming partners of the tenant: created, suspended, reinstated and deleted here, without a deploy.

    Creating one issues a CREDENTIALS_TOKEN_A (returned once as `token_a`) for the partner to register with us at
    our versions URL; `register/` registers us with them instead (their versions URL and their token A set)."""

    queryset = selectors.partner_list()
    serializer_class = RoamingPartnerSerializer
    scope_area = "roaming"
    write_roles: ClassVar[tuple[str, ...]] = (Role.ADMIN,)
    filterset_fields: ClassVar[list[str]] = ["status", "country_code", "party_id"]
    delete_instead = services.DELETE_INSTEAD

    @extend_schema(request=RoamingPartnerSerializer, responses={201: RoamingPartnerCreatedSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        tenant = self.resolve_tenant(data.pop("tenant", None))
        partner, token_a = call_validated(services.partner_create, tenant=tenant, **data)
        body = RoamingPartnerCreatedSerializer(partner, context=self.get_serializer_context()).data
        body["token_a"] = token_a
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        data.pop("tenant", None)
        serializer.instance = call_validated(services.partner_update, partner=serializer.instance, **data)

    def perform_destroy(self, instance: RoamingPartner) -> None:
        services.partner_delete(partner=instance)

    @extend_schema(request=EmptySerializer, responses={200: RoamingPartnerSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def suspend(self, request: Request, pk: str | None = None) -> Response:
        """Refuse the partner's tokens (401) and stop calling it, until reinstated."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        partner = services.partner_suspend(partner=self.get_object())
        return Response(RoamingPartnerSerializer(partner, context=self.get_serializer_context()).data)

    @extend_schema(request=EmptySerializer, responses={200: RoamingPartnerSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def reinstate(self, request: Request, pk: str | None = None) -> Response:
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        partner = services.partner_reinstate(partner=self.get_object())
        return Response(RoamingPartnerSerializer(partner, context=self.get_serializer_context()).data)

    @extend_schema(request=EmptySerializer, responses={200: ResyncSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def resync(self, request: Request, pk: str | None = None) -> Response:
        """Push our current locations and the tariffs the partner sees to it again (a full resynchronisation, through
        the push queue, in batches). 409 `not_registered` unless the partner is registered."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        queued = services.partner_full_sync(partner=self.get_object())
        return Response({"queued": queued})

    @extend_schema(request=EmptySerializer, responses={202: PullSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def pull(self, request: Request, pk: str | None = None) -> Response:
        """We are eMSP towards this CPO: pull its locations, tariffs, sessions and CDRs from its Sender interfaces
        again, in full (a background task; stale locations get their EVSEs REMOVED, stale tariffs are deleted).
        409 `not_registered`, `not_emsp` or `nothing_to_pull`."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        modules = services.partner_pull(partner=self.get_object(), full=True)
        return Response({"modules": modules}, status=202)

    @extend_schema(request=EmptySerializer, responses={200: TokenASerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="token-a", serializer_class=EmptySerializer)
    def token_a(self, request: Request, pk: str | None = None) -> Response:
        """A new CREDENTIALS_TOKEN_A for a pending partner (the previous one stops working)."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        _, raw = services.partner_token_a_issue(partner=self.get_object())
        return Response({"token_a": raw})

    @extend_schema(request=EmptySerializer, responses={200: RoamingPartnerSerializer, **HANDSHAKE_ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def register(self, request: Request, pk: str | None = None) -> Response:
        """We register with the partner: fetch their versions with their token A, pick 2.2.1, POST our
        credentials (a new token B), store their token C."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        partner = handshake.register_with_partner(partner=self.get_object(), base_url=_our_base_url(request))
        return Response(RoamingPartnerSerializer(partner, context=self.get_serializer_context()).data)

    @extend_schema(request=EmptySerializer, responses={200: RoamingPartnerSerializer, **HANDSHAKE_ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def rotate(self, request: Request, pk: str | None = None) -> Response:
        """New credentials tokens both ways (PUT to their credentials endpoint)."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        partner = handshake.update_with_partner(partner=self.get_object(), base_url=_our_base_url(request))
        return Response(RoamingPartnerSerializer(partner, context=self.get_serializer_context()).data)

    @extend_schema(request=EmptySerializer, responses={200: RoamingPartnerSerializer, **HANDSHAKE_ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def unregister(self, request: Request, pk: str | None = None) -> Response:
        """End the connection (DELETE to their credentials endpoint); our side forgets both tokens."""
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        partner = handshake.unregister_with_partner(partner=self.get_object())
        return Response(RoamingPartnerSerializer(partner, context=self.get_serializer_context()).data)
