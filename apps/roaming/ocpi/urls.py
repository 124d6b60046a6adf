from django.urls import re_path

from apps.roaming.ocpi import cpo_urls, views

urlpatterns = [
    re_path(r"^versions/?$", views.versions, name="ocpi-versions"),
    re_path(r"^2\.2\.1/?$", views.version_details, name="ocpi-version-details"),
    re_path(r"^2\.2\.1/credentials/?$", views.credentials, name="ocpi-credentials"),
]
urlpatterns += cpo_urls.urlpatterns  # CPO Sender interfaces
