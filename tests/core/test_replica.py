"""The read replica (`DATABASE_REPLICA_URL`, apps/core/replica.py) against a real streaming replica of the test
cluster, started from the machine's PostgreSQL binaries (pg_basebackup -R), and a real Celery worker on the
exports queue: the export is read from the replica, the job's bookkeeping written to the primary."""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from apps.core import replica
from apps.reports.models import ExportJob, ExportStatus
from apps.reports.tasks import run_export
from apps.tenants.models import Tenant
from tests.ocpp.processes import CeleryWorker
from tests.replica import Replica, wait_replayed
from tests.reports.factories import ExportJobFactory, make_sessions

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _export_through(worker: CeleryWorker, queue: str, tenant: Tenant) -> list[dict[str, str]]:
    job = ExportJobFactory(tenant=tenant)
    run_export.apply_async(args=[job.pk], queue=queue)
    deadline = time.monotonic() + 90
    while ExportJob.objects.filter(pk=job.pk, status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING]).exists():
        assert worker.alive(), "the worker exited"
        assert time.monotonic() < deadline, "the export did not finish within 90 s"
        time.sleep(0.2)
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE, job.error
    path = Path(settings.MEDIA_ROOT) / "exports" / job.file_name
    try:
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    finally:
        path.unlink(missing_ok=True)


def test_an_export_reads_the_replica_and_writes_its_job_on_the_primary(
    streaming_replica: Replica, tenant_a: Tenant
) -> None:
    dbname = connection.settings_dict["NAME"]
    make_sessions(tenant_a, 3)
    standby = streaming_replica.connect(dbname)
    queue = f"test-exports-{uuid.uuid4().hex[:8]}"
    # the worker's exports land where this process reads them (the test settings' MEDIA_ROOT)
    worker = CeleryWorker(
        [queue], {"DATABASE_REPLICA_URL": streaming_replica.url(dbname), "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    ).start()
    try:
        wait_replayed(standby)
        standby.execute("SELECT pg_wal_replay_pause()")
        # committed on the primary while the replica stands still: an export from the replica cannot see it
        late = make_sessions(tenant_a, 1, first=10)[0]

        rows = _export_through(worker, queue, tenant_a)

        assert len(rows) == 3
        assert str(late.pk) not in {r["Session id"] for r in rows}

        standby.execute("SELECT pg_wal_replay_resume()")
        wait_replayed(standby)

        rows = _export_through(worker, queue, tenant_a)

        assert len(rows) == 4
        assert str(late.pk) in {r["Session id"] for r in rows}
    finally:
        standby.execute("SELECT pg_wal_replay_resume()")
        standby.close()
        worker.stop()


def test_reads_go_to_the_replica_only_inside_replica_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    router = replica.ReplicaRouter()
    with replica.replica_reads() as alias:
        assert (alias, router.db_for_read(ExportJob)) == ("default", "default")  # not configured: the primary
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    assert router.db_for_read(ExportJob) is None  # configured, but not asked for
    with replica.replica_reads() as alias:
        assert alias == "replica"
        assert router.db_for_read(ExportJob) == "replica"
        assert router.db_for_write(ExportJob) == "default"
        assert replica.read_alias() == "replica"
    assert replica.read_alias() == "default"
    assert router.allow_migrate("replica", "reports") is False
    assert router.allow_migrate("default", "reports") is True


def test_each_kind_of_work_has_its_queue() -> None:
    from evplatform.celery import app

    route = app.amqp.router.route
    queues = {
        name: route({}, name)["queue"].name
        for name in [
            "reports.run_export",
            "energy.site_recompute",
            "billing.invoice_render_pdf",
            "roaming.push_partner",
            "stations.mark_offline",
            "charging.enforce_limit",
            "core.outbox_deliver",
            "analytics.rollup",
        ]
    }

    assert queues == {
        "reports.run_export": "exports",
        "energy.site_recompute": "energy",
        "billing.invoice_render_pdf": "billing",
        "roaming.push_partner": "roaming",
        "stations.mark_offline": "ocpp",
        "charging.enforce_limit": "ocpp",
        "core.outbox_deliver": settings.EVENTS_OUTBOX_QUEUE,
        "analytics.rollup": "celery",
    }
