"""URLs of the CPO Sender interfaces (cpo_views), included by apps/roaming/ocpi/urls.py."""

from django.urls import re_path

from apps.roaming.ocpi import cpo_views

_ID = r"[^/]{1,36}"

urlpatterns = [
    re_path(r"^cpo/2\.2\.1/tariffs/?$", cpo_views.tariffs, name="ocpi-cpo-tariffs"),
    re_path(r"^cpo/2\.2\.1/cdrs/?$", cpo_views.cdrs, name="ocpi-cpo-cdrs"),
    re_path(r"^cpo/2\.2\.1/sessions/?$", cpo_views.sessions, name="ocpi-cpo-sessions"),
    re_path(r"^cpo/2\.2\.1/locations/?$", cpo_views.locations, name="ocpi-cpo-locations"),
    re_path(rf"^cpo/2\.2\.1/locations/(?P<location_id>{_ID})/?$", cpo_views.locations),
    re_path(rf"^cpo/2\.2\.1/locations/(?P<location_id>{_ID})/(?P<evse_uid>{_ID})/?$", cpo_views.locations),
    re_path(
        rf"^cpo/2\.2\.1/locations/(?P<location_id>{_ID})/(?P<evse_uid>{_ID})/(?P<connector_id>{_ID})/?$",
        cpo_views.locations,
    ),
]
