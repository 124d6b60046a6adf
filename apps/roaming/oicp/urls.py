"""Hubject's calls to us (the CPO file's, and the EMP file's CDR and notifications), mounted at /oicp/:
the base URL we register with Hubject is https://<host>/oicp."""

from django.urls import path

from apps.roaming.oicp import views

urlpatterns = [
    path(
        "charging/v21/providers/<str:provider_id>/authorize-remote/start",
        views.authorize_remote_start,
        name="oicp-authorize-remote-start",
    ),
    path(
        "charging/v21/providers/<str:provider_id>/authorize-remote/stop",
        views.authorize_remote_stop,
        name="oicp-authorize-remote-stop",
    ),
    path(
        "cdrmgmt/v22/operators/<str:operator_id>/charge-detail-record",
        views.charge_detail_record,
        name="oicp-charge-detail-record",
    ),
    path(
        "notificationmgmt/v11/charging-notifications",
        views.charging_notifications,
        name="oicp-charging-notifications",
    ),
    path(
        "reservation/v11/providers/<str:provider_id>/reservation-start-request",
        views.reservation_start,
        name="oicp-reservation-start",
    ),
    path(
        "reservation/v11/providers/<str:provider_id>/reservation-stop-request",
        views.reservation_stop,
        name="oicp-reservation-stop",
    ),
    path(
        "charging/v21/operators/<str:operator_id>/authorize/start", views.authorize_start, name="oicp-authorize-start"
    ),
    path("charging/v21/operators/<str:operator_id>/authorize/stop", views.authorize_stop, name="oicp-authorize-stop"),
]
