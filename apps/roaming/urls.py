from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.roaming.api.driver_views import DriverPartnerReservationViewSet, DriverPartnerSessionViewSet
from apps.roaming.api.serializers import EmptySerializer
from apps.roaming.api.views import RoamingPartnerViewSet

router = SimpleRouter()
router.register("roaming-partners", RoamingPartnerViewSet, basename="roaming-partner")

urlpatterns = router.urls

# driver API on partner EVSEs (eMSP commands), each route with exactly the methods it serves
urlpatterns += [
    path(
        "driver/partner-sessions/",
        DriverPartnerSessionViewSet.as_view({"get": "list", "post": "create"}),
        name="driver-partner-session-list",
    ),
    path(
        "driver/partner-sessions/<pk>/",
        DriverPartnerSessionViewSet.as_view({"get": "retrieve"}),
        name="driver-partner-session-detail",
    ),
    path(
        "driver/partner-sessions/<pk>/stop/",
        DriverPartnerSessionViewSet.as_view({"post": "stop"}, serializer_class=EmptySerializer),
        name="driver-partner-session-stop",
    ),
    path(
        "driver/partner-sessions/<pk>/unlock/",
        DriverPartnerSessionViewSet.as_view({"post": "unlock"}, serializer_class=EmptySerializer),
        name="driver-partner-session-unlock",
    ),
    path(
        "driver/partner-reservations/",
        DriverPartnerReservationViewSet.as_view({"get": "list", "post": "create"}),
        name="driver-partner-reservation-list",
    ),
    path(
        "driver/partner-reservations/<pk>/",
        DriverPartnerReservationViewSet.as_view({"get": "retrieve"}),
        name="driver-partner-reservation-detail",
    ),
    path(
        "driver/partner-reservations/<pk>/cancel/",
        DriverPartnerReservationViewSet.as_view({"post": "cancel"}, serializer_class=EmptySerializer),
        name="driver-partner-reservation-cancel",
    ),
]
