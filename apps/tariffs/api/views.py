from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.tariffs import pricing, selectors, services
from apps.tariffs.api.serializers import (
    ContractPriceListSerializer,
    QuoteRequestSerializer,
    QuoteSerializer,
    RoamingRetailRuleSerializer,
    TariffAssignmentSerializer,
    TariffSerializer,
)
from apps.tariffs.filters import ContractPriceListFilter, TariffAssignmentFilter, TariffFilter
from apps.tariffs.models import Tariff
from apps.tenants.access import access_for
from apps.tenants.models import Role
from apps.tenants.scoping import ServiceViewSet, TenantScopedViewSet

PRICE_WRITERS = (Role.ADMIN, Role.OPERATIONS, Role.FINANCE)


class TariffViewSet(ServiceViewSet):
    """OCPI 2.2.1 tariffs of the tenant (CPO). Deleting a tariff that is still assigned is refused (409)."""

    queryset = selectors.tariff_list()
    serializer_class = TariffSerializer
    filterset_class = TariffFilter
    scope_area = "tariffs"
    write_roles = PRICE_WRITERS
    create_service = staticmethod(services.tariff_create)
    update_service = staticmethod(services.tariff_update)
    delete_service = staticmethod(services.tariff_delete)
    instance_kwarg = "tariff"
    delete_instead = "end it instead (PATCH end_date_time)"

    # a PUT replaces the whole OCPI document: optional fields it leaves out are cleared (PATCH keeps them)
    CLEARED_BY_PUT: ClassVar[dict[str, Any]] = {
        "type": "",
        "tariff_alt_text": [],
        "tariff_alt_url": "",
        "min_price": None,
        "max_price": None,
        "start_date_time": None,
        "end_date_time": None,
        "energy_mix": None,
    }

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        if not serializer.partial:
            missing = {k: v for k, v in self.CLEARED_BY_PUT.items() if k not in serializer.validated_data}  # type: ignore[operator]
            serializer.validated_data.update(missing)  # type: ignore[union-attr]
        super().perform_update(serializer)


class TariffAssignmentViewSet(ServiceViewSet):
    """Which tariff applies where: EVSE > charge point > location > tenant default; `ad_hoc` for drivers
    without a contract."""

    queryset = selectors.tariff_assignment_list()
    serializer_class = TariffAssignmentSerializer
    filterset_class = TariffAssignmentFilter
    scope_area = "tariffs"
    write_roles = PRICE_WRITERS
    create_service = staticmethod(services.tariff_assignment_create)
    update_service = staticmethod(services.tariff_assignment_update)
    delete_service = staticmethod(services.tariff_assignment_delete)
    instance_kwarg = "assignment"


class ContractPriceListViewSet(ServiceViewSet):
    """Business customers' negotiated prices (discount, fixed per-kWh price, session and monthly fees)."""

    queryset = selectors.contract_price_list_list()
    serializer_class = ContractPriceListSerializer
    filterset_class = ContractPriceListFilter
    scope_area = "tariffs"
    write_roles = (Role.ADMIN, Role.FINANCE)
    create_service = staticmethod(services.contract_price_list_create)
    update_service = staticmethod(services.contract_price_list_update)
    delete_service = staticmethod(services.contract_price_list_delete)
    instance_kwarg = "price_list"


class RoamingRetailRuleViewSet(ServiceViewSet):
    """The tenant's retail rule per roaming partner (eMSP role): what its drivers pay on that partner's EVSEs (the
    driver station search's prices and the billing of the partner's CDRs). No rule for a partner: pass-through."""

    queryset = selectors.roaming_retail_rule_list()
    serializer_class = RoamingRetailRuleSerializer
    scope_area = "tariffs"
    write_roles = PRICE_WRITERS
    create_service = staticmethod(services.roaming_retail_rule_create)
    update_service = staticmethod(services.roaming_retail_rule_update)
    delete_service = staticmethod(services.roaming_retail_rule_delete)
    instance_kwarg = "rule"


class CalculationPermission(permissions.BasePermission):
    """A POST that stores nothing (a calculation): allowed to whoever may read the area."""

    message = "Your role does not allow this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        access = access_for(request)
        if access.is_superuser:
            return True
        if access.api_key is not None:
            return access.api_key.allows(view.scope_area, write=False)
        return bool(access.roles)


class TariffQuoteViewSet(TenantScopedViewSet):
    """Prices a hypothetical session with a tariff: for the driver app's price preview and for finance to
    explain a price line by line."""

    queryset = selectors.tariff_list()
    serializer_class = QuoteRequestSerializer
    scope_area = "tariffs"
    permission_classes = [CalculationPermission]
    http_method_names = ["post", "options"]

    @extend_schema(request=QuoteRequestSerializer, responses={200: QuoteSerializer})
    def quote(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        tariff: Tariff = self.get_object()  # 404 for other tenants' tariffs before anything else
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        price_list = data.get("price_list")
        if price_list is not None and price_list.tenant_id != tariff.tenant_id:
            raise serializers.ValidationError({"price_list": ["Belongs to another tenant."]})
        start: dt.datetime = data["start"]
        stop = data.get("stop") or start + dt.timedelta(minutes=data["duration_minutes"])
        request_ = pricing.QuoteRequest(
            start=start,
            stop=stop,
            energy_kwh=data["energy_kwh"],
            max_power_kw=data.get("max_power_kw"),
            parking_seconds=data.get("parking_minutes", 0) * 60,
        )
        try:
            periods, breakdown = pricing.quote(
                selectors.pricing_tariff(tariff),
                request_,
                time_zone=data.get("time_zone") or tariff.tenant.timezone,
                vat_rate=data.get("vat_rate", tariff.tenant.default_vat_rate),
                contract=selectors.contract_terms(price_list) if price_list is not None else None,
                parking_grace_seconds=selectors.parking_grace_minutes(tariff) * 60,
            )
        except (pricing.QuoteError, pricing.PricingError) as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from exc
        body = QuoteSerializer(_quote_body(tariff, periods, breakdown)).data
        return Response(body)


def _quote_body(
    tariff: Tariff, periods: list[pricing.ChargingPeriod], breakdown: pricing.CostBreakdown
) -> dict[str, Any]:
    return {
        "tariff": tariff.pk,
        "currency": breakdown.currency,
        "total_excl_vat": breakdown.total_excl_vat,
        "total_incl_vat": breakdown.total_incl_vat,
        "total_energy": breakdown.total_energy,
        "total_time": breakdown.total_time,
        "total_charging_time": breakdown.total_charging_time,
        "total_parking_time": breakdown.total_parking_time,
        "by_dimension": {
            group: {"excl_vat": excl, "incl_vat": incl} for group, (excl, incl) in breakdown.by_dimension.items()
        },
        "lines": [
            {
                "group": line.group.value,
                "dimension": line.dimension.value if line.dimension else None,
                "element_index": line.element_index,
                "description": line.description,
                "price": line.price,
                "vat": line.vat,
                "step_size": line.step_size,
                "unit": line.unit,
                "volume": line.volume,
                "billed_volume": line.billed_volume,
                "excl_vat": line.excl_vat,
                "incl_vat": line.incl_vat,
            }
            for line in breakdown.lines
        ],
        "charging_periods": [
            {
                "start_date_time": p.start_date_time,
                "dimensions": [{"type": d.type.value, "volume": d.volume} for d in p.dimensions],
            }
            for p in periods
        ],
    }
