from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.parsers import JSONParser
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
from apps.tenants.scoping import ServiceViewSet, TenantScopedViewSet


class BusinessCustomerViewSet(ServiceViewSet):
    """Fleets and companies whose drivers charge on their account."""

    queryset = selectors.business_customer_list()
    serializer_class = BusinessCustomerSerializer
    filterset_class = BusinessCustomerFilter
    scope_area = "customers"
    create_service = staticmethod(services.business_customer_create)
    update_service = staticmethod(services.business_customer_update)
    instance_kwarg = "business_customer"
    delete_instead = "deactivate it instead (PATCH is_active: false)"


class DriverViewSet(ServiceViewSet):
    """A tenant's end users."""

    queryset = selectors.driver_list()
    serializer_class = DriverSerializer
    filterset_class = DriverFilter
    scope_area = "customers"
    create_service = staticmethod(services.driver_create)
    update_service = staticmethod(services.driver_update)
    instance_kwarg = "driver"
    delete_instead = "deactivate it instead (PATCH is_active: false)"


class ContractViewSet(ServiceViewSet):
    """Business customers' contracts: validity, priority, session limits, time windows."""

    queryset = selectors.contract_list()
    serializer_class = ContractSerializer
    filterset_class = ContractFilter
    scope_area = "customers"
    create_service = staticmethod(services.contract_create)
    update_service = staticmethod(services.contract_update)
    instance_kwarg = "contract"
    delete_instead = "end it instead (PATCH valid_until)"


class TokenViewSet(ServiceViewSet):
    """Charging tokens (OCPI 2.2.1 Token fields): RFID cards, app and ad hoc tokens."""

    queryset = selectors.token_list()
    serializer_class = TokenSerializer
    filterset_class = TokenFilter
    scope_area = "tokens"
    create_service = staticmethod(services.token_create)
    update_service = staticmethod(services.token_update)
    instance_kwarg = "token"
    delete_instead = "block it instead (PATCH blocked: true)"


class VehicleViewSet(ServiceViewSet):
    """Drivers' and fleets' vehicles."""

    queryset = selectors.vehicle_list()
    serializer_class = VehicleSerializer
    filterset_class = VehicleFilter
    scope_area = "customers"
    create_service = staticmethod(services.vehicle_create)
    update_service = staticmethod(services.vehicle_update)
    instance_kwarg = "vehicle"


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
