"""The export API: strict filters, roles and personal data, signed download links, retention, admin."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from rest_framework.test import APIClient

from apps.reports import services
from apps.reports.models import ExportJob, ExportStatus
from apps.tenants.models import Role, Tenant, User
from tests.reports.factories import ExportJobFactory
from tests.stations.factories import ChargePointFactory, LocationFactory

URL = "/api/v1/exports/"


def finished(tenant: Tenant, export_dir: Path, *, personal_data: bool = False, **kwargs: Any) -> ExportJob:
    """A done job with its file on disk."""
    job = ExportJobFactory(tenant=tenant, personal_data=personal_data, **kwargs)
    name = f"sessions-{job.pk}.csv"
    export_dir.mkdir(parents=True, exist_ok=True)
    (export_dir / name).write_bytes(b"\xef\xbb\xbfSession id\n1\n")
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.DONE,
        file_name=name,
        file_size=17,
        row_count=1,
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(("role", "personal"), [(Role.ADMIN, True), (Role.FINANCE, True), (Role.OPERATIONS, False)])
def test_create_records_a_queued_job_with_personal_data_by_role(
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
    django_capture_on_commit_callbacks: Any,
    role: str,
    personal: bool,
) -> None:
    location = LocationFactory(tenant=tenant_a)
    body = {
        "format": "xlsx",
        "date_from": "2025-01-01T00:00:00+01:00",
        "date_to": "2025-02-01T00:00:00+01:00",
        "location_ids": [location.pk],
        "statuses": ["completed"],
    }

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(tenant_a, role).post(URL, body, format="json")

    assert response.status_code == 201, response.content
    job = ExportJob.objects.get()
    assert response.json()["id"] == job.pk
    assert response.json()["status"] == "queued"
    assert job.tenant == tenant_a
    assert job.personal_data is personal
    assert job.location_ids == [location.pk]
    assert job.date_from == dt.datetime(2024, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert len(callbacks) == 1  # the Celery task is sent after commit


def test_read_only_role_may_not_start_exports(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    response = client_for(tenant_a, Role.READ_ONLY).post(URL, {}, format="json")

    assert response.status_code == 403
    assert ExportJob.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"location_ids": "OTHER"}, "location_ids"),
        ({"charge_point_ids": "OTHER"}, "charge_point_ids"),
        ({"location_ids": [999_999]}, "location_ids"),
        ({"statuses": ["finished"]}, "statuses"),
        ({"date_from": "2025-02-01T00:00:00Z", "date_to": "2025-01-01T00:00:00Z"}, "date_to"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"format": "pdf"}, "format"),
        ({"csv_separator": "|"}, "csv_separator"),
        ({"location_ids": ["x"]}, "location_ids"),
    ],
    ids=lambda v: str(v),
)
def test_bad_filters_are_400_and_create_nothing(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient], body: dict[str, Any], field: str
) -> None:
    other_location = LocationFactory(tenant=tenant_b)
    other_cp = ChargePointFactory(tenant=tenant_b, location=other_location)
    resolved = {
        k: ([other_location.pk] if v == "OTHER" and k == "location_ids" else [other_cp.pk] if v == "OTHER" else v)
        for k, v in body.items()
    }

    response = client_for(tenant_a, Role.ADMIN).post(URL, resolved, format="json")

    assert response.status_code == 400, response.content
    assert set(response.json()) == {"code", "message", "fields"}
    assert field in response.json()["fields"]
    assert ExportJob.objects.count() == 0


def test_list_shows_progress_with_constant_queries(
    tenant_a: Tenant, client_for: Callable[..., APIClient], django_assert_num_queries: Any
) -> None:
    client = client_for(tenant_a, Role.FINANCE)
    for _ in range(3):
        ExportJobFactory(tenant=tenant_a, status=ExportStatus.RUNNING, rows_done=250, rows_total=1000)

    with django_assert_num_queries(2):  # the caller's roles, the page
        response = client.get(URL)

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["rows_done"], r["rows_total"], r["progress_percent"]) for r in rows] == [(250, 1000, 25)] * 3


def test_download_link_streams_the_file(
    tenant_a: Tenant, client_for: Callable[..., APIClient], export_dir: Path
) -> None:
    job = finished(tenant_a, export_dir, personal_data=True)

    link = client_for(tenant_a, Role.FINANCE).get(f"{URL}{job.pk}/download/")

    assert link.status_code == 200, link.content
    assert link.json()["file_name"] == job.file_name
    response = Client().get(link.json()["url"])  # no credentials: the signature is the permission
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\xef\xbb\xbfSession id\n1\n"  # type: ignore[attr-defined]
    assert response["Content-Disposition"] == f'attachment; filename="{job.file_name}"'


def test_personal_data_file_is_refused_to_roles_without_access(
    tenant_a: Tenant, client_for: Callable[..., APIClient], export_dir: Path
) -> None:
    job = finished(tenant_a, export_dir, personal_data=True)

    response = client_for(tenant_a, Role.OPERATIONS).get(f"{URL}{job.pk}/download/")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_download_before_the_file_is_ready_is_409(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    job = ExportJobFactory(tenant=tenant_a, status=ExportStatus.RUNNING)

    response = client_for(tenant_a, Role.ADMIN).get(f"{URL}{job.pk}/download/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


def test_tampered_and_expired_links_are_refused(tenant_a: Tenant, export_dir: Path, settings: SettingsWrapper) -> None:
    job = finished(tenant_a, export_dir)
    other = finished(tenant_a, export_dir)
    token, _ = services.export_download_link(job=job)
    forged = token.replace(f"{job.pk}:{job.file_name}", f"{other.pk}:{other.file_name}")
    old = signing.TimestampSigner(salt="reports.export-download")
    old_token = old.sign(f"{job.pk}:{job.file_name}")

    tampered = Client().get(reverse("export-file", kwargs={"token": forged}))
    settings.REPORTS_DOWNLOAD_LINK_MAX_AGE = -1  # every link is older than that
    expired = Client().get(reverse("export-file", kwargs={"token": old_token}))

    assert tampered.status_code == 403
    assert tampered.json()["code"] == "invalid_link"
    assert expired.status_code == 410
    assert expired.json()["code"] == "link_expired"


def test_cancel_a_queued_export_then_it_is_not_cancellable(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    job = ExportJobFactory(tenant=tenant_a)
    client = client_for(tenant_a, Role.ADMIN)

    first = client.post(f"{URL}{job.pk}/cancel/", {}, format="json")
    second = client.post(f"{URL}{job.pk}/cancel/", {}, format="json")

    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert second.status_code == 409
    job.refresh_from_db()
    assert job.status == ExportStatus.CANCELLED


def test_retention_deletes_old_files_and_jobs(tenant_a: Tenant, export_dir: Path) -> None:
    old = finished(tenant_a, export_dir)
    fresh = finished(tenant_a, export_dir)
    ExportJob.objects.filter(pk=old.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    failed = ExportJobFactory(tenant=tenant_a, status=ExportStatus.FAILED)
    ExportJob.objects.filter(pk=failed.pk).update(created_at=timezone.now() - dt.timedelta(days=30))
    lost = ExportJobFactory(
        tenant=tenant_a, status=ExportStatus.RUNNING, started_at=timezone.now() - dt.timedelta(days=1)
    )

    deleted = services.export_jobs_purge()

    assert deleted == 2
    assert set(ExportJob.objects.values_list("pk", flat=True)) == {fresh.pk, lost.pk}
    assert not (export_dir / old.file_name).exists()
    assert (export_dir / fresh.file_name).exists()
    lost.refresh_from_db()
    assert lost.status == ExportStatus.FAILED


def test_admin_starts_an_export_and_shows_progress(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(make_staff(tenant_a, Role.FINANCE))
    location = LocationFactory(tenant=tenant_a)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("admin:reports_exportjob_add"),
            {"tenant": tenant_a.pk, "format": "csv", "csv_separator": ";", "locations": [location.pk]},
        )

    assert response.status_code == 302, response.content
    job = ExportJob.objects.get()
    assert (job.format, job.csv_separator, job.location_ids, job.personal_data) == ("csv", ";", [location.pk], True)
    assert job.requested_via == "admin"
    assert len(callbacks) == 1
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING, rows_done=40, rows_total=80)
    page = client.get(reverse("admin:reports_exportjob_changelist"))
    assert page.status_code == 200
    assert b'http-equiv="refresh"' in page.content
    assert b"40 of 80 (50%)" in page.content
