"""Stations API: locations, charge points (register, rotate password, one endpoint per OCPP command),
EVSEs, connectors, and the command log."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from apps.core.api.serializers import ErrorSerializer
from apps.customers import selectors as customer_selectors
from apps.stations import decommission, selectors, services
from apps.stations.api.serializers import (
    CertificateAuthoritySerializer,
    ChargePointCreatedSerializer,
    ChargePointCreateSerializer,
    ChargePointSerializer,
    CommandSerializer,
    ConnectorSerializer,
    EmptySerializer,
    EvseSerializer,
    InstalledCertificateSerializer,
    LocationSerializer,
    RotatedPasswordSerializer,
    SecurityEventSerializer,
    SigningRequestSerializer,
    command_serializer,
    slug_for,
)
from apps.stations.models import (
    CertificateAuthority,
    CertificateSigningRequest,
    ChargePoint,
    Command,
    Connector,
    Evse,
    InstalledCertificate,
    Location,
    RegistrationStatus,
    SecurityEvent,
)
from apps.tenants.scoping import TenantScopedViewSet

ERRORS = {400: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}


class DecommissionedFilter(django_filters.FilterSet):
    """`decommissioned=true` lists only decommissioned rows; without it (or `false`) lists show what is in service."""

    decommissioned_field: str = "decommissioned_at"
    decommissioned = django_filters.BooleanFilter(
        method="filter_decommissioned",
        label="Decommissioned (OCPI REMOVED) rows only; without this filter, lists show only rows in service.",
    )

    def filter_decommissioned(self, queryset: QuerySet[Any], name: str, value: bool | None) -> QuerySet[Any]:
        if value is None:
            return queryset
        return queryset.filter(**{f"{self.decommissioned_field}__isnull": not value})


class DecommissionMixin:
    """Lists show what is in service unless `?decommissioned=` is given; `POST .../{id}/decommission/` takes an
    object out of service; a DELETE refused because history depends on the object points to that action."""

    decommissioned_field = "decommissioned_at"
    decommission_url_name = ""

    def get_queryset(self) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset()  # type: ignore[misc]
        view: Any = self
        if view.action == "list" and view.request.query_params.get("decommissioned") in (None, ""):
            queryset = queryset.filter(**{f"{self.decommissioned_field}__isnull": True})
        return queryset

    def delete_instead_for(self, instance: Any) -> str:
        if not self.decommission_url_name:
            return "decommission its EVSE instead"
        url = reverse(self.decommission_url_name, kwargs={"pk": instance.pk})
        return f"decommission it instead (POST {url})"


def _tenant_id(instance: Any) -> int:
    return instance.tenant_id if hasattr(instance, "tenant_id") else instance.evse.tenant_id  # a connector: its EVSE's


class StationsChangedMixin:
    """Creates, updates and deletes of locations, charge points, EVSEs and connectors drop the tenant's cached reads
    of the network on commit (`services.stations_changed`). A viewset that defines its own `perform_*` replaces
    these: it calls a service that invalidates (`evse_create`, `connector_create`) or invalidates itself."""

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        super().perform_create(serializer)  # type: ignore[misc]
        services.stations_changed(tenant_id=_tenant_id(serializer.instance))

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        before = _tenant_id(serializer.instance)
        super().perform_update(serializer)  # type: ignore[misc]
        services.stations_changed(tenant_id=before)

    def perform_destroy(self, instance: Any) -> None:
        tenant_id = _tenant_id(instance)
        super().perform_destroy(instance)  # type: ignore[misc]
        services.stations_changed(tenant_id=tenant_id)


def _decommission_schema(serializer: type[serializers.Serializer[Any]], what: str) -> Any:
    return extend_schema(
        request=EmptySerializer,
        responses={200: serializer, **ERRORS},
        description=(
            f"Take the {what} out of service (OCPI status REMOVED) instead of deleting it: it leaves the lists (see "
            "`?decommissioned=`), the driver station search and smart charging, no new session or reservation can "
            "start on it, and it stays readable with its history. Idempotent; there is no way back."
        ),
    )


class LocationFilter(DecommissionedFilter):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")

    class Meta:
        model = Location
        fields = ["tenant", "city", "country", "publish"]


class LocationViewSet(StationsChangedMixin, DecommissionMixin, TenantScopedViewSet):
    """Sites with charge points (OCPI Locations)."""

    queryset = selectors.location_list()
    serializer_class = LocationSerializer
    filterset_class = LocationFilter
    scope_area = "stations"
    decommission_url_name = "location-decommission"

    @_decommission_schema(LocationSerializer, "location, every charge point and every EVSE at it,")
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def decommission(self, request: Request, pk: str | None = None) -> Response:
        location = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        location = decommission.location_decommission(location=location)
        return Response(LocationSerializer(location, context=self.get_serializer_context()).data)


class ChargePointFilter(DecommissionedFilter):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    location_id = django_filters.NumberFilter(field_name="location_id")

    class Meta:
        model = ChargePoint
        fields = ["tenant", "location", "online", "status", "vendor", "registration_status", "identity"]


STARTING_ACTIONS = frozenset({"RemoteStartTransaction", "ReserveNow"})
ID_TAG_FIELDS = {"RemoteStartTransaction": ("idTag",), "ReserveNow": ("idTag", "parentIdTag")}


def _connector_of(data: Any) -> int | None:
    value = data.get("connectorId") if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _wire_id_tags(ocpp_action: str, data: Any) -> Any:
    """A token uid longer than OCPP 1.6's 20-character idTag (OCPI allows 36: app tokens' UUIDs) is sent as the
    token's wire id, which the charger's Authorize/StartTransaction then maps back (`customers` wire ids)."""
    fields = ID_TAG_FIELDS.get(ocpp_action, ())
    if not isinstance(data, dict) or not any(isinstance(data.get(f), str) for f in fields):
        return data
    mapped = dict(data)
    for name in fields:
        if isinstance(mapped.get(name), str):
            mapped[name] = customer_selectors.wire_id_of(mapped[name])
    return mapped


def _command_view(ocpp_action: str) -> Any:
    input_serializer = command_serializer(ocpp_action)

    def view(self: ChargePointViewSet, request: Request, pk: str | None = None) -> Response:
        charge_point = self.get_object()
        if ocpp_action in STARTING_ACTIONS:
            decommission.ensure_in_service(charge_point=charge_point, connector_id=_connector_of(request.data))
        data = input_serializer(data=_wire_id_tags(ocpp_action, request.data), context={"charge_point": charge_point})
        data.is_valid(raise_exception=True)
        payload = data.to_payload()
        user = request.user if getattr(request.user, "pk", None) else None
        if ocpp_action == "GetDiagnostics" and "location" not in payload:
            _, command = services.diagnostics_request(
                charge_point=charge_point, requested_by=user, source="api", **payload
            )
        elif ocpp_action == "GetLog":
            _, command = services.log_request(
                charge_point=charge_point, payload=payload, requested_by=user, source="api"
            )
        else:
            command = services.send_command(
                charge_point=charge_point, action=ocpp_action, payload=payload, requested_by=user, source="api"
            )
        return Response(CommandSerializer(command).data)

    view.__name__ = slug_for(ocpp_action).replace("-", "_")
    view.__doc__ = f"Send {ocpp_action} to the charger and wait for its answer."
    schema = extend_schema(
        request=input_serializer,
        responses={200: CommandSerializer, **ERRORS},
        description=(
            f"Send OCPP 1.6 `{ocpp_action}` (payload in camelCase, as on the wire) to the charger, wherever its "
            "socket is, and wait up to 30 s. The payload is checked first against the OCPP 1.6 schema and "
            "specification and against this charger (its connectors, its last configuration read, its local list "
            "version): a wrong one is a 400 `validation_error` with the fields nested as in the payload (the "
            "message names the first by its dotted path, e.g. "
            "`csChargingProfiles.chargingSchedule.chargingSchedulePeriod.1.startPeriod: ...`), and nothing is "
            "recorded or sent. The "
            "command record comes back with `status` accepted, rejected, error (CallError) or timeout, as stored; "
            "a charger that is not connected answers 409 `charge_point_offline`."
            + (" Without `location`, the platform's own upload URL is used." if ocpp_action == "GetDiagnostics" else "")
            + (
                " Without `log.remoteLocation`, the charger uploads to the platform (`/ocpp-files/diagnostics/...`)."
                if ocpp_action == "GetLog"
                else ""
            )
            + (
                " An `idTag` longer than OCPP 1.6's 20 characters (a token uid up to OCPI's 36) is sent as the "
                "token's wire id, which the charger's Authorize and StartTransaction map back; a decommissioned "
                "charger, location or EVSE answers 409 `decommissioned` and nothing is sent."
                if ocpp_action in STARTING_ACTIONS
                else ""
            )
        ),
    )
    return schema(
        action(
            detail=True,
            methods=["post"],
            url_path=f"commands/{slug_for(ocpp_action)}",
            url_name=f"command-{slug_for(ocpp_action)}",
            serializer_class=input_serializer,
        )(view)
    )


class ChargePointViewSet(StationsChangedMixin, DecommissionMixin, TenantScopedViewSet):
    """OCPP charge points. Registering returns the HTTP Basic password once; every OCPP 1.6 command has its own
    endpoint under `/charge-points/{id}/commands/<command>`."""

    queryset = selectors.charge_point_list()
    serializer_class = ChargePointSerializer
    filterset_class = ChargePointFilter
    scope_area = "stations"
    decommission_url_name = "charge-point-decommission"

    @_decommission_schema(ChargePointSerializer, "charge point and its EVSEs")
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def decommission(self, request: Request, pk: str | None = None) -> Response:
        charge_point = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        charge_point = decommission.charge_point_decommission(charge_point=charge_point)
        return Response(ChargePointSerializer(charge_point, context=self.get_serializer_context()).data)

    @extend_schema(request=ChargePointCreateSerializer, responses={201: ChargePointCreatedSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ChargePointCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        tenant = self.resolve_tenant(data.pop("tenant", None))
        if data.get("location") is not None and data["location"].tenant_id != tenant.pk:
            raise serializers.ValidationError({"location": ["The location belongs to another tenant."]})
        charge_point, raw = services.charge_point_register(tenant=tenant, password=data.pop("password", None), **data)
        body = ChargePointCreatedSerializer(charge_point, context=self.get_serializer_context()).data
        body["password"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=EmptySerializer,
        responses={200: RotatedPasswordSerializer, **ERRORS},
        description=(
            "New HTTP Basic password. A connected charger is sent ChangeConfiguration AuthorizationKey first and "
            "the password changes only when it accepts (409 otherwise); an offline one changes at once."
        ),
    )
    @action(detail=True, methods=["post"], url_path="rotate-password", serializer_class=EmptySerializer)
    def rotate_password(self, request: Request, pk: str | None = None) -> Response:
        charge_point = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        user = request.user if getattr(request.user, "pk", None) else None
        raw, command = services.charge_point_rotate_password(charge_point=charge_point, requested_by=user)
        return Response({"password": raw, "command": CommandSerializer(command).data if command else None})

    @extend_schema(
        request=EmptySerializer,
        responses={200: ChargePointSerializer, **ERRORS},
        description=(
            "Accept a pending (or rejected) charger. A charger without a password of its own (auto-registered) "
            "is given one (ChangeConfiguration AuthorizationKey, stored only once it answered Accepted) and asked "
            "to boot again (TriggerMessage BootNotification), at once if it is connected, else at its next "
            "connection; from then on its password is required. `password_pending` tells whether it still waits "
            "for its password."
        ),
    )
    @action(detail=True, methods=["post"], url_path="accept", serializer_class=EmptySerializer)
    def accept(self, request: Request, pk: str | None = None) -> Response:
        charge_point = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        user = request.user if getattr(request.user, "pk", None) else None
        charge_point = services.charge_point_accept(charge_point=charge_point, requested_by=user)
        return Response(ChargePointSerializer(charge_point, context=self.get_serializer_context()).data)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        """A registration status change goes through its service: accepting a charger tells it (see `accept`)."""
        data: dict[str, Any] = serializer.validated_data  # type: ignore[assignment]
        status_to = data.pop("registration_status", None)
        before = serializer.instance.registration_status if serializer.instance is not None else None
        serializer.save()
        charge_point = serializer.instance
        if charge_point is not None:  # this method replaces StationsChangedMixin's: a moved charger shows at once
            services.stations_changed(tenant_id=charge_point.tenant_id)
        if status_to is None or status_to == before or charge_point is None:
            return
        user = self.request.user if getattr(self.request.user, "pk", None) else None
        if status_to == RegistrationStatus.ACCEPTED:
            serializer.instance = services.charge_point_accept(charge_point=charge_point, requested_by=user)
        else:
            serializer.instance = services.charge_point_registration_set(charge_point=charge_point, status=status_to)

    for _ocpp_action in services.SERVER_ACTIONS:
        locals()[slug_for(_ocpp_action).replace("-", "_")] = _command_view(_ocpp_action)
    del _ocpp_action


class EvseFilter(DecommissionedFilter):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    charge_point_id = django_filters.NumberFilter(field_name="charge_point_id")

    class Meta:
        model = Evse
        fields = ["tenant", "charge_point", "status", "evse_uid"]


class EvseViewSet(StationsChangedMixin, DecommissionMixin, TenantScopedViewSet):
    """EVSEs (one per OCPP connector id >= 1)."""

    queryset = selectors.evse_list()
    serializer_class = EvseSerializer
    filterset_class = EvseFilter
    scope_area = "stations"
    decommission_url_name = "evse-decommission"

    @_decommission_schema(EvseSerializer, "EVSE")
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def decommission(self, request: Request, pk: str | None = None) -> Response:
        evse = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        evse = decommission.evse_decommission(evse=evse)
        return Response(EvseSerializer(evse, context=self.get_serializer_context()).data)

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        data.pop("tenant", None)
        serializer.instance = services.evse_create(**data)


class ConnectorFilter(DecommissionedFilter):
    decommissioned_field = "evse__decommissioned_at"
    evse_id = django_filters.NumberFilter(field_name="evse_id")

    class Meta:
        model = Connector
        fields = ["evse", "standard", "power_type"]


class ConnectorViewSet(StationsChangedMixin, DecommissionMixin, TenantScopedViewSet):
    """Plugs and cables of EVSEs (OCPI Connectors); a connector's EVSE is what gets decommissioned."""

    decommissioned_field = "evse__decommissioned_at"

    queryset = selectors.connector_list()
    serializer_class = ConnectorSerializer
    filterset_class = ConnectorFilter
    scope_area = "stations"
    tenant_field = "evse__tenant"

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        serializer.instance = services.connector_create(**serializer.validated_data)  # type: ignore[arg-type]


class CommandFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    charge_point_id = django_filters.NumberFilter(field_name="charge_point_id")

    class Meta:
        model = Command
        fields = ["tenant", "charge_point", "action", "status", "source"]


class CommandViewSet(TenantScopedViewSet):
    """The command log (read-only): every CALL sent to chargers and its answer."""

    queryset = selectors.command_list()
    serializer_class = CommandSerializer
    filterset_class = CommandFilter
    scope_area = "stations"
    http_method_names = ["get", "head", "options"]


# --------------------------------------------------------------------------- OCPP 1.6 security extension (read-only)


class SecurityEventFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    charge_point_id = django_filters.NumberFilter(field_name="charge_point_id")

    class Meta:
        model = SecurityEvent
        fields = ["tenant", "charge_point", "type", "critical"]


class SecurityEventViewSet(TenantScopedViewSet):
    """SecurityEventNotifications of chargers (read-only); critical ones also open a `security_event` alert."""

    queryset = selectors.security_event_list()
    serializer_class = SecurityEventSerializer
    filterset_class = SecurityEventFilter
    scope_area = "stations"
    http_method_names = ["get", "head", "options"]


class SigningRequestFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    charge_point_id = django_filters.NumberFilter(field_name="charge_point_id")

    class Meta:
        model = CertificateSigningRequest
        fields = ["tenant", "charge_point", "status"]


class SigningRequestViewSet(TenantScopedViewSet):
    """Chargers' SignCertificate requests (read-only): the CSR, accepted or rejected (and why), the certificate the
    tenant's CA signed and whether the charger accepted it (CertificateSigned)."""

    queryset = selectors.signing_request_list()
    serializer_class = SigningRequestSerializer
    filterset_class = SigningRequestFilter
    scope_area = "stations"
    http_method_names = ["get", "head", "options"]


class InstalledCertificateFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    charge_point_id = django_filters.NumberFilter(field_name="charge_point_id")

    class Meta:
        model = InstalledCertificate
        fields = ["tenant", "charge_point", "certificate_type", "source"]


class InstalledCertificateViewSet(TenantScopedViewSet):
    """Certificates on chargers as far as the platform knows (read-only): installed by an accepted
    InstallCertificate or CertificateSigned, reported by GetInstalledCertificateIds, removed by an accepted
    DeleteCertificate. Change them with the charge point's commands."""

    queryset = selectors.installed_certificate_list()
    serializer_class = InstalledCertificateSerializer
    filterset_class = InstalledCertificateFilter
    scope_area = "stations"
    http_method_names = ["get", "head", "options"]


class CertificateAuthorityFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")

    class Meta:
        model = CertificateAuthority
        fields = ["tenant"]


class CertificateAuthorityViewSet(TenantScopedViewSet):
    """The tenant's CSMS certificate authority (read-only; created when a charger first asks for a certificate):
    its certificate, to install on chargers as their CentralSystemRootCertificate. The key is never shown."""

    queryset = selectors.certificate_authority_list()
    serializer_class = CertificateAuthoritySerializer
    filterset_class = CertificateAuthorityFilter
    scope_area = "stations"
    http_method_names = ["get", "head", "options"]
