"""Electrical model of sites and the smart-charging records (layer 4).

A site's tree: a root (grid connection or site) -> sub-distributions -> charge points (leaf nodes linked to a
`stations.ChargePoint`; its connectors are added from the station's EVSEs when the optimizer input is built).
Limits change with `TimeOfUseLimit` windows (site local time) and `GridSignal` rows (never updated: the rows
are the audit trail). Every recompute leaves a `SiteRecompute` row and one `Allocation` per session.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import AuditLog, TimeStampedModel
from apps.tenants.models import TenantOwned


class NodeKind(models.TextChoices):
    GRID_CONNECTION = "grid_connection", _("Grid connection")
    SITE = "site", _("Site")
    SUB_DISTRIBUTION = "sub_distribution", _("Sub-distribution")
    CHARGE_POINT = "charge_point", _("Charge point")


class Strategy(models.TextChoices):
    EQUAL_SHARE = "equal_share", _("Equal share")
    PRIORITY = "priority", _("Priority")
    DEPARTURE_AWARE = "departure_aware", _("Departure-aware")


class PhaseRotation(models.TextChoices):
    RST = "RST", _("RST (L1-L2-L3)")
    RTS = "RTS", _("RTS (L1-L3-L2)")
    SRT = "SRT", _("SRT (L2-L1-L3)")
    STR = "STR", _("STR (L2-L3-L1)")
    TRS = "TRS", _("TRS (L3-L1-L2)")
    TSR = "TSR", _("TSR (L3-L2-L1)")


class GridNode(TenantOwned, TimeStampedModel):
    """One node of a site's electrical tree. The root carries the site's strategy."""

    location = models.ForeignKey("stations.Location", on_delete=models.CASCADE, related_name="+")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=NodeKind.choices)
    charge_point = models.OneToOneField(
        "stations.ChargePoint", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    max_power_w = models.PositiveIntegerField(null=True, blank=True, help_text=_("All phases together (W)."))
    max_current_a = models.PositiveIntegerField(null=True, blank=True, help_text=_("Per phase (A)."))
    phases = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(3)])
    voltage_v = models.PositiveSmallIntegerField(default=230, help_text=_("Phase to neutral (V)."))
    safety_margin_pct = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(90)])
    strategy = models.CharField(
        max_length=20, choices=Strategy.choices, default=Strategy.EQUAL_SHARE, help_text=_("Used on the root.")
    )
    phase_rotation = models.CharField(max_length=3, choices=PhaseRotation.choices, default=PhaseRotation.RST)
    default_dwell_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text=_(
            "Used on the root: how long an AC car stays when the driver gave no departure time "
            "(departure-aware strategy; empty: 8 h)."
        ),
    )
    rejects_profiles = models.BooleanField(
        default=False, help_text=_("Charge points: refused a profile; reserved at full rating until cleared.")
    )

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="charge_point", charge_point__isnull=False)
                | (~Q(kind="charge_point") & Q(charge_point__isnull=True)),
                name="gridnode_charge_point_leaf",
            ),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="gridnode_not_own_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class TimeOfUseLimit(TenantOwned, TimeStampedModel):
    """A recurring window in the site's local time, e.g. weekdays 17:00-20:00 at 60 %."""

    node = models.ForeignKey(GridNode, on_delete=models.CASCADE, related_name="tou_limits")
    label = models.CharField(max_length=100, blank=True, default="")
    weekdays = ArrayField(
        models.PositiveSmallIntegerField(validators=[MaxValueValidator(6)]), help_text=_("0 = Monday ... 6 = Sunday.")
    )
    start = models.TimeField()
    end = models.TimeField(help_text=_("Exclusive; end <= start runs past midnight."))
    percent = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(100)])
    max_power_w = models.PositiveIntegerField(null=True, blank=True)
    max_current_a = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("time-of-use limit")
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percent__isnull=False) | Q(max_power_w__isnull=False) | Q(max_current_a__isnull=False),
                name="tou_has_a_limit",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label or 'window'} {self.start:%H:%M}-{self.end:%H:%M}"


class GridSignal(TenantOwned, AuditLog):
    """A capacity limit posted by the grid operator / energy company for a node. Never updated (audit trail)."""

    node = models.ForeignKey(GridNode, on_delete=models.PROTECT, related_name="signals")
    max_power_w = models.PositiveIntegerField(null=True, blank=True)
    max_current_a = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    source = models.CharField(max_length=100, blank=True, default="", help_text=_("Who sent it (e.g. DSO name)."))
    reference = models.CharField(max_length=100, blank=True, default="", help_text=_("Sender's id of the signal."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    api_key = models.ForeignKey("tenants.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__gt=models.F("valid_from")), name="gridsignal_window"),
            models.CheckConstraint(
                condition=Q(max_power_w__isnull=False) | Q(max_current_a__isnull=False), name="gridsignal_has_a_limit"
            ),
        ]
        indexes = [models.Index(fields=["node", "valid_until"], name="gridsignal_node_until")]

    def __str__(self) -> str:
        return f"signal {self.pk} on node {self.node_id}"


class BuildingLoadReading(TenantOwned, AuditLog):
    """Measured non-EV load below a node (subtracted from its headroom)."""

    node = models.ForeignKey(GridNode, on_delete=models.PROTECT, related_name="load_readings")
    at = models.DateTimeField()
    power_w = models.PositiveIntegerField(null=True, blank=True)
    current_l1_a = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    current_l2_a = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    current_l3_a = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(power_w__isnull=False)
                | Q(current_l1_a__isnull=False, current_l2_a__isnull=False, current_l3_a__isnull=False),
                name="loadreading_has_a_value",
            )
        ]
        indexes = [models.Index(fields=["node", "-at"], name="loadreading_node_at")]

    def __str__(self) -> str:
        return f"load {self.power_w} W @ {self.at:%Y-%m-%d %H:%M}"


class SiteRecompute(TenantOwned, AuditLog):
    """One run of the optimizer for a site: the root's limit vs what was allocated vs what was measured."""

    site = models.ForeignKey(GridNode, on_delete=models.PROTECT, related_name="recomputes")
    at = models.DateTimeField(db_index=True)
    trigger = models.CharField(max_length=30, default="beat")
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    limit_w = models.BigIntegerField(null=True, blank=True, help_text=_("Root's effective limit (None: unlimited)."))
    allocated_w = models.BigIntegerField(default=0)
    uncontrolled_w = models.BigIntegerField(default=0)
    measured_w = models.BigIntegerField(default=0, help_text=_("EV draw measured + building load."))
    sessions = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(default=0)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["site", "-at"], name="siterecompute_site_at")]


class Allocation(TenantOwned, AuditLog):
    """What one session got in one recompute, and why (the optimizer's reason and explanation)."""

    recompute = models.ForeignKey(SiteRecompute, on_delete=models.PROTECT, related_name="allocations")
    session = models.ForeignKey("charging.ChargingSession", on_delete=models.PROTECT, related_name="+")
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+")
    connector_id = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    controlled = models.BooleanField(default=True)
    limit = models.DecimalField(max_digits=10, decimal_places=1, help_text=_("In `unit`, as sent."))
    unit = models.CharField(max_length=1)
    power_w = models.IntegerField()
    current_l1_a = models.DecimalField(max_digits=7, decimal_places=2)
    current_l2_a = models.DecimalField(max_digits=7, decimal_places=2)
    current_l3_a = models.DecimalField(max_digits=7, decimal_places=2)
    reason = models.CharField(max_length=30)
    explanation = models.TextField()

    class Meta:
        ordering = ["-at", "pk"]
        indexes = [models.Index(fields=["session", "-at"], name="allocation_session_at")]


class ChargePointProfileState(models.Model):
    """The last profile sent per charger / connector / purpose, to send nothing when nothing changed."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted"
        REJECTED = "rejected"
        ERROR = "error"
        TIMEOUT = "timeout"
        OFFLINE = "offline"

    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.CASCADE, related_name="+")
    connector_id = models.PositiveSmallIntegerField(default=0)
    purpose = models.CharField(max_length=30)
    profile_id = models.IntegerField()
    transaction_id = models.IntegerField(null=True, blank=True)
    limit = models.DecimalField(max_digits=10, decimal_places=1)
    unit = models.CharField(max_length=1)
    status = models.CharField(max_length=10, choices=Status.choices)
    rejected = models.BooleanField(default=False)
    command_id = models.BigIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["charge_point", "connector_id", "purpose"], name="profilestate_unique")
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.limit} {self.unit} ({self.status})"


class SessionPowerCap(models.Model):
    """A limit on one session from outside the site's own plan: its roaming partner's charging profile (OCPI
    ChargingProfile from an SCSP or eMSP). The control loop never gives the session more than the profile's period in
    effect; the site's limits apply on top, so the effective limit is the minimum of both."""

    session = models.OneToOneField("charging.ChargingSession", on_delete=models.PROTECT, related_name="power_cap")
    source = models.CharField(max_length=40, help_text=_("Who set it, e.g. ocpi:NL*SIM."))
    unit = models.CharField(max_length=1, help_text=_("W (total power) or A (per phase)."))
    start_at = models.DateTimeField(null=True, blank=True, help_text=_("Absolute start; empty: the session's start."))
    duration_s = models.PositiveIntegerField(null=True, blank=True)
    periods = models.JSONField(default=list, help_text=_("[[start second, limit], ...] in the unit."))
    profile = models.JSONField(default=dict, help_text=_("The profile as the partner sent it."))
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"session {self.session_id}: {self.source}"

    def limit_at(self, at: dt.datetime, session_started_at: dt.datetime) -> float | None:
        """The limit in effect at `at` (None: the profile does not limit the session then)."""
        start = self.start_at or session_started_at
        offset = (at - start).total_seconds()
        if offset < 0 or (self.duration_s is not None and offset >= self.duration_s):
            return None
        limit = None
        for start_s, value in sorted(self.periods):
            if start_s <= offset:
                limit = float(value)
        return limit
