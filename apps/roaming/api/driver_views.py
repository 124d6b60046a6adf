"""Driver API on partner EVSEs (we are eMSP, the EVSE is another CPO's): start, stop, reserve, cancel, unlock, and
the live view of the session, fed by the CPO's session updates.

Like the driver API on our own chargers (apps/sessions/api), a tenant API key with the `driver` scope (or staff)
acts for the driver named in the body; everything is scoped to the caller's tenants (another tenant's driver,
partner or session is a 400 or 404). The commands go to the CPO at once (OCPI commands module, apps/roaming/ocpi/
emsp_commands.py); the answer is the partner session with its state: `requested` while the CPO's charger is asked
(or already the CPO's refusal: `rejected`, `not_supported`, `failed`), then the CommandResult's state, then the
CPO's session status (PENDING, ACTIVE, COMPLETED) with kWh and cost.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.serializers import ErrorSerializer
from apps.customers.models import Driver
from apps.roaming.api.driver_serializers import (
    PartnerEvseTargetSerializer,
    PartnerReservationCreateSerializer,
    PartnerSessionSerializer,
    PartnerSessionStartSerializer,
)
from apps.roaming.api.serializers import EmptySerializer
from apps.roaming.ocpi import emsp_commands
from apps.roaming.oicp import emp as hubject
from apps.sessions.models import PartnerSession, PartnerSessionState
from apps.stations.models import PartnerEvse
from apps.tenants.scoping import TenantScopedViewSet

READ_ONLY = ["get", "head", "options"]
ERRORS: dict[int, Any] = {
    400: ErrorSerializer,
    403: OpenApiResponse(
        ErrorSerializer, description="`token_blocked`, `token_expired`, `token_invalid`: the token may not charge."
    ),
    404: ErrorSerializer,
    409: OpenApiResponse(
        ErrorSerializer,
        description="`partner_unavailable`: the EVSE's operator is not a registered partner we can command (not "
        "registered, suspended, no commands endpoint); `partner_session_state`: not in a state for this command; "
        "`evse_removed`.",
    ),
    422: OpenApiResponse(ErrorSerializer, description="`token_unknown`: the driver has no such (usable) token."),
}
ACCEPTED_DOC = (
    "202: sent to the operator; the partner session as it stands (`state`). Follow it with GET on its id: the "
    "charger's result (CommandResult) and then the operator's session updates change it."
)


def _base_url(request: Request) -> str:
    """Where the CPO POSTs its CommandResults: our OCPI base URL."""
    return (settings.OCPI_BASE_URL or request.build_absolute_uri("/")).rstrip("/")


class PartnerSessionFilter(django_filters.FilterSet):
    driver = django_filters.NumberFilter(field_name="driver_id")
    state = django_filters.ChoiceFilter(choices=PartnerSessionState.choices)


class _PartnerSessionBase(TenantScopedViewSet):
    queryset = PartnerSession.objects.select_related("token").prefetch_related("commands").order_by("-id")
    serializer_class: Any = PartnerSessionSerializer
    filterset_class = PartnerSessionFilter
    scope_area = "driver"
    write_roles = ("admin", "operations")
    http_method_names = ["get", "post", "head", "options"]

    def _input(self, cls: Any) -> dict[str, Any]:
        serializer = cls(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        driver: Driver = data["driver"]
        if not self.access.can_write(driver.tenant_id, self.write_roles):
            raise serializers.ValidationError({"driver": ["You cannot act for this driver."]})
        return data

    def _evse(self, data: dict[str, Any]) -> PartnerEvse:
        partner = data.get("partner")
        return emsp_commands.partner_evse_find(
            tenant_id=data["driver"].tenant_id,
            evse_id=data.get("evse_id", ""),
            partner_id=partner.pk if partner is not None else None,
            location_id=data.get("location_id", ""),
            evse_uid=data.get("evse_uid", ""),
        )

    def _answer(self, session: PartnerSession, code: int = status.HTTP_202_ACCEPTED) -> Response:
        session = self.get_queryset().get(pk=session.pk)
        return Response(PartnerSessionSerializer(session).data, status=code)


class DriverPartnerSessionViewSet(_PartnerSessionBase):
    """Driver app on partner EVSEs: POST starts (START_SESSION; by EVSE id / QR payload, or partner + Location.id +
    EVSE.uid), GET lists the driver's partner sessions (`?driver=`, `?state=`), a detail is the live view (state,
    kWh, the operator's cost, start and end), `stop` stops (STOP_SESSION), `unlock` unlocks its connector."""

    serializer_class = PartnerSessionStartSerializer

    def get_serializer_class(self) -> Any:
        if (self.request.method or "").lower() in READ_ONLY:
            return PartnerSessionSerializer
        return PartnerSessionStartSerializer if self.action == "create" else EmptySerializer

    @extend_schema(
        request=PartnerSessionStartSerializer,
        responses={202: OpenApiResponse(PartnerSessionSerializer, description=ACCEPTED_DOC), **ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(PartnerSessionStartSerializer)
        evse = self._evse(data)
        if hubject.connection_of(evse.location.partner) is not None:  # a CPO behind Hubject: AuthorizeRemoteStart
            token = emsp_commands.driver_token(driver=data["driver"], token_uid=data.get("token_uid"))
            return self._answer(hubject.session_start(driver=data["driver"], evse=evse, token=token))
        session = emsp_commands.session_start(
            driver=data["driver"],
            evse=evse,
            connector_id=data.get("connector_id"),
            token_uid=data.get("token_uid"),
            base_url=_base_url(request),
        )
        return self._answer(session)

    @extend_schema(
        request=EmptySerializer,
        responses={202: OpenApiResponse(PartnerSessionSerializer, description=ACCEPTED_DOC), **ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def stop(self, request: Request, pk: str | None = None) -> Response:
        """STOP_SESSION: `stop_requested`, then `stop_accepted` (the operator's session then ends: COMPLETED) or back
        to the state before with the reason."""
        session = self._writable(self.get_object())
        if hubject.connection_of(session.partner) is not None:  # started through Hubject: AuthorizeRemoteStop
            return self._answer(hubject.session_stop(session=session))
        return self._answer(emsp_commands.session_stop(session=session, base_url=_base_url(request)))

    @extend_schema(
        request=EmptySerializer,
        responses={202: OpenApiResponse(PartnerSessionSerializer, description=ACCEPTED_DOC), **ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def unlock(self, request: Request, pk: str | None = None) -> Response:
        """UNLOCK_CONNECTOR of the session's connector: the outcome is in `state_reason` and `commands`."""
        session = self._writable(self.get_object())
        return self._answer(emsp_commands.connector_unlock(session=session, base_url=_base_url(request)))

    def _writable(self, session: PartnerSession) -> PartnerSession:
        EmptySerializer(data=self.request.data).is_valid(raise_exception=True)
        if not self.access.can_write(session.tenant_id, self.write_roles):
            raise serializers.ValidationError({"non_field_errors": ["You cannot act for this driver."]})
        return session


class DriverPartnerReservationViewSet(_PartnerSessionBase):
    """Reservations of partner EVSEs: POST reserves (RESERVE_NOW; through Hubject AuthorizeRemoteReservationStart, at
    most 99 minutes), a detail is its live view, `cancel` cancels it (CANCEL_RESERVATION; through Hubject
    AuthorizeRemoteReservationStop). A reservation is a partner session in the states `reserving`, RESERVATION,
    `canceled`."""

    serializer_class = PartnerReservationCreateSerializer

    def get_queryset(self) -> Any:
        return super().get_queryset().filter(reservation_expires_at__isnull=False)

    def get_serializer_class(self) -> Any:
        if (self.request.method or "").lower() in READ_ONLY:
            return PartnerSessionSerializer
        return PartnerReservationCreateSerializer if self.action == "create" else EmptySerializer

    @extend_schema(
        request=PartnerReservationCreateSerializer,
        responses={202: OpenApiResponse(PartnerSessionSerializer, description=ACCEPTED_DOC), **ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(PartnerReservationCreateSerializer)
        evse = self._evse(data)
        if hubject.connection_of(evse.location.partner) is not None:  # AuthorizeRemoteReservationStart
            token = emsp_commands.driver_token(driver=data["driver"], token_uid=data.get("token_uid"))
            reserved = hubject.reservation_start(
                driver=data["driver"], evse=evse, token=token, expires_at=data["expires_at"]
            )
            return self._answer(reserved)
        session = emsp_commands.reservation_create(
            driver=data["driver"],
            evse=evse,
            expires_at=data["expires_at"],
            token_uid=data.get("token_uid"),
            base_url=_base_url(request),
        )
        return self._answer(session)

    @extend_schema(
        request=EmptySerializer,
        responses={202: OpenApiResponse(PartnerSessionSerializer, description=ACCEPTED_DOC), **ERRORS},
    )
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """CANCEL_RESERVATION: `cancel_requested`, then `canceled` or back to RESERVATION with the reason."""
        session = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        if not self.access.can_write(session.tenant_id, self.write_roles):
            raise serializers.ValidationError({"non_field_errors": ["You cannot act for this driver."]})
        if hubject.connection_of(session.partner) is not None:  # AuthorizeRemoteReservationStop
            return self._answer(hubject.reservation_stop(session=session))
        return self._answer(emsp_commands.reservation_cancel(session=session, base_url=_base_url(request)))


__all__ = ["DriverPartnerReservationViewSet", "DriverPartnerSessionViewSet", "PartnerEvseTargetSerializer"]
