"""Reads for export jobs, and who may see personal data in them."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.reports import conf
from apps.reports.models import ExportJob
from apps.tenants.access import Access

PERSONAL_DATA_SCOPE = "personal_data:read"


def export_job_list() -> QuerySet[ExportJob]:
    return ExportJob.objects.select_related("tenant", "requested_by")


def may_see_personal_data(access: Access, tenant_id: int) -> bool:
    """Superusers; staff whose role in the tenant is in REPORTS_PERSONAL_DATA_ROLES (tenant admin and finance
    by default); API keys with the `personal_data:read` scope (or `*`)."""
    if access.is_superuser:
        return True
    if access.api_key is not None:
        scopes = access.api_key.scopes
        return access.api_key.tenant_id == tenant_id and ("*" in scopes or PERSONAL_DATA_SCOPE in scopes)
    return access.roles.get(tenant_id) in conf.personal_data_roles()
