from django.urls import path

from apps.reports import views
from apps.reports.api.views import ExportJobViewSet

# explicit routes: the jobs are created and read, never edited or deleted through the API
urlpatterns = [
    path("exports/files/<str:token>/", views.export_file, name="export-file"),
    path("exports/", ExportJobViewSet.as_view({"get": "list", "post": "create"}), name="export-list"),
    path("exports/<pk>/", ExportJobViewSet.as_view({"get": "retrieve"}), name="export-detail"),
    path("exports/<pk>/cancel/", ExportJobViewSet.as_view({"post": "cancel"}), name="export-cancel"),
    path("exports/<pk>/download/", ExportJobViewSet.as_view({"get": "download"}), name="export-download"),
]
