"""Charging sessions, meter values, CDRs, reservations, session limits (layer 3).

Minimal for now (what OCPP needs): a session per OCPP transaction, its meter values and the anomalies seen.
"""

from __future__ import annotations

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField, RangeBoundary, RangeOperators
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import AuditLog, History, TimeStampedModel
from apps.sessions.ocpi_json import DecimalNumberDecoder, DecimalNumberEncoder
from apps.tenants.models import TenantOwned


class SessionStatus(models.TextChoices):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    FINISHING = "finishing"
    COMPLETED = "completed"
    FAILED = "failed"
    INVALID = "invalid"


# the allowed transitions of the session state machine (services.session_transition enforces them)
TRANSITIONS: dict[str, frozenset[str]] = {
    SessionStatus.PENDING: frozenset({SessionStatus.ACTIVE, SessionStatus.FAILED, SessionStatus.INVALID}),
    SessionStatus.ACTIVE: frozenset(
        {SessionStatus.SUSPENDED, SessionStatus.FINISHING, SessionStatus.COMPLETED, SessionStatus.FAILED}
    ),
    SessionStatus.SUSPENDED: frozenset(
        {SessionStatus.ACTIVE, SessionStatus.FINISHING, SessionStatus.COMPLETED, SessionStatus.FAILED}
    ),
    SessionStatus.FINISHING: frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED}),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.FAILED: frozenset(),
    SessionStatus.INVALID: frozenset(),
}
# a session in one of these states holds its connector and its token (ConcurrentTx)
RUNNING_STATUSES = (SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.SUSPENDED, SessionStatus.FINISHING)


class LimitOutcome(models.TextChoices):
    STOPPED = "stopped", _("RemoteStopTransaction accepted")
    ZERO_CURRENT = "zero_current", _("Held at 0 A (TxProfile accepted)")
    REJECTED = "rejected", _("The charger refused the command")
    OFFLINE = "offline", _("The charger was offline")
    ERROR = "error", _("The command failed (error or timeout)")


class ChargingSession(TenantOwned, TimeStampedModel, History):
    """One charging transaction. Its primary key is the OCPP transactionId (int32): the platform owns the ids."""

    id = models.AutoField(primary_key=True)
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="sessions")
    evse = models.ForeignKey("stations.Evse", null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    connector_id = models.PositiveSmallIntegerField()
    id_tag = models.CharField(
        max_length=36,
        help_text=_(
            "The token's uid (OCPI, up to 36 characters) when the token is known, else the OCPP idTag as sent."
        ),
    )
    auth_status = models.CharField(max_length=20, help_text=_("idTagInfo.status answered to StartTransaction."))
    reservation_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=SessionStatus.choices, default=SessionStatus.ACTIVE)
    started_at = models.DateTimeField(help_text=_("StartTransaction.timestamp (charger clock)."))
    stopped_at = models.DateTimeField(null=True, blank=True)
    meter_start_wh = models.BigIntegerField()
    meter_stop_wh = models.BigIntegerField(null=True, blank=True)
    energy_wh = models.BigIntegerField(null=True, blank=True, help_text=_("meter_stop - meter_start, set once."))
    last_meter_wh = models.BigIntegerField(null=True, blank=True)
    last_meter_at = models.DateTimeField(null=True, blank=True)
    # the earliest and latest timestamp of the meter values stored for this session (any measurand, late ones
    # too): the meter-value table is partitioned by day of timestamp, and a session's read names these bounds so
    # it touches only the days they span (`selectors.session_meter_values`). NULL: none stored through the
    # services (read unbounded). Sessions older than the partitioning carry 1970..9999 (read unbounded too).
    samples_from = models.DateTimeField(null=True, blank=True, editable=False)
    samples_until = models.DateTimeField(null=True, blank=True, editable=False)
    stop_reason = models.CharField(max_length=20, blank=True, default="")
    stop_id_tag = models.CharField(max_length=20, blank=True, default="")
    flags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    # the charger said its transaction is over (an Available/Preparing status of the connector, "status:Available",
    # or a BootNotification, "boot") but its StopTransaction has not come: closed after a grace period without it
    end_evidence = models.CharField(max_length=30, blank=True, default="")
    end_evidence_at = models.DateTimeField(null=True, blank=True)

    # links, filled at start from the charge point, the token and its contract (nullable: unknown tokens charge too)
    location = models.ForeignKey("stations.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    evse_connector = models.ForeignKey(
        "stations.Connector", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    token = models.ForeignKey("customers.Token", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey("customers.Driver", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    business_customer = models.ForeignKey(
        "customers.BusinessCustomer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    contract = models.ForeignKey(
        "customers.Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    vehicle = models.ForeignKey("customers.Vehicle", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    auth_method = models.CharField(
        max_length=20, blank=True, default="", help_text=_("OCPI AuthMethod: AUTH_REQUEST, COMMAND or WHITELIST.")
    )
    auth_reason = models.CharField(max_length=40, blank=True, default="")
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    max_power_w = models.IntegerField(null=True, blank=True)
    last_power_w = models.IntegerField(null=True, blank=True)
    # session limits copied from the contract at start, and what happened when one was reached
    limit_duration = models.DurationField(null=True, blank=True)
    limit_energy_wh = models.BigIntegerField(null=True, blank=True)
    limit_action = models.CharField(max_length=20, blank=True, default="")
    limit_reached = models.CharField(max_length=10, blank=True, default="", help_text=_("duration or energy"))
    limit_reached_at = models.DateTimeField(null=True, blank=True)
    limit_outcome = models.CharField(max_length=20, choices=LimitOutcome.choices, blank=True, default="")
    limit_command_id = models.IntegerField(null=True, blank=True)
    # cost, priced by the tariffs engine at completion
    tariff = models.ForeignKey("tariffs.Tariff", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3, blank=True, default="")
    cost_excl_vat = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    cost_incl_vat = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    cost_breakdown = models.JSONField(null=True, blank=True)
    # a completed session that could not be priced (no tariff applies, a price list in another currency, a tariff
    # the engine refuses): its cost stays empty, it is never billed as 0, and this says why
    pricing_error = models.CharField(max_length=255, blank=True, default="")
    # data quality: a suspicious session keeps its reasons (see services.session_quality_reasons)
    suspicious = models.BooleanField(default=False, db_index=True)
    suspicious_reasons = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    # the other side of a roaming session: the OCPI party ("DE*ABC": country code and party id) or OICP operator
    # id of the eMSP whose driver charged here; blank for the own network's drivers
    roaming_partner = models.CharField(max_length=20, blank=True, default="")
    authorization_reference = models.CharField(
        max_length=36,
        blank=True,
        default="",
        db_default="",  # rows written by SQL (the session bulk loads, benchmarks) and by the code before it
        help_text="The eMSP's reference of its authorization (OCPI real-time authorization or START_SESSION); "
        "the session and CDR objects carry it.",
    )
    # the public id of the session's CDR, stored with it at completion, so lists and the session export need no
    # join with the (large) CDR table
    cdr_ocpi_id = models.CharField(max_length=39, blank=True, default="")
    # the driver's charging preferences (OCPI 2.2.1 ChargingPreferences): when the car leaves and how much
    # energy it wants in this session; smart charging uses them (defaults from the vehicle and the site)
    departure_at = models.DateTimeField(null=True, blank=True)
    energy_need_wh = models.PositiveIntegerField(null=True, blank=True, help_text=_("Energy wanted in this session."))

    class Meta:
        ordering = ["-id"]
        constraints = [
            # a StartTransaction resent after a lost answer (reconnect, restart) maps to the same session
            models.UniqueConstraint(
                fields=["charge_point", "connector_id", "started_at", "meter_start_wh"],
                name="session_unique_start",
            ),
            # one running session per token (ConcurrentTx), even when two chargers start it at the same instant
            models.UniqueConstraint(
                models.F("tenant"),
                Lower("id_tag"),
                condition=models.Q(status__in=[s.value for s in RUNNING_STATUSES]),
                name="session_one_running_per_tag",
                violation_error_message="This token is already charging (ConcurrentTx).",
            ),
            models.CheckConstraint(
                condition=models.Q(energy_need_wh__isnull=True) | models.Q(energy_need_wh__gt=0),
                name="session_energy_need_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["charge_point", "status"], name="session_cp_status"),
            models.Index(fields=["tenant", "id_tag", "status"], name="session_tag_status"),
            models.Index(fields=["driver", "-id"], name="session_driver_id"),
            models.Index(
                fields=["end_evidence_at"],
                condition=models.Q(stopped_at__isnull=True, end_evidence_at__isnull=False),
                name="session_end_noted",
            ),
        ]

    def __str__(self) -> str:
        return f"tx {self.pk}"

    @property
    def transaction_id(self) -> int:
        return self.pk


class StartPreferences(TenantOwned):
    """What a remote start hands over to the session the charger's StartTransaction opens (matched by charge point
    and the idTag sent, within the remote-start window): the session id reserved for it (returned by the API at
    once), the command, and the driver's charging preferences."""

    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.CASCADE, related_name="+")
    id_tag = models.CharField(max_length=20, help_text=_("The idTag sent in RemoteStartTransaction (wire id)."))
    reserved_session_id = models.IntegerField(
        null=True, blank=True, unique=True, help_text=_("The id (OCPP transactionId) the session will have.")
    )
    command_id = models.IntegerField(null=True, blank=True, help_text=_("The RemoteStartTransaction command."))
    departure_at = models.DateTimeField(null=True, blank=True)
    energy_need_wh = models.PositiveIntegerField(null=True, blank=True)
    authorization_reference = models.CharField(
        max_length=36,
        blank=True,
        default="",
        db_default="",
        help_text="The eMSP's authorization reference (OCPI START_SESSION).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    session = models.OneToOneField(
        ChargingSession, null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text=_("Taken by.")
    )

    class Meta:
        indexes = [models.Index(fields=["charge_point", "id_tag", "-created_at"], name="startpref_cp_tag")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(energy_need_wh__isnull=True) | models.Q(energy_need_wh__gt=0),
                name="startpref_energy_need_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"preferences {self.id_tag} @ {self.charge_point_id}"


class MeterValue(History):
    """One sampled value. Resent frames are ignored (unique key), so totals never count twice.

    The table is partitioned by day of `timestamp` (migration 0013, apps/core/partitions.py): read a session's
    values through `selectors.session_meter_values`, which bounds the query by the session's sample span."""

    session = models.ForeignKey(
        ChargingSession, null=True, blank=True, on_delete=models.PROTECT, related_name="meter_values"
    )
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+")
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


class TransactionAnomaly(TenantOwned, AuditLog):
    """Something a charger sent that we accepted but did not believe: recorded, never crashing the socket."""

    class Kind(models.TextChoices):
        UNKNOWN_TRANSACTION = "unknown_transaction"
        DUPLICATE_STOP = "duplicate_stop"
        LATE_METER_VALUES = "late_meter_values"  # MeterValues of a session already ended: stored, flagged "late"
        CLOSED_WITHOUT_STOP = "closed_without_stop"  # closed from evidence, its StopTransaction never came
        STOP_AFTER_CLOSE = "stop_after_close"  # its StopTransaction came after it was closed from evidence
        METER_BACKWARDS = "meter_backwards"
        FUTURE_TIMESTAMP = "future_timestamp"
        NEGATIVE_ENERGY = "negative_energy"
        UNKNOWN_CONNECTOR = "unknown_connector"

    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(
        ChargingSession, null=True, blank=True, on_delete=models.PROTECT, related_name="anomalies"
    )
    transaction_id = models.IntegerField(null=True, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    detail = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = _("transaction anomalies")


class SessionEvent(AuditLog):
    """Audit row of every state change of a session, written in the transaction of the change."""

    session = models.ForeignKey(ChargingSession, on_delete=models.PROTECT, related_name="events")
    from_status = models.CharField(max_length=10, blank=True, default="")
    to_status = models.CharField(max_length=10)
    reason = models.CharField(max_length=200, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class SignedMeterValue(History):
    """A signed meter value (OCPP sampledValue with format SignedData, e.g. OCMF), stored verbatim."""

    session = models.ForeignKey(
        ChargingSession, null=True, blank=True, on_delete=models.PROTECT, related_name="signed_values"
    )
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+")
    connector_id = models.PositiveSmallIntegerField()
    timestamp = models.DateTimeField()
    measurand = models.CharField(max_length=50, blank=True, default="")
    context = models.CharField(max_length=30, blank=True, default="")
    data = models.TextField(help_text=_("The value exactly as the charger sent it."))

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "connector_id", "timestamp", "measurand", "context"],
                name="signedvalue_unique_sample",
            )
        ]

    def __str__(self) -> str:
        return f"signed {self.measurand} @ {self.timestamp:%Y-%m-%d %H:%M:%S}"


class TsTzRange(models.Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class ReservationStatus(models.TextChoices):
    PENDING = "pending", _("Sent to the charger")
    ACTIVE = "active"
    USED = "used", _("Used by a session")
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected", _("Refused by the charger")


# a reservation in one of these states holds its connector (the exclusion constraint below)
HOLDING_RESERVATION = (ReservationStatus.PENDING, ReservationStatus.ACTIVE)


class Reservation(TenantOwned, TimeStampedModel, History):
    """A connector (connector_id 0: any connector of the charger) held for a driver until `expires_at`.

    Its primary key is the OCPP reservationId. Two holding reservations of one connector never overlap in
    time (exclusion constraint, btree_gist); connector 0 against a specific connector is checked by the
    service under a lock on the charge point.
    """

    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+")
    connector_id = models.PositiveSmallIntegerField(default=0, help_text=_("0 = any connector of the charger."))
    driver = models.ForeignKey("customers.Driver", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    token = models.ForeignKey("customers.Token", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    vehicle = models.ForeignKey("customers.Vehicle", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    id_tag = models.CharField(max_length=20)
    parent_id_tag = models.CharField(max_length=20, blank=True, default="")
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.PENDING)
    command_id = models.IntegerField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("starts_at")), name="reservation_expires_after_start"
            ),
            ExclusionConstraint(
                name="reservation_no_overlap",
                expressions=[
                    ("charge_point", RangeOperators.EQUAL),
                    ("connector_id", RangeOperators.EQUAL),
                    (TsTzRange("starts_at", "expires_at", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
                condition=models.Q(status__in=["pending", "active"]),
                violation_error_message="This connector is already reserved for that time.",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="reservation_status_expiry")]

    def __str__(self) -> str:
        return f"reservation {self.pk}"


class Cdr(TenantOwned, History):
    """An OCPI 2.2.1 CDR of a completed session: written once, never updated nor deleted (service + DB triggers).

    Its OCPI objects carry numbers (prices, volumes) as exact JSON numbers, read back as Decimal (ocpi_json).
    """

    session = models.OneToOneField(ChargingSession, on_delete=models.PROTECT, related_name="cdr")
    ocpi_id = models.CharField(max_length=39, help_text=_("OCPI CDR.id"))
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField()
    cdr_token = models.JSONField(encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder)
    auth_method = models.CharField(max_length=20)
    authorization_reference = models.CharField(max_length=36, blank=True, default="")
    cdr_location = models.JSONField(encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder)
    meter_id = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3)
    tariffs = models.JSONField(default=list, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder)
    charging_periods = models.JSONField(default=list, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder)
    signed_data = models.JSONField(null=True, blank=True, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder)
    energy_wh = models.BigIntegerField(help_text=_("Exact register difference (total_energy is this in kWh)."))
    total_cost = models.JSONField(encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder)
    total_fixed_cost = models.JSONField(
        null=True, blank=True, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder
    )
    total_energy = models.DecimalField(max_digits=14, decimal_places=4)
    total_energy_cost = models.JSONField(
        null=True, blank=True, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder
    )
    total_time = models.DecimalField(max_digits=12, decimal_places=6)
    total_time_cost = models.JSONField(
        null=True, blank=True, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder
    )
    total_parking_time = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    total_parking_cost = models.JSONField(
        null=True, blank=True, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder
    )
    remark = models.CharField(max_length=255, blank=True, default="")
    last_updated = models.DateTimeField()

    class Meta:
        verbose_name = _("CDR")
        verbose_name_plural = _("CDRs")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "ocpi_id"], name="cdr_unique_ocpi_id_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"CDR {self.ocpi_id}"


# --------------------------------------------------------------------------- sessions on other networks (eMSP role)


class PartnerSessionState(models.TextChoices):
    """Where a session of our driver on a partner's EVSE stands. The first states follow our START_SESSION command
    (the CPO's synchronous answer, then its asynchronous CommandResult); the later ones are the OCPI SessionStatus
    the CPO reports in its session PUTs/PATCHes."""

    REQUESTED = "requested", _("Start requested")
    COMMAND_ACCEPTED = "accepted", _("Start accepted by the operator")
    REJECTED = "rejected", _("Start rejected by the operator")
    FAILED = "failed", _("Start failed")
    TIMEOUT = "timeout", _("No answer from the charger")
    EVSE_OCCUPIED = "evse_occupied", _("Charge point occupied")
    EVSE_INOPERATIVE = "evse_inoperative", _("Charge point out of order")
    CANCELED_RESERVATION = "canceled", _("Reservation cancelled")
    # our other commands' states (apps/roaming/ocpi/emsp_commands.py has the table of results to states)
    NOT_SUPPORTED = "not_supported", _("Not supported by the operator")
    RESERVE_REQUESTED = "reserving", _("Reservation requested")
    STOP_REQUESTED = "stop_requested", _("Stop requested")
    STOP_ACCEPTED = "stop_accepted", _("Stop accepted by the operator")
    CANCEL_REQUESTED = "cancel_requested", _("Cancellation requested")
    PENDING = "PENDING", _("Pending")
    RESERVATION = "RESERVATION", _("Reserved")
    ACTIVE = "ACTIVE", _("Charging")
    COMPLETED = "COMPLETED", _("Completed")
    INVALID = "INVALID", _("Invalid")


class PartnerSession(TenantOwned, TimeStampedModel):
    """A session of one of our tenant's drivers on another CPO's EVSE (OCPI Session received as eMSP, or one we asked
    for with START_SESSION). Created when we send START_SESSION (`authorization_reference` is ours, the CPO echoes
    it) or when the CPO first sends the session (`ocpi_id`); the CPO's PUT/PATCHes keep kWh, cost and status live.
    `data` keeps the session object as last received."""

    partner = models.ForeignKey("roaming.RoamingPartner", on_delete=models.PROTECT, related_name="partner_sessions")
    country_code = models.CharField(max_length=2, help_text=_("The CPO's country code."))
    party_id = models.CharField(max_length=3, help_text=_("The CPO's party id."))
    ocpi_id = models.CharField(max_length=36, blank=True, default="", help_text=_("The CPO's session id."))
    authorization_reference = models.CharField(max_length=36, blank=True, default="")
    state = models.CharField(max_length=16, choices=PartnerSessionState.choices, default=PartnerSessionState.REQUESTED)
    state_reason = models.CharField(max_length=255, blank=True, default="", help_text=_("The CPO's message, if any."))
    token = models.ForeignKey("customers.Token", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey("customers.Driver", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    business_customer = models.ForeignKey(
        "customers.BusinessCustomer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    contract = models.ForeignKey(
        "customers.Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    location = models.ForeignKey(
        "stations.PartnerLocation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    location_ocpi_id = models.CharField(max_length=36, blank=True, default="")
    evse_uid = models.CharField(max_length=36, blank=True, default="")
    connector_id = models.CharField(max_length=36, blank=True, default="")
    start_date_time = models.DateTimeField(null=True, blank=True)
    end_date_time = models.DateTimeField(null=True, blank=True)
    kwh = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    currency = models.CharField(max_length=3, blank=True, default="")
    total_cost_excl_vat = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    total_cost_incl_vat = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    data = models.JSONField(
        default=dict, encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder, help_text=_("As last received.")
    )
    last_updated = models.DateTimeField(null=True, blank=True)
    reservation_expires_at = models.DateTimeField(
        null=True, blank=True, help_text=_("A reservation (RESERVE_NOW): until when the EVSE is held.")
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "ocpi_id"],
                condition=~models.Q(ocpi_id=""),
                name="partnersession_unique_object",
            ),
            models.UniqueConstraint(
                fields=["tenant", "authorization_reference"],
                condition=~models.Q(authorization_reference=""),
                name="partnersession_unique_authref",
            ),
        ]
        indexes = [models.Index(fields=["driver", "-id"], name="partnersession_driver")]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} session {self.ocpi_id or self.authorization_reference}"


class PartnerCdr(TenantOwned, TimeStampedModel):
    """A CDR another CPO sent us (OCPI cdrs Receiver): what it charges our tenant for a session of our driver. Written
    once (a correction comes as a credit CDR, `credit` with `credit_reference_id`, then a new CDR). The CPO's cost is
    `total_cost_*` (kept apart for the margin); billing prices the driver's line at our retail rule. `review` flags a
    CDR whose total does not match what the CPO's own tariff gives for the CDR's volumes."""

    class Review(models.TextChoices):
        UNCHECKED = "unchecked", _("Not checked yet")
        OK = "ok", _("Matches the tariff")
        MISMATCH = "mismatch", _("Does not match the tariff")
        NO_TARIFF = "no_tariff", _("No tariff to check against")

    partner = models.ForeignKey("roaming.RoamingPartner", on_delete=models.PROTECT, related_name="partner_cdrs")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    ocpi_id = models.CharField(max_length=39)
    session = models.ForeignKey(PartnerSession, null=True, blank=True, on_delete=models.PROTECT, related_name="cdrs")
    session_ocpi_id = models.CharField(max_length=36, blank=True, default="")
    authorization_reference = models.CharField(max_length=36, blank=True, default="")
    token = models.ForeignKey("customers.Token", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey("customers.Driver", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    business_customer = models.ForeignKey(
        "customers.BusinessCustomer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    start_date_time = models.DateTimeField()
    end_date_time = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total_energy = models.DecimalField(max_digits=14, decimal_places=4)
    total_time = models.DecimalField(max_digits=12, decimal_places=6)
    total_cost_excl_vat = models.DecimalField(max_digits=12, decimal_places=4)
    total_cost_incl_vat = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    credit = models.BooleanField(default=False)
    credit_reference_id = models.CharField(max_length=39, blank=True, default="")
    review = models.CharField(max_length=10, choices=Review.choices, default=Review.UNCHECKED)
    review_detail = models.CharField(max_length=500, blank=True, default="")
    data = models.JSONField(
        encoder=DecimalNumberEncoder, decoder=DecimalNumberDecoder, help_text=_("The CDR object as received.")
    )
    last_updated = models.DateTimeField()

    class Meta:
        verbose_name = _("partner CDR")
        verbose_name_plural = _("partner CDRs")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "ocpi_id"], name="partnercdr_unique_object"
            )
        ]
        indexes = [models.Index(fields=["tenant", "review"], name="partnercdr_review")]

    def __str__(self) -> str:
        return f"CDR {self.country_code}*{self.party_id} {self.ocpi_id}"
