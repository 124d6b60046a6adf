"""OCPP 1.6-J protocol adapter (layer 5): the frame log. Domain state lives in `stations` and `sessions`."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import AuditLog


class MessageLog(AuditLog):
    """One WebSocket frame in or out, written in batches off the hot path (see `apps.ocpp.logbuffer`)."""

    class Direction(models.TextChoices):
        IN = "in", "charger → platform"
        OUT = "out", "platform → charger"

    class Kind(models.IntegerChoices):
        CALL = 2, "CALL"
        RESULT = 3, "CALLRESULT"
        ERROR = 4, "CALLERROR"
        INVALID = 0, "unparsable"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+", db_index=False)
    created_at = models.DateTimeField(db_index=True)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.PositiveSmallIntegerField(choices=Kind.choices)
    action = models.CharField(max_length=40, blank=True, default="")
    unique_id = models.CharField(max_length=64, blank=True, default="")
    payload = models.JSONField(null=True, blank=True)
    result = models.CharField(max_length=200, blank=True, default="", help_text=_("CallError code, status, ..."))
    latency_ms = models.FloatField(null=True, blank=True, help_text=_("For answers: time since the CALL."))
    warning = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        verbose_name = _("OCPP frame")
        verbose_name_plural = _("OCPP frames")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["charge_point", "-created_at"], name="msglog_cp_recent"),
            models.Index(fields=["tenant", "-created_at"], name="msglog_tenant_recent"),
            models.Index(fields=["unique_id"], name="msglog_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.action} {self.unique_id}"
