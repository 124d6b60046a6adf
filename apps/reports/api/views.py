from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.serializers import ErrorSerializer
from apps.core.errors import ApplicationError
from apps.reports import selectors, services
from apps.reports.api.serializers import DownloadLinkSerializer, ExportCancelSerializer, ExportJobSerializer
from apps.tenants.models import Role, User
from apps.tenants.scoping import TenantScopedViewSet

EXPORT_WRITE_ROLES = (Role.ADMIN, Role.OPERATIONS, Role.FINANCE)


class ExportJobViewSet(TenantScopedViewSet):
    """Exports of charging sessions to CSV, CSV.gz or XLSX, run in the background.

    Driver and business customer names and unmasked token uids are included only for callers allowed to see
    personal data (tenant admins and finance; API keys with the `personal_data:read` scope); others get the
    export without those columns and with masked tokens."""

    queryset = selectors.export_job_list()
    serializer_class = ExportJobSerializer
    scope_area = "reports"
    write_roles = EXPORT_WRITE_ROLES

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        tenant = self.resolve_tenant(data.pop("tenant", None))
        user = self.request.user if isinstance(self.request.user, User) and self.access.api_key is None else None
        serializer.instance = services.export_job_create(
            tenant=tenant,
            requested_by=user,
            personal_data=selectors.may_see_personal_data(self.access, tenant.pk),
            requested_via="api",
            **data,
        )

    @extend_schema(request=ExportCancelSerializer, responses={200: ExportJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a queued or running export (409 when it has finished)."""
        job = self.get_object()
        ExportCancelSerializer(data=request.data).is_valid(raise_exception=True)
        job = services.export_job_cancel(job=job)
        return Response(ExportJobSerializer(job, context=self.get_serializer_context()).data)

    @extend_schema(responses={200: DownloadLinkSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> Response:
        """A signed, expiring link to the finished file (409 while it is not ready; 403 when the file has
        personal data and the caller may not see it)."""
        job = self.get_object()
        if job.personal_data and not selectors.may_see_personal_data(self.access, job.tenant_id):
            raise ApplicationError(
                "This export contains personal data your role may not see.", code="permission_denied", status_code=403
            )
        token, expires_at = services.export_download_link(job=job)
        url = request.build_absolute_uri(reverse("export-file", kwargs={"token": token}))
        body = {"url": url, "expires_at": expires_at, "file_name": job.file_name, "file_size": job.file_size}
        return Response(DownloadLinkSerializer(body).data, status=status.HTTP_200_OK)
