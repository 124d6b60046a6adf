"""The bug issue 12 item 5 started from: a deleted location left its sessions without one, and exports printed
empty addresses. A location with history is decommissioned instead, and its sessions export as before."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.reports import services
from apps.reports.models import ExportStatus
from apps.stations.models import Location
from apps.tenants.models import Tenant, User
from tests.reports.factories import ExportJobFactory, make_sessions
from tests.stations.factories import EvseFactory, LocationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(job: Any, export_dir: Path) -> list[dict[str, str]]:
    done = services.export_job_run(job_id=job.pk)
    assert done is not None
    assert done.status == ExportStatus.DONE, done.error
    return list(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))


def test_sessions_of_a_site_that_was_to_be_deleted_still_export_its_address(
    tenant_a: Tenant, superuser: User, export_dir: Path
) -> None:
    location = LocationFactory(tenant=tenant_a, name="Depot Nord", address="Hafenstraße 7", city="Kiel")
    evse = EvseFactory(charge_point__tenant=tenant_a, charge_point__location=location)
    sessions = make_sessions(tenant_a, 3, evse=evse)
    services.session_lines_render()
    client = APIClient()
    client.force_authenticate(superuser)

    deleted = client.delete(f"/api/v1/locations/{location.pk}/")
    decommissioned = client.post(f"/api/v1/locations/{location.pk}/decommission/", {}, format="json")
    rows = _rows(ExportJobFactory(tenant=tenant_a), export_dir)

    assert deleted.status_code == 409
    assert decommissioned.status_code == 200
    assert Location.objects.get(pk=location.pk).decommissioned_at is not None
    assert {int(r["Session id"]) for r in rows} == {s.pk for s in sessions}
    assert {(r["Location"], r["Location address"]) for r in rows} == {("Depot Nord", "Hafenstraße 7, 10115 Kiel, DE")}
