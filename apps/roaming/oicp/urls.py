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
]
