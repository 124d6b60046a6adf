from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core import views as core_views
from apps.roaming.ocpi import transport as ocpi_transport
from apps.tenants import views as tenant_views

api_v1 = [
    path("", include("apps.tenants.urls")),
    path("", include("apps.customers.urls")),
    path("", include("apps.tariffs.urls")),
    path("", include("apps.billing.urls")),
    path("", include("apps.analytics.urls")),
    path("", include("apps.reports.urls")),
    path("", include("apps.stations.urls")),
    path("", include("apps.sessions.urls")),
    path("", include("apps.energy.urls")),
    path("", include("apps.search.urls")),
    path("", include("apps.roaming.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # the console's language selector posts to /i18n/setlang/
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("ocpi/", include("apps.roaming.ocpi.urls")),  # OCPI 2.2.1, its own envelope (apps/roaming/ocpi/transport.py)
    path("oicp/", include("apps.roaming.oicp.urls")),  # Hubject's calls (OICP 2.3 CPO file), mutual TLS at the proxy
    path("ocpp-files/", include("apps.stations.file_urls")),  # firmware downloads, diagnostics uploads
    path("invitations/<str:token>/", tenant_views.invitation_accept_page, name="invitation-accept-page"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
]

if settings.OIDC_ENABLED:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))

admin.site.site_header = _("EV platform operations")
admin.site.site_title = _("EV platform")
admin.site.index_title = _("Operations console")


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """API paths answer in the one error shape, OCPI paths in the OCPI envelope; everything else gets Django's page."""
    if request.path.startswith("/ocpi/"):
        return ocpi_transport.not_found(request)
    if request.path.startswith("/oicp/"):  # Hubject's acknowledgment form
        status = {"Code": "320", "Description": "Service not available.", "AdditionalInfo": f"no {request.path}"}
        return JsonResponse({"Result": False, "StatusCode": status}, status=404)
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": "No such endpoint.", "fields": {}}, status=404)
    return page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/ocpi/"):
        return ocpi_transport.server_error(request)
    if request.path.startswith("/oicp/"):
        status = {"Code": "021", "Description": "System error."}
        return JsonResponse({"Result": False, "StatusCode": status}, status=500)
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "message": "Internal server error.", "fields": {}}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
