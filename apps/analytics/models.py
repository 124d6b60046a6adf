"""KPIs, alerts and notifications (layer 4).

- `SessionFact`: append-only, one row per session start and one per session end (written by the event
  subscribers, idempotent). The rollups read only facts newer than their watermark, so they never rescan
  the sessions table.
- `KpiBucket`: the time series per charge point, rolled up by minute, hour and day (`Rollup`).
- `AlertRule` / `Alert`: per-tenant thresholds; one open alert per (tenant, kind, subject) at a time.
- `WebhookSubscription`, `NotificationEvent`, `WebhookDelivery`, `DeliveryAttempt`: signed webhooks with
  retries and a delivery log.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import AuditLog, TimeStampedModel
from apps.tenants.models import TenantOwned


class Granularity(models.TextChoices):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


class SessionFact(TenantOwned, AuditLog):
    """What a session contributed to the KPIs, captured once when it started and once when it ended."""

    class Kind(models.TextChoices):
        STARTED = "started"
        ENDED = "ended"

    kind = models.CharField(max_length=7, choices=Kind.choices)
    session_id = models.IntegerField()
    charge_point_id = models.BigIntegerField()
    location_id = models.BigIntegerField(null=True, blank=True)
    connector_id = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    # when it happened: the session's start for a started fact, its stop for an ended one (the KPI time, the
    # rollups' bucket; the table is partitioned by day of it). Neither changes once set, so (session, kind, at) is
    # as unique as (session, kind).
    at = models.DateTimeField()
    energy_wh = models.BigIntegerField(default=0)
    duration_s = models.BigIntegerField(default=0)
    successful = models.BooleanField(default=False)
    stop_reason = models.CharField(max_length=20, blank=True, default="")
    vehicle_model = models.CharField(max_length=160, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        # the partition key must be in a partitioned table's unique keys (PostgreSQL); `at` is fixed per (session, kind)
        constraints = [
            models.UniqueConstraint(fields=["session_id", "kind", "at"], name="sessionfact_unique_kind"),
        ]
        indexes = [models.Index(fields=["created_at"], name="sessionfact_created")]

    def __str__(self) -> str:
        return f"session {self.session_id} {self.kind}"


class KpiBucket(TenantOwned):
    """Session figures of one charge point in one minute/hour/day (UTC buckets)."""

    granularity = models.CharField(max_length=6, choices=Granularity.choices)
    bucket = models.DateTimeField()
    charge_point_id = models.BigIntegerField()
    location_id = models.BigIntegerField(null=True, blank=True)
    sessions_started = models.IntegerField(default=0)
    sessions_ended = models.IntegerField(default=0)
    sessions_successful = models.IntegerField(default=0)
    energy_wh = models.BigIntegerField(default=0)
    duration_s = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["granularity", "bucket", "charge_point_id"]
        constraints = [
            models.UniqueConstraint(fields=["granularity", "bucket", "charge_point_id"], name="kpibucket_unique")
        ]
        indexes = [models.Index(fields=["tenant", "granularity", "bucket"], name="kpibucket_tenant_g_b")]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:%M} cp {self.charge_point_id}"


class Rollup(models.Model):
    """The watermark of one rollup: the last SessionFact id folded into it."""

    name = models.CharField(max_length=40, unique=True)
    last_fact_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_fact_id}"


class AlertKind(models.TextChoices):
    CHARGER_OFFLINE = "charger_offline", _("Charger offline for more than N minutes")
    CONNECTOR_FAULTED = "connector_faulted", _("Connector faulted")
    POWER_ABOVE_RATING = "power_above_rating", _("Power above the connector's rating")
    ENERGY_WITHOUT_SESSION = "energy_without_session", _("Energy with no session")
    SESSION_TOO_LONG = "session_too_long", _("Session running longer than N minutes")
    NO_ENERGY = "no_energy", _("No energy after N minutes")
    COMMAND_FAILED = "command_failed", _("Remote command failed or timed out")
    PROFILE_REJECTED = "profile_rejected", _("Smart-charging profile rejected")
    SECURITY_EVENT = "security_event", _("Critical security event reported by a charger")
    CERTIFICATE_EXPIRING = "certificate_expiring", _("Charger certificate expiring within N minutes")


class AlertRule(TenantOwned, TimeStampedModel):
    """One rule per tenant and kind: whether it alerts, after how long, and whom it tells by e-mail."""

    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    enabled = models.BooleanField(default=True)
    threshold_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MinValueValidator(0)],
        help_text=_("charger_offline, session_too_long, no_energy: minutes before the alert opens."),
    )
    power_margin_percent = models.PositiveSmallIntegerField(
        default=0, help_text=_("power_above_rating: tolerance above the connector's rated power.")
    )
    notify_emails = ArrayField(models.EmailField(), default=list, blank=True)

    class Meta:
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["tenant", "kind"], name="alertrule_unique_kind")]

    def __str__(self) -> str:
        return self.get_kind_display()


class AlertStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class Alert(TenantOwned):
    """One occurrence of a condition on one subject; repeated sightings while it holds only bump the counter."""

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    kind = models.CharField(max_length=30, choices=AlertKind.choices)
    subject = models.CharField(max_length=120, help_text=_("What it is about, e.g. cp:12, cp:12/1, session:55."))
    status = models.CharField(max_length=8, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    charge_point_id = models.BigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ack_comment = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "subject"],
                condition=Q(status="open"),
                name="alert_one_open_per_subject",
            )
        ]
        indexes = [models.Index(fields=["tenant", "status", "-opened_at"], name="alert_tenant_status")]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.status})"


def _webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


class WebhookSubscription(TenantOwned, TimeStampedModel):
    """An enterprise customer's endpoint: which event types it wants, signed with its own secret."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, default=_webhook_secret, editable=False)
    event_types = ArrayField(
        models.CharField(max_length=40), default=list, blank=True, help_text=_("Empty = every event type.")
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class NotificationEvent(TenantOwned, AuditLog):
    """Something a subscriber may hear about. Its UUID is the idempotency key receivers dedupe on."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed", _("Failed (gave up)")


class WebhookDelivery(TenantOwned, AuditLog):
    """One event to one subscription; retried with backoff until it succeeds or the attempts run out."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.PROTECT, related_name="deliveries")
    event = models.ForeignKey(NotificationEvent, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["subscription", "event"], name="delivery_unique_event")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_pending_due")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.subscription_id} ({self.status})"


class DeliveryAttempt(AuditLog):
    """The delivery log: every HTTP attempt with its answer, latency or error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, default="")
    succeeded = models.BooleanField(default=False)
    replay = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.status_code or self.error}"


class Dashboard(KpiBucket):
    """No table of its own: the admin entry of the ops dashboard (listed on the admin index under Analytics)."""

    class Meta:
        proxy = True
        verbose_name = _("ops dashboard")
        verbose_name_plural = _("ops dashboard")
