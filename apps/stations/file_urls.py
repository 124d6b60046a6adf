from django.urls import path

from apps.stations import files

urlpatterns = [
    path("firmware/<str:token>/", files.firmware_download, name="ocpp-firmware"),
    path("firmware/<str:token>/<str:name>", files.firmware_download, name="ocpp-firmware-file"),
    path("diagnostics/<str:token>/", files.diagnostics_upload, name="ocpp-diagnostics"),
    path("diagnostics/<str:token>/<str:name>", files.diagnostics_upload, name="ocpp-diagnostics-file"),
]
