"""Export jobs (layer 4): who asked for which sessions in which format, and how far the export got."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.tenants.models import TenantOwned


class ExportFormat(models.TextChoices):
    CSV = "csv", _("CSV")
    CSV_GZ = "csv.gz", _("CSV, gzip-compressed")
    XLSX = "xlsx", _("Excel (XLSX)")


class CsvSeparator(models.TextChoices):
    COMMA = ",", _("Comma (,)")
    SEMICOLON = ";", _("Semicolon (;) with decimal comma, for German Excel")


class ExportStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


EXPORT_ACTIVE = (ExportStatus.QUEUED, ExportStatus.RUNNING)


class ExportJob(TenantOwned):
    """One export of charging sessions to a file. Written only by `services` (and progress by the runner)."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_via = models.CharField(max_length=10, default="api", help_text=_("api or admin"))
    # filters
    date_from = models.DateTimeField(null=True, blank=True, help_text=_("Sessions started at or after (inclusive)."))
    date_to = models.DateTimeField(null=True, blank=True, help_text=_("Sessions started before (exclusive)."))
    location_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    charge_point_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    business_customer_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    driver_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    statuses = ArrayField(models.CharField(max_length=10), default=list, blank=True)
    roaming_partners = ArrayField(
        models.CharField(max_length=20),
        default=list,
        blank=True,
        help_text='Roaming partners ("DE*ABC"); "-" stands for sessions of the own network (no partner).',
    )
    # output
    format = models.CharField(max_length=6, choices=ExportFormat.choices, default=ExportFormat.CSV)
    csv_separator = models.CharField(max_length=1, choices=CsvSeparator.choices, default=CsvSeparator.COMMA)
    personal_data = models.BooleanField(
        default=False, help_text=_("Driver and customer names and unmasked tokens; set from the requester's role.")
    )
    # progress and outcome
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    rows_done = models.BigIntegerField(default=0)
    rows_total = models.BigIntegerField(null=True, blank=True, help_text=_("Exact count, or the planner's estimate."))
    row_count = models.BigIntegerField(null=True, blank=True)
    sheet_count = models.PositiveIntegerField(null=True, blank=True)
    file_size = models.BigIntegerField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    file_name = models.CharField(max_length=200, blank=True, default="", help_text=_("Relative to the export folder."))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text=_("When the file is deleted."))

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "-id"], name="exportjob_tenant_recent"),
            models.Index(fields=["expires_at"], name="exportjob_expires", condition=Q(expires_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(date_from__isnull=True) | Q(date_to__isnull=True) | Q(date_to__gt=models.F("date_from")),
                name="exportjob_date_range_ordered",
                violation_error_message="date_to must be after date_from.",
            )
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"

    @property
    def progress_percent(self) -> int | None:
        if self.status == ExportStatus.DONE:
            return 100
        if not self.rows_total:
            return None
        return min(99, int(self.rows_done * 100 / self.rows_total))


class SessionLine(models.Model):
    """A session's export row, rendered once (see `apps.reports.lines`): the filter columns, copied from the
    session, and the encoded `parts` of the line. Written only by `services.session_lines_render`.

    `session_id` is no foreign key on purpose: checking one at the renderer's commit locked the session rows
    (FOR KEY SHARE) against chargers' transactions (issue 20 item 2). A deleted session is queued as a tombstone
    by a trigger, hidden from exports at once, and its line removed by the renderer."""

    session_id = models.BigIntegerField(primary_key=True)
    tenant_id = models.BigIntegerField()
    started_at = models.DateTimeField()
    status = models.CharField(max_length=10)
    location_id = models.BigIntegerField(null=True)
    charge_point_id = models.BigIntegerField()
    driver_id = models.BigIntegerField(null=True)
    business_customer_id = models.BigIntegerField(null=True)
    roaming_partner = models.CharField(max_length=20)
    parts = ArrayField(models.TextField())
    rendered_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["tenant_id", "started_at"], name="sessionline_tenant_start")]

    def __str__(self) -> str:
        return f"export line of session {self.session_id}"


class PendingLine(models.Model):
    """A session whose export line is missing or out of date: queued by database triggers (insert, a change of
    a final session, a change of an exported column of a location, token, driver ..., a delete); exports render
    these live until `services.session_lines_render` has stored their line.

    Insert-only: every change adds a row (a session may have several), nothing is unique and nothing refers to the
    session, so a trigger in a charger's transaction never waits for anything; the renderer deletes the rows it
    saw, in the snapshot it rendered from (issue 20 item 2)."""

    session_id = models.BigIntegerField(db_index=True)
    tenant_id = models.BigIntegerField(db_index=True)
    queued_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"pending export line of session {self.session_id}"
