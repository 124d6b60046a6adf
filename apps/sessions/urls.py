"""Charging routes, each with exactly the methods it serves (the viewsets are read-only or action-only)."""

from django.urls import path

from apps.sessions.api.serializers import EmptySerializer, SessionPreferencesSerializer
from apps.sessions.api.views import (
    CdrViewSet,
    DriverSessionViewSet,
    DriverStationViewSet,
    DriverTokenViewSet,
    DriverVehicleViewSet,
    ReservationViewSet,
    SessionViewSet,
)

urlpatterns = [
    path("sessions/", SessionViewSet.as_view({"get": "list"}), name="session-list"),
    path("sessions/<pk>/", SessionViewSet.as_view({"get": "retrieve"}), name="session-detail"),
    path("cdrs/", CdrViewSet.as_view({"get": "list"}), name="cdr-list"),
    path("cdrs/<pk>/", CdrViewSet.as_view({"get": "retrieve"}), name="cdr-detail"),
    path("reservations/", ReservationViewSet.as_view({"get": "list", "post": "create"}), name="reservation-list"),
    path("reservations/<pk>/", ReservationViewSet.as_view({"get": "retrieve"}), name="reservation-detail"),
    path(
        "reservations/<pk>/cancel/",
        ReservationViewSet.as_view({"post": "cancel"}, serializer_class=EmptySerializer),
        name="reservation-cancel",
    ),
    path(
        "driver/sessions/", DriverSessionViewSet.as_view({"get": "list", "post": "create"}), name="driver-session-list"
    ),
    path("driver/sessions/<pk>/", DriverSessionViewSet.as_view({"get": "retrieve"}), name="driver-session-detail"),
    path(
        "driver/sessions/<pk>/stop/",
        DriverSessionViewSet.as_view({"post": "stop"}, serializer_class=EmptySerializer),
        name="driver-session-stop",
    ),
    path(
        "driver/sessions/<pk>/preferences/",
        DriverSessionViewSet.as_view({"post": "preferences"}, serializer_class=SessionPreferencesSerializer),
        name="driver-session-preferences",
    ),
    path("driver/stations/", DriverStationViewSet.as_view({"get": "list"}), name="driver-station-list"),
    path("driver/tokens/", DriverTokenViewSet.as_view({"get": "list"}), name="driver-token-list"),
    path("driver/vehicles/", DriverVehicleViewSet.as_view({"get": "list"}), name="driver-vehicle-list"),
]
