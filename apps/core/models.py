"""Kernel model bases. Keep this module tiny: nothing here knows about tenants or charging."""

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class History(models.Model):
    """Marker: rows that record what happened (sessions, CDRs, invoices and their lines, payments, meter values).

    Every foreign key of a history row is PROTECT (or SET_NULL where the row keeps a snapshot of what it pointed
    at), so deleting what history points to is refused on every path: API, admin, shell, a cascade from a parent
    (`tests/test_history.py` checks every model). Admin pages never offer to delete history rows."""

    class Meta:
        abstract = True


class AuditLog(History):
    """Marker: append-only logs (command and OCPP frame logs, state-change events, webhook deliveries, grid
    signals ...). Read-only for every user, superusers included, in the admin and the API; only the retention
    jobs delete them."""

    class Meta:
        abstract = True


class OutboxDelivery(models.Model):
    """One event to deliver to one subscriber: the transactional outbox (design in `apps/core/outbox.py`).

    Written by `apps.core.events.publish` in the publisher's transaction; delivered by Celery in order per
    (subject, subscriber); kept a while once delivered, dead-lettered after too many failed attempts."""

    class State(models.IntegerChoices):
        PENDING = 0, "pending"
        DELIVERED = 1, "delivered"
        DEAD = 2, "dead (gave up)"

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(db_default=Now())
    event_type = models.CharField(max_length=80)
    subject = models.CharField(max_length=120, help_text=_("Deliveries of one subject reach a subscriber in order."))
    subscriber = models.CharField(max_length=200)
    tenant_id = models.BigIntegerField(null=True, help_text=_("The event's tenant (not a foreign key: kernel table)."))
    payload = models.JSONField()
    state = models.PositiveSmallIntegerField(choices=State.choices, db_default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(db_default=0)
    available_at = models.DateTimeField(db_default=Now(), help_text=_("Not delivered before this (retry backoff)."))
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(db_default="", blank=True)

    class Meta:
        verbose_name = _("outbox delivery")
        verbose_name_plural = _("outbox deliveries")
        indexes = [
            # the claim scan: due pending rows, oldest first
            models.Index(fields=["available_at", "id"], condition=models.Q(state=0), name="core_outbox_pending_due"),
            # "is this row the head of its stream?": earlier pending rows of the same subject and subscriber
            models.Index(
                fields=["subject", "subscriber", "id"], condition=models.Q(state=0), name="core_outbox_pending_stream"
            ),
            # failed rows waiting for their retry (worker passes hold their streams' later rows behind them)
            models.Index(fields=["id"], condition=models.Q(state=0, attempts__gt=0), name="core_outbox_retrying"),
            # dead letters, for the admin (nearly empty: costs an INSERT nothing)
            models.Index(fields=["id"], condition=models.Q(state=2), name="core_outbox_dead"),
            # retention clean-up by age (BRIN: nearly free to maintain on an append-mostly table)
            BrinIndex(fields=["created_at"], autosummarize=True, name="core_outbox_created_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.subject} -> {self.subscriber}"
