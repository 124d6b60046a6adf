"""Writes for export jobs: create (strictly validated filters), run, cancel, sign download links, purge."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from django.core import signing
from django.db import connection, connections, transaction
from django.utils import timezone

from apps.core.errors import ApplicationError, Conflict, NotFound
from apps.core.replica import replica_alias
from apps.customers.models import BusinessCustomer, Driver
from apps.reports import conf, exporter, lines
from apps.reports.models import EXPORT_ACTIVE, CsvSeparator, ExportFormat, ExportJob, ExportStatus
from apps.sessions.models import SessionStatus
from apps.stations.models import ChargePoint, Location
from apps.tenants.models import Tenant, User

logger = logging.getLogger(__name__)

_SIGNING_SALT = "reports.export-download"
# an OCPI party (country code, party id: "DE*ABC") or an OICP operator id of the same shape
ROAMING_PARTNER = re.compile(r"[A-Z]{2}\*[A-Z0-9]{3}")
OWN_NETWORK = "-"
_EXTENSIONS = {ExportFormat.CSV: "csv", ExportFormat.CSV_GZ: "csv.gz", ExportFormat.XLSX: "xlsx"}


class InvalidFilter(ApplicationError):
    def __init__(self, fields: dict[str, list[str]]) -> None:
        first = next(iter(fields.items()))
        super().__init__(f"{first[0]}: {first[1][0]}", code="invalid_filter", fields=fields)


def _check_ids(errors: dict[str, list[str]], name: str, model: Any, ids: Sequence[int], tenant: Tenant) -> list[int]:
    wanted = sorted(set(ids))
    found = set(model._default_manager.filter(tenant=tenant, pk__in=wanted).values_list("pk", flat=True))
    unknown = [pk for pk in wanted if pk not in found]
    if unknown:
        errors[name] = [f"Unknown for this tenant: {', '.join(map(str, unknown))}."]
    return wanted


def export_job_create(
    *,
    tenant: Tenant,
    requested_by: User | None,
    personal_data: bool,
    format: str = ExportFormat.CSV,
    csv_separator: str = CsvSeparator.COMMA,
    date_from: dt.datetime | None = None,
    date_to: dt.datetime | None = None,
    location_ids: Sequence[int] = (),
    charge_point_ids: Sequence[int] = (),
    business_customer_ids: Sequence[int] = (),
    driver_ids: Sequence[int] = (),
    statuses: Sequence[str] = (),
    roaming_partners: Sequence[str] = (),
    requested_via: str = "api",
) -> ExportJob:
    """Record an export job and run it in the background after commit. Filters that name rows of another
    tenant or unknown values are refused (InvalidFilter, a 400), and then nothing is stored."""
    errors: dict[str, list[str]] = {}
    if format not in ExportFormat.values:
        errors["format"] = [f"Use one of: {', '.join(ExportFormat.values)}."]
    if csv_separator not in CsvSeparator.values:
        errors["csv_separator"] = ["Use ',' or ';'."]
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        if value is not None and timezone.is_naive(value):
            errors[name] = ["Give a time zone offset (ISO 8601, e.g. 2025-01-01T00:00:00+01:00)."]
    dates_ok = date_from is not None and date_to is not None and not {"date_from", "date_to"} & set(errors)
    if dates_ok and date_to <= date_from:  # type: ignore[operator]
        errors["date_to"] = ["Must be after date_from."]
    bad_status = sorted(set(statuses) - set(SessionStatus.values))
    if bad_status:
        errors["statuses"] = [f"Unknown status {', '.join(bad_status)}; use {', '.join(SessionStatus.values)}."]
    bad_partners = sorted({p for p in roaming_partners if p != OWN_NETWORK and not ROAMING_PARTNER.fullmatch(p)})
    if bad_partners:
        errors["roaming_partners"] = [
            f"Not a roaming partner id: {', '.join(bad_partners)}; use country code * party id (DE*ABC), "
            f"or {OWN_NETWORK} for the own network."
        ]
    location_ids = _check_ids(errors, "location_ids", Location, location_ids, tenant)
    charge_point_ids = _check_ids(errors, "charge_point_ids", ChargePoint, charge_point_ids, tenant)
    business_customer_ids = _check_ids(errors, "business_customer_ids", BusinessCustomer, business_customer_ids, tenant)
    driver_ids = _check_ids(errors, "driver_ids", Driver, driver_ids, tenant)
    if errors:
        raise InvalidFilter(errors)

    with transaction.atomic():
        job = ExportJob.objects.create(
            tenant=tenant,
            requested_by=requested_by,
            requested_via=requested_via,
            personal_data=personal_data,
            format=format,
            csv_separator=csv_separator,
            date_from=date_from,
            date_to=date_to,
            location_ids=location_ids,
            charge_point_ids=charge_point_ids,
            business_customer_ids=business_customer_ids,
            driver_ids=driver_ids,
            statuses=sorted(set(statuses)),
            roaming_partners=sorted(set(roaming_partners)),
        )
        job_id = job.pk
        transaction.on_commit(lambda: _enqueue(job_id))
    return job


def _enqueue(job_id: int) -> None:
    from apps.reports.tasks import run_export  # the task module imports this one

    run_export.delay(job_id)


def export_job_cancel(*, job: ExportJob) -> ExportJob:
    """Stop a queued or running export; a running one notices at its next progress update."""
    updated = ExportJob.objects.filter(pk=job.pk, status__in=EXPORT_ACTIVE).update(
        status=ExportStatus.CANCELLED, finished_at=timezone.now()
    )
    if not updated:
        raise Conflict("Only queued or running exports can be cancelled.", code="not_cancellable")
    job.refresh_from_db()
    return job


def _spec(job: ExportJob) -> exporter.ExportSpec:
    return exporter.ExportSpec(
        tenant_id=job.tenant_id,
        timezone=job.tenant.timezone,
        personal_data=job.personal_data,
        date_from=job.date_from,
        date_to=job.date_to,
        location_ids=tuple(job.location_ids),
        charge_point_ids=tuple(job.charge_point_ids),
        business_customer_ids=tuple(job.business_customer_ids),
        driver_ids=tuple(job.driver_ids),
        statuses=tuple(job.statuses),
        roaming_partners=tuple("" if p == OWN_NETWORK else p for p in job.roaming_partners),
        parallel_workers=conf.parallel_workers(),
    )


def export_connection() -> psycopg.Connection[Any]:
    """A connection of its own for the export's long read-only transaction: on the read replica when one is
    configured (`DATABASE_REPLICA_URL`), else the primary Django writes to."""
    params = connections[replica_alias()].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, application_name="evp-export")


def _file_name(job: ExportJob) -> str:
    return f"sessions-{job.tenant.slug}-{job.pk}-{job.created_at:%Y%m%d-%H%M%S}.{_EXTENSIONS[ExportFormat(job.format)]}"


def export_job_run(*, job_id: int, after_snapshot: Callable[[], None] | None = None) -> ExportJob | None:
    """Run a queued export. Idempotent: a job that is not queued any more (done, running elsewhere,
    cancelled) is left alone and None returned. Progress is written through Django's connection (autocommit)
    while the rows stream through a connection of their own, so it is visible as it happens."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING, started_at=now, rows_done=0
    )
    if not claimed:
        return None
    job = ExportJob.objects.select_related("tenant").get(pk=job_id)
    folder = conf.export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = _file_name(job)
    table = ExportJob._meta.db_table

    def progress(rows: int, total: int | None) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET rows_done = %s, rows_total = %s WHERE id = %s AND status = %s",  # noqa: S608
                [rows, total, job_id, ExportStatus.RUNNING],
            )
            return cursor.rowcount == 1

    started = time.monotonic()
    try:
        with export_connection() as conn:
            result = exporter.export(
                conn,
                _spec(job),
                fmt=job.format,
                path=folder / name,
                separator=job.csv_separator,
                progress=progress,
                progress_every=conf.progress_every(),
                rows_per_sheet=conf.rows_per_sheet(),
                exact_count_below=conf.exact_count_below(),
                after_snapshot=after_snapshot,
            )
    except exporter.ExportCancelled:
        logger.info("export %s cancelled", job_id)
        job.refresh_from_db()
        return job
    except Exception as exc:
        logger.exception("export %s failed", job_id)
        ExportJob.objects.filter(pk=job_id, status=ExportStatus.RUNNING).update(
            status=ExportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            duration=dt.timedelta(seconds=time.monotonic() - started),
        )
        job.refresh_from_db()
        return job
    finished = timezone.now()
    updated = ExportJob.objects.filter(pk=job_id, status=ExportStatus.RUNNING).update(
        status=ExportStatus.DONE,
        rows_done=result.rows,
        rows_total=result.rows,
        row_count=result.rows,
        sheet_count=result.sheets or None,
        file_size=result.file_size,
        file_name=name,
        finished_at=finished,
        duration=dt.timedelta(seconds=time.monotonic() - started),
        expires_at=finished + dt.timedelta(seconds=conf.retention_seconds()),
    )
    if not updated:  # cancelled after the last progress update: drop the file
        (folder / name).unlink(missing_ok=True)
    job.refresh_from_db()
    return job


# --------------------------------------------------------------------------- download links


def export_download_link(*, job: ExportJob) -> tuple[str, dt.datetime]:
    """A signed token for the job's file, valid for REPORTS_DOWNLOAD_LINK_MAX_AGE seconds."""
    if job.status != ExportStatus.DONE or not job.file_name:
        raise Conflict("The export has no file yet.", code="not_ready")
    token = signing.TimestampSigner(salt=_SIGNING_SALT).sign(f"{job.pk}:{job.file_name}")
    return token, timezone.now() + dt.timedelta(seconds=conf.link_max_age())


def export_download_resolve(*, token: str) -> tuple[ExportJob, Path]:
    """The job and file a signed token names; refused when tampered with, expired, or the file is gone."""
    try:
        value = signing.TimestampSigner(salt=_SIGNING_SALT).unsign(token, max_age=conf.link_max_age())
    except signing.SignatureExpired:
        raise ApplicationError("This download link has expired.", code="link_expired", status_code=410) from None
    except signing.BadSignature:
        raise ApplicationError("This download link is not valid.", code="invalid_link", status_code=403) from None
    job_id, _, file_name = value.partition(":")
    job = ExportJob.objects.filter(pk=int(job_id), file_name=file_name, status=ExportStatus.DONE).first()
    path = conf.export_dir() / file_name
    if job is None or not path.is_file():
        raise NotFound("This export file no longer exists.")
    return job, path


# --------------------------------------------------------------------------- retention


def export_jobs_purge(*, now: dt.datetime | None = None) -> int:
    """Delete expired files and their jobs; jobs that failed or were cancelled go after the same retention;
    jobs running for longer than REPORTS_STALE_AFTER_SECONDS (a worker died) are marked failed.
    Returns how many jobs were deleted."""
    now = now or timezone.now()
    ExportJob.objects.filter(
        status=ExportStatus.RUNNING, started_at__lt=now - dt.timedelta(seconds=conf.stale_after_seconds())
    ).update(status=ExportStatus.FAILED, error="Lost: the worker stopped while exporting.", finished_at=now)
    retention = dt.timedelta(seconds=conf.retention_seconds())
    expired = list(
        ExportJob.objects.filter(expires_at__lt=now)
        .values_list("pk", "file_name")
        .union(
            ExportJob.objects.filter(
                status__in=(ExportStatus.FAILED, ExportStatus.CANCELLED), created_at__lt=now - retention
            ).values_list("pk", "file_name")
        )
    )
    folder = conf.export_dir()
    for _, file_name in expired:
        if file_name:
            (folder / file_name).unlink(missing_ok=True)
    deleted, _ = ExportJob.objects.filter(pk__in=[pk for pk, _ in expired]).delete()
    return deleted


# --------------------------------------------------------------------------- stored export lines


def session_lines_layout_install() -> bool:
    """Make the database's export lines follow this code's layout: when the installed layout version differs
    (new or changed columns), reinstall the queueing triggers, then queue every session again and set the version
    (exports render everything live until then). Two transactions: the triggers' DDL locks the sessions table, so
    it commits at once instead of holding chargers' writes while millions of sessions are queued. Returns whether
    it had to."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('reports.session_lines.layout'))")
        cursor.execute(lines.installed_version_sql())
        row = cursor.fetchone()
        if row is not None and row[0] == lines.LAYOUT_VERSION:
            return False
        cursor.execute(lines.triggers_sql())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('reports.session_lines.layout'))")
        cursor.execute(lines.installed_version_sql())
        row = cursor.fetchone()
        if row is not None and row[0] == lines.LAYOUT_VERSION:  # another process finished it meanwhile
            return False
        cursor.execute(lines.queue_all_sql())
        queued = cursor.rowcount
        cursor.execute(lines.version_sql())
    logger.info("export lines: layout %s installed, %s sessions queued", lines.LAYOUT_VERSION, queued)
    return True


@contextlib.contextmanager
def session_lines_single_renderer() -> Iterator[bool]:
    """Whether this process may render export lines now (a PostgreSQL advisory lock, released at the end)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('reports.session_lines.render'))")
        row = cursor.fetchone()
    alone = bool(row and row[0])
    try:
        yield alone
    finally:
        if alone:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext('reports.session_lines.render'))")


def session_lines_render(*, batch_size: int = 5000, max_seconds: float = 50.0) -> int:
    """Render queued final sessions into their stored export lines, a batch per transaction, until the queue
    holds none or `max_seconds` have passed, and remove the lines of deleted sessions. Batches run one at a time
    (a transaction-level advisory lock that only renderers take; chargers' writes take nothing the batch holds).
    Returns how many lines were written."""
    written = 0
    deadline = time.monotonic() + max_seconds
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('reports.session_lines.batch'))")
            cursor.execute("SET LOCAL DateStyle = 'ISO, YMD'")  # the CSV text of the times
            cursor.execute("SET LOCAL jit = off")  # ~100 expressions, compiled for every batch otherwise
            cursor.execute(lines.render_batch_sql(batch_size))
            done = cursor.rowcount
            if done < batch_size:
                cursor.execute(lines.tombstones_sql(batch_size))
        written += done
        if done < batch_size or time.monotonic() > deadline:
            return written
