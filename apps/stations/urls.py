from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.stations.api.views import (
    CertificateAuthorityViewSet,
    ChargePointViewSet,
    CommandViewSet,
    ConnectorViewSet,
    EvseViewSet,
    InstalledCertificateViewSet,
    LocationViewSet,
    SecurityEventViewSet,
    SigningRequestViewSet,
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
# the security extension's records are read-only too: chargers and commands write them
for prefix, viewset, name in (
    ("security-events", SecurityEventViewSet, "security-event"),
    ("certificate-signing-requests", SigningRequestViewSet, "certificate-signing-request"),
    ("installed-certificates", InstalledCertificateViewSet, "installed-certificate"),
    ("certificate-authorities", CertificateAuthorityViewSet, "certificate-authority"),
):
    urlpatterns += [
        path(f"{prefix}/", viewset.as_view({"get": "list"}), name=f"{name}-list"),
        path(f"{prefix}/<pk>/", viewset.as_view({"get": "retrieve"}), name=f"{name}-detail"),
    ]
