"""The file download behind a signed link (no other credentials: the signature is the permission)."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_GET

from apps.core.errors import ApplicationError
from apps.reports import services

_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "csv.gz": "application/gzip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@require_GET
def export_file(request: HttpRequest, token: str) -> HttpResponseBase:
    """Stream the export file after checking the link's signature and age."""
    try:
        job, path = services.export_download_resolve(token=token)
    except ApplicationError as exc:
        return JsonResponse({"code": exc.code, "message": exc.message, "fields": {}}, status=exc.status_code)
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=job.file_name,
        content_type=_CONTENT_TYPES[job.format],
    )
    response["Cache-Control"] = "private, no-store"
    return response
