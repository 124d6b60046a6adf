"""Charging sessions, meter values, CDRs, reservations, session limits (layer 3).

Minimal for now (what OCPP needs): a session per OCPP transaction, its meter values and the anomalies seen.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from apps.core.models import TimeStampedModel
from apps.tenants.models import TenantOwned


class SessionStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"


class ChargingSession(TenantOwned, TimeStampedModel):
    """One charging transaction. Its primary key is the OCPP transactionId (int32): the platform owns the ids."""

    id = models.AutoField(primary_key=True)
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="sessions")
    evse = models.ForeignKey("stations.Evse", null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions")
    connector_id = models.PositiveSmallIntegerField()
    id_tag = models.CharField(max_length=20)
    auth_status = models.CharField(max_length=20, help_text="idTagInfo.status answered to StartTransaction.")
    reservation_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    started_at = models.DateTimeField(help_text="StartTransaction.timestamp (charger clock).")
    stopped_at = models.DateTimeField(null=True, blank=True)
    meter_start_wh = models.BigIntegerField()
    meter_stop_wh = models.BigIntegerField(null=True, blank=True)
    energy_wh = models.BigIntegerField(null=True, blank=True, help_text="meter_stop - meter_start, set once.")
    last_meter_wh = models.BigIntegerField(null=True, blank=True)
    last_meter_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(max_length=20, blank=True, default="")
    stop_id_tag = models.CharField(max_length=20, blank=True, default="")
    flags = ArrayField(models.CharField(max_length=40), default=list, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # a StartTransaction resent after a lost answer (reconnect, restart) maps to the same session
            models.UniqueConstraint(
                fields=["charge_point", "connector_id", "started_at", "meter_start_wh"],
                name="session_unique_start",
            ),
        ]
        indexes = [
            models.Index(fields=["charge_point", "status"], name="session_cp_status"),
            models.Index(fields=["tenant", "id_tag", "status"], name="session_tag_status"),
        ]

    def __str__(self) -> str:
        return f"tx {self.pk}"

    @property
    def transaction_id(self) -> int:
        return self.pk


class MeterValue(models.Model):
    """One sampled value. Resent frames are ignored (unique key), so totals never count twice."""

    session = models.ForeignKey(
        ChargingSession, null=True, blank=True, on_delete=models.CASCADE, related_name="meter_values"
    )
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.CASCADE, related_name="+")
    connector_id = models.PositiveSmallIntegerField()
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=50, default="Energy.Active.Import.Register")
    phase = models.CharField(max_length=10, blank=True, default="")
    location = models.CharField(max_length=10, blank=True, default="")
    context = models.CharField(max_length=30, blank=True, default="")
    unit = models.CharField(max_length=20, blank=True, default="")
    value = models.DecimalField(max_digits=20, decimal_places=4)
    flags = ArrayField(models.CharField(max_length=40), default=list, blank=True)

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "connector_id", "timestamp", "measurand", "phase", "location", "context"],
                name="metervalue_unique_sample",
            )
        ]
        indexes = [models.Index(fields=["session", "timestamp"], name="metervalue_session_ts")]

    def __str__(self) -> str:
        return f"{self.measurand} {self.value} {self.unit} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class TransactionAnomaly(TenantOwned):
    """Something a charger sent that we accepted but did not believe: recorded, never crashing the socket."""

    class Kind(models.TextChoices):
        UNKNOWN_TRANSACTION = "unknown_transaction"
        DUPLICATE_STOP = "duplicate_stop"
        METER_BACKWARDS = "meter_backwards"
        FUTURE_TIMESTAMP = "future_timestamp"
        NEGATIVE_ENERGY = "negative_energy"
        UNKNOWN_CONNECTOR = "unknown_connector"

    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(
        ChargingSession, null=True, blank=True, on_delete=models.CASCADE, related_name="anomalies"
    )
    transaction_id = models.IntegerField(null=True, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    detail = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "transaction anomalies"
