"""URLs of our eMSP interfaces (`/ocpi/emsp/2.2.1/<module>`), included by apps/roaming/ocpi/urls.py: the Receivers
of the CPO's data (emsp_receivers)."""

from django.urls import re_path

from apps.roaming.ocpi import emsp_receivers

_ID = r"[^/]{1,36}"
_PARTY = r"(?P<country_code>[^/]{1,2})/(?P<party_id>[^/]{1,3})"

urlpatterns = [
    re_path(rf"^emsp/2\.2\.1/locations/{_PARTY}/(?P<location_id>{_ID})/?$", emsp_receivers.locations),
    re_path(
        rf"^emsp/2\.2\.1/locations/{_PARTY}/(?P<location_id>{_ID})/(?P<evse_uid>{_ID})/?$", emsp_receivers.locations
    ),
    re_path(
        rf"^emsp/2\.2\.1/locations/{_PARTY}/(?P<location_id>{_ID})/(?P<evse_uid>{_ID})/(?P<connector_id>{_ID})/?$",
        emsp_receivers.locations,
        name="ocpi-emsp-locations",
    ),
    re_path(
        rf"^emsp/2\.2\.1/tariffs/{_PARTY}/(?P<tariff_id>{_ID})/?$", emsp_receivers.tariffs, name="ocpi-emsp-tariffs"
    ),
    re_path(
        rf"^emsp/2\.2\.1/sessions/{_PARTY}/(?P<session_id>{_ID})/?$", emsp_receivers.sessions, name="ocpi-emsp-sessions"
    ),
    re_path(r"^emsp/2\.2\.1/cdrs/?$", emsp_receivers.cdrs, name="ocpi-emsp-cdrs"),
    re_path(r"^emsp/2\.2\.1/cdrs/(?P<cdr_id>[^/]{1,40})/?$", emsp_receivers.cdrs, name="ocpi-emsp-cdr"),
]
