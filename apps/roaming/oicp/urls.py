"""Hubject's calls to us (CPO file), mounted at /oicp/: the base URL we register with Hubject is https://<host>/oicp."""

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
]
