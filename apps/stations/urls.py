from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.stations.api.views import (
    ChargePointViewSet,
    CommandViewSet,
    ConnectorViewSet,
    EvseViewSet,
    LocationViewSet,
)

router = SimpleRouter()
router.register("locations", LocationViewSet, basename="location")
router.register("charge-points", ChargePointViewSet, basename="charge-point")
router.register("evses", EvseViewSet, basename="evse")
router.register("connectors", ConnectorViewSet, basename="connector")

# the command log is read-only: commands are created by the charge point command endpoints
urlpatterns = [
    *router.urls,
    path("commands/", CommandViewSet.as_view({"get": "list"}), name="command-list"),
    path("commands/<pk>/", CommandViewSet.as_view({"get": "retrieve"}), name="command-detail"),
]
