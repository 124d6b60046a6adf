"""Celery tasks of the exports: they take ids, call a service, and may run twice without harm."""

from __future__ import annotations

from celery import shared_task

from apps.core.metrics import timed_job
from apps.reports import services


@shared_task(name="reports.run_export", ignore_result=True, acks_late=True)
def run_export(job_id: int) -> None:
    with timed_job("export"):
        services.export_job_run(job_id=job_id)


@shared_task(name="reports.purge_exports", ignore_result=True)
def purge_exports() -> int:
    return services.export_jobs_purge()


@shared_task(name="reports.render_lines", ignore_result=True)
def render_lines() -> int:
    """Beat: keep the stored export lines current (a new layout first, then the queued sessions). One run at a
    time: a large backlog (a new layout queues every session) does not fill the worker pool with renderers."""
    with timed_job("export_lines"), services.session_lines_single_renderer() as alone:
        if not alone:
            return 0
        services.session_lines_layout_install()
        return services.session_lines_render()
