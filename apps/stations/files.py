"""HTTP endpoints chargers use for files: firmware downloads (UpdateFirmware) and diagnostics uploads
(GetDiagnostics). The unguessable token in the URL is the credential (chargers cannot log in)."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.stations import services
from apps.stations.models import DiagnosticsUpload, FirmwareImage

MAX_DIAGNOSTICS_BYTES = 100 * 1024 * 1024


@require_http_methods(["GET", "HEAD"])
def firmware_download(request: HttpRequest, token: str, name: str = "") -> FileResponse:
    image = get_object_or_404(FirmwareImage, token=token)
    return FileResponse(
        image.file.open("rb"), as_attachment=True, filename=(image.file.name or "firmware.bin").rsplit("/", 1)[-1]
    )


@csrf_exempt
@require_http_methods(["POST", "PUT"])
def diagnostics_upload(request: HttpRequest, token: str, name: str = "") -> HttpResponse:
    """POST multipart (any file field) to the location, or PUT the raw body to <location><file name>."""
    upload = get_object_or_404(DiagnosticsUpload.objects.select_related("charge_point"), token=token)
    if upload.uploaded_at is not None:
        return JsonResponse({"code": "conflict", "message": "Already uploaded.", "fields": {}}, status=409)
    if request.method == "POST" and request.FILES:
        file = next(iter(request.FILES.values()))
        assert not isinstance(file, list)
        if file.size and file.size > MAX_DIAGNOSTICS_BYTES:
            return JsonResponse({"code": "too_large", "message": "File too large.", "fields": {}}, status=413)
        services.diagnostics_store(upload=upload, name=file.name or name, content=file)
    else:
        body = request.body
        if len(body) > MAX_DIAGNOSTICS_BYTES:
            return JsonResponse({"code": "too_large", "message": "File too large.", "fields": {}}, status=413)
        services.diagnostics_store(upload=upload, name=name or "diagnostics.bin", content=body)
    return HttpResponse(status=201)
