from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.customers import selectors, services
from apps.customers.api.serializers import (
    BusinessCustomerSerializer,
    ContractSerializer,
    DriverSerializer,
    ImportReportSerializer,
    TokenImportSerializer,
    TokenSerializer,
    VehicleSerializer,
)
from apps.customers.filters import BusinessCustomerFilter, ContractFilter, DriverFilter, TokenFilter, VehicleFilter
from apps.tenants.scoping import TenantScopedViewSet


class _ServiceViewSet(TenantScopedViewSet):
    """Creates and updates through the app's services, so the API and the admin share the same rules."""

    create_service: ClassVar[Callable[..., Any]]
    update_service: ClassVar[Callable[..., Any]]
    update_kwarg: ClassVar[str]

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        tenant = self.resolve_tenant(data.pop("tenant", None))
        serializer.instance = _validated(type(self).create_service, tenant=tenant, **data)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        data.pop("tenant", None)  # cannot change (TenantOwnedSerializer)
        serializer.instance = _validated(type(self).update_service, **{self.update_kwarg: serializer.instance}, **data)


def _validated(service: Callable[..., Any], **kwargs: Any) -> Any:
    """Model validation errors as API validation errors (`__all__` becomes `non_field_errors`)."""
    try:
        return service(**kwargs)
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        raise serializers.ValidationError(
            {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in detail.items()}
        ) from exc


class BusinessCustomerViewSet(_ServiceViewSet):
    """Fleets and companies whose drivers charge on their account."""

    queryset = selectors.business_customer_list()
    serializer_class = BusinessCustomerSerializer
    filterset_class = BusinessCustomerFilter
    scope_area = "customers"
    create_service = staticmethod(services.business_customer_create)
    update_service = staticmethod(services.business_customer_update)
    update_kwarg = "business_customer"


class DriverViewSet(_ServiceViewSet):
    """A tenant's end users."""

    queryset = selectors.driver_list()
    serializer_class = DriverSerializer
    filterset_class = DriverFilter
    scope_area = "customers"
    create_service = staticmethod(services.driver_create)
    update_service = staticmethod(services.driver_update)
    update_kwarg = "driver"


class ContractViewSet(_ServiceViewSet):
    """Business customers' contracts: validity, priority, session limits, time windows."""

    queryset = selectors.contract_list()
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    scope_area = "customers"
    create_service = staticmethod(services.contract_create)
    update_service = staticmethod(services.contract_update)
    update_kwarg = "contract"


class TokenViewSet(_ServiceViewSet):
    """Charging tokens (OCPI 2.2.1 Token fields): RFID cards, app and ad hoc tokens."""

    queryset = selectors.token_list()
    serializer_class = TokenSerializer
    filterset_class = TokenFilter
    scope_area = "tokens"
    create_service = staticmethod(services.token_create)
    update_service = staticmethod(services.token_update)
    update_kwarg = "token"


class VehicleViewSet(_ServiceViewSet):
    """Drivers' and fleets' vehicles."""

    queryset = selectors.vehicle_list()
    serializer_class = VehicleSerializer
    filterset_class = VehicleFilter
    scope_area = "customers"
    create_service = staticmethod(services.vehicle_create)
    update_service = staticmethod(services.vehicle_update)
    update_kwarg = "vehicle"


class TokenImportViewSet(TenantScopedViewSet):
    """CSV import of tokens (only `create` is routed: POST /api/v1/tokens/import/)."""

    queryset = selectors.token_list()
    serializer_class = TokenImportSerializer
    parser_classes = [JSONParser, MultiPartParser]
    scope_area = "tokens"

    @extend_schema(
        operation_id="tokens_import",
        request={"multipart/form-data": TokenImportSerializer},
        responses={200: ImportReportSerializer},
        description=(
            "Import tokens from a CSV file (multipart field `file`). Good rows are imported, each bad row is "
            "reported with its line and reasons; existing uids are reported as duplicates, never overwritten. "
            "Columns: uid (required), type, contract_id, visual_number, issuer, group_id, valid, whitelist, "
            "language, default_profile_type, energy_contract_supplier_name, energy_contract_id, expires_at "
            "(ISO 8601 with offset), blocked, driver_email, contract_number."
        ),
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = TokenImportSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        tenant = self.resolve_tenant(serializer.validated_data.get("tenant"))
        report = services.token_import_csv(tenant=tenant, file=serializer.validated_data["file"])
        return Response(ImportReportSerializer(report).data, status=status.HTTP_200_OK)
