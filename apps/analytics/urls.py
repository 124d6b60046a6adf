from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.analytics.api.views import (
    AlertRuleViewSet,
    AlertViewSet,
    LiveKpiView,
    PeriodKpiView,
    SeriesView,
    VehicleModelView,
    WebhookDeliveryViewSet,
    WebhookSubscriptionViewSet,
)

router = SimpleRouter()
router.register("analytics/alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("analytics/webhooks", WebhookSubscriptionViewSet, basename="webhook-subscription")

urlpatterns = [
    # alerts and deliveries are read-only apart from their domain actions: no create/update/delete routes
    path("analytics/alerts/", AlertViewSet.as_view({"get": "list"}), name="alert-list"),
    path("analytics/alerts/<pk>/", AlertViewSet.as_view({"get": "retrieve"}), name="alert-detail"),
    path(
        "analytics/alerts/<pk>/acknowledge/",
        AlertViewSet.as_view({"post": "acknowledge"}),
        name="alert-acknowledge",
    ),
    path("analytics/deliveries/", WebhookDeliveryViewSet.as_view({"get": "list"}), name="webhook-delivery-list"),
    path(
        "analytics/deliveries/<pk>/",
        WebhookDeliveryViewSet.as_view({"get": "retrieve"}),
        name="webhook-delivery-detail",
    ),
    path(
        "analytics/deliveries/<pk>/replay/",
        WebhookDeliveryViewSet.as_view({"post": "replay"}),
        name="webhook-delivery-replay",
    ),
    path("analytics/kpis/live/", LiveKpiView.as_view(), name="analytics-live"),
    path("analytics/kpis/period/", PeriodKpiView.as_view(), name="analytics-period"),
    path("analytics/kpis/series/", SeriesView.as_view(), name="analytics-series"),
    path("analytics/kpis/vehicle-models/", VehicleModelView.as_view(), name="analytics-vehicle-models"),
    *router.urls,
]
