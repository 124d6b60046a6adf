"""Energy routes: CRUD for the tree and its time-of-use limits; grid signals and building load are append-only
(list, create, retrieve), so their routes serve exactly those methods."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.energy.api.views import (
    BuildingLoadReadingViewSet,
    GridNodeViewSet,
    GridSignalViewSet,
    TimeOfUseLimitViewSet,
)

router = SimpleRouter()
router.register("energy/nodes", GridNodeViewSet, basename="energy-node")
router.register("energy/tou-limits", TimeOfUseLimitViewSet, basename="energy-tou-limit")

urlpatterns = [
    path(
        "energy/grid-signals/",
        GridSignalViewSet.as_view({"get": "list", "post": "create"}),
        name="energy-grid-signal-list",
    ),
    path("energy/grid-signals/<pk>/", GridSignalViewSet.as_view({"get": "retrieve"}), name="energy-grid-signal-detail"),
    path(
        "energy/load-readings/",
        BuildingLoadReadingViewSet.as_view({"get": "list", "post": "create"}),
        name="energy-load-reading-list",
    ),
    path(
        "energy/load-readings/<pk>/",
        BuildingLoadReadingViewSet.as_view({"get": "retrieve"}),
        name="energy-load-reading-detail",
    ),
    *router.urls,
]
