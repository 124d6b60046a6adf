from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics import notifications, selectors, services
from apps.analytics.api.serializers import (
    AcknowledgeSerializer,
    AlertRuleSerializer,
    AlertSerializer,
    EmptySerializer,
    KpiQuerySerializer,
    LiveKpiSerializer,
    PeriodKpiSerializer,
    PeriodQuerySerializer,
    SeriesPointSerializer,
    SeriesQuerySerializer,
    VehicleModelSerializer,
    WebhookDeliverySerializer,
    WebhookSubscriptionSerializer,
)
from apps.analytics.models import AlertRule, WebhookSubscription
from apps.core.api.serializers import ErrorSerializer
from apps.core.errors import NotFound
from apps.tenants.access import access_for
from apps.tenants.models import Role
from apps.tenants.scoping import TenantScopedViewSet

OPS_WRITE: tuple[str, ...] = (Role.ADMIN, Role.OPERATIONS)
ERRORS = {400: ErrorSerializer, 404: ErrorSerializer}


class AlertRuleViewSet(TenantScopedViewSet):
    """Alert rules of your tenants: one per kind, with its threshold and e-mail recipients."""

    queryset = AlertRule.objects.all()
    serializer_class = AlertRuleSerializer
    scope_area = "analytics"
    write_roles: ClassVar[tuple[str, ...]] = OPS_WRITE


class AlertViewSet(TenantScopedViewSet):
    """Alerts (read), and acknowledging one with a comment."""

    queryset = selectors.alerts()
    serializer_class = AlertSerializer
    scope_area = "analytics"
    write_roles: ClassVar[tuple[str, ...]] = OPS_WRITE
    filterset_fields: ClassVar[list[str]] = ["status", "kind", "charge_point_id"]

    @extend_schema(request=AcknowledgeSerializer, responses={200: AlertSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        data = AcknowledgeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = services.alert_acknowledge(alert=alert, user=request.user, comment=data.validated_data["comment"])
        return Response(AlertSerializer(alert).data)


class WebhookSubscriptionViewSet(TenantScopedViewSet):
    """Webhook endpoints of enterprise customers (payloads signed with the subscription's secret)."""

    queryset = WebhookSubscription.objects.all()
    serializer_class = WebhookSubscriptionSerializer
    scope_area = "analytics"
    write_roles: ClassVar[tuple[str, ...]] = OPS_WRITE
    delete_instead = "deactivate it instead (PATCH is_active: false): its delivery log stays"


class WebhookDeliveryViewSet(TenantScopedViewSet):
    """The delivery log (every attempt), and replaying a delivery."""

    queryset = selectors.deliveries().prefetch_related("attempt_log")
    serializer_class = WebhookDeliverySerializer
    scope_area = "analytics"
    write_roles: ClassVar[tuple[str, ...]] = OPS_WRITE
    filterset_fields: ClassVar[list[str]] = ["status", "subscription"]

    @extend_schema(request=EmptySerializer, responses={200: WebhookDeliverySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str | None = None) -> Response:
        delivery = self.get_object()
        EmptySerializer(data=request.data).is_valid(raise_exception=True)
        delivery = notifications.webhook_delivery_replay(delivery=delivery)
        return Response(
            self.get_serializer(selectors.deliveries().prefetch_related("attempt_log").get(pk=delivery.pk)).data
        )


# --------------------------------------------------------------------------- KPI documents


class _KpiView(APIView):
    scope_area = "analytics"

    def scope(self, request: Request, query: dict[str, Any]) -> selectors.Scope:
        access = access_for(request)
        visible = access.tenant_ids
        wanted = query.get("tenant")
        if wanted is not None:
            if visible is not None and wanted not in visible:
                raise NotFound("No such tenant.")
            tenant_ids: frozenset[int] | None = frozenset({wanted})
        else:
            tenant_ids = None if visible is None else frozenset(visible)
        return selectors.Scope(tenant_ids, query.get("location"), query.get("charge_point"))

    def query(self, request: Request, serializer: type[KpiQuerySerializer]) -> dict[str, Any]:
        data = serializer(data=request.query_params.dict())
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)


class LiveKpiView(_KpiView):
    @extend_schema(parameters=[KpiQuerySerializer], responses={200: LiveKpiSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        query = self.query(request, KpiQuerySerializer)
        return Response(LiveKpiSerializer(selectors.live_kpis(self.scope(request, query))).data)


class PeriodKpiView(_KpiView):
    @extend_schema(parameters=[PeriodQuerySerializer], responses={200: PeriodKpiSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        query = self.query(request, PeriodQuerySerializer)
        figures = selectors.period_kpis(self.scope(request, query), start=query["start"], end=query["end"])
        return Response(PeriodKpiSerializer(figures).data)


class SeriesView(_KpiView):
    @extend_schema(parameters=[SeriesQuerySerializer], responses={200: SeriesPointSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        query = self.query(request, SeriesQuerySerializer)
        points = selectors.series(
            self.scope(request, query), granularity=query["granularity"], start=query["start"], end=query["end"]
        )
        return Response(SeriesPointSerializer(points, many=True).data)


class VehicleModelView(_KpiView):
    @extend_schema(parameters=[PeriodQuerySerializer], responses={200: VehicleModelSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        query = self.query(request, PeriodQuerySerializer)
        rows = selectors.vehicle_models(self.scope(request, query), start=query["start"], end=query["end"])
        return Response(VehicleModelSerializer(rows, many=True).data)
