"""Settings of the exports, with their defaults (override any of them in the Django settings)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from apps.tenants.models import Role


def export_dir() -> Path:
    """Where export files live (a local or shared volume that the web and worker processes both see)."""
    return Path(getattr(settings, "REPORTS_EXPORT_DIR", Path(settings.MEDIA_ROOT) / "exports"))


def rows_per_sheet() -> int:
    """Data rows per XLSX sheet: Excel's 1,048,576 rows minus the header (tests use a small number)."""
    return int(getattr(settings, "REPORTS_XLSX_ROWS_PER_SHEET", 1_048_575))


def progress_every() -> int:
    """Rows between two progress updates (one small UPDATE each)."""
    return int(getattr(settings, "REPORTS_PROGRESS_EVERY", 100_000))


def exact_count_below() -> int:
    """Below this planner estimate the total is counted exactly before the export starts (a count is a scan of
    its own: ~0.5 s per 1M sessions, so large exports show the planner's estimate instead)."""
    return int(getattr(settings, "REPORTS_EXACT_COUNT_BELOW", 200_000))


def parallel_workers() -> int | None:
    """PostgreSQL parallel workers per export (max_parallel_workers_per_gather); None: the server's setting."""
    value = getattr(settings, "REPORTS_PARALLEL_WORKERS", None)
    return None if value is None else int(value)


def retention_seconds() -> int:
    """How long a finished export's file (and the job) is kept."""
    return int(getattr(settings, "REPORTS_RETENTION_SECONDS", 7 * 24 * 3600))


def link_max_age() -> int:
    """How long a signed download link is valid, in seconds."""
    return int(getattr(settings, "REPORTS_DOWNLOAD_LINK_MAX_AGE", 15 * 60))


def stale_after_seconds() -> int:
    """A job still running after this long is considered lost (worker died) and marked failed."""
    return int(getattr(settings, "REPORTS_STALE_AFTER_SECONDS", 6 * 3600))


def personal_data_roles() -> tuple[str, ...]:
    """Tenant roles that see driver and customer names and unmasked token uids."""
    return tuple(getattr(settings, "REPORTS_PERSONAL_DATA_ROLES", (Role.ADMIN, Role.FINANCE)))
