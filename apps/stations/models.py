"""Locations, charge points, EVSEs, connectors, and commands to chargers (layer 2).

OCPP is only one transport for this state: the `ocpp` app (layer 5) writes here through `services`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import AuditLog, TimeStampedModel
from apps.tenants.models import TenantOwned, country_code, validate_timezone

# OCPP-J puts the identity in the URL path: keep it to URL-safe characters (OCPP 1.6 CiString25 max 48 in 2.0).
identity_validator = RegexValidator(r"^[A-Za-z0-9._:*\-]{1,48}$", "Use 1-48 characters: letters, digits and . _ : * -")
evse_uid_validator = RegexValidator(
    r"^[A-Za-z0-9*\-]{1,48}$", "Use an eMI3 EVSE id such as DE*VLT*E1234*1 (letters, digits, * and -)."
)


DECOMMISSIONED_HELP = _(
    "Taken out of service (OCPI status REMOVED): gone from operational lists, driver search and smart charging, "
    "no new sessions; kept with its history. Set by the decommission action, never by a delete."
)


class Location(TenantOwned, TimeStampedModel):
    """A site with one or more charge points (OCPI Location)."""

    class ParkingType(models.TextChoices):
        ALONG_MOTORWAY = "ALONG_MOTORWAY"
        PARKING_GARAGE = "PARKING_GARAGE"
        PARKING_LOT = "PARKING_LOT"
        ON_DRIVEWAY = "ON_DRIVEWAY"
        ON_STREET = "ON_STREET"
        UNDERGROUND_GARAGE = "UNDERGROUND_GARAGE"

    name = models.CharField(max_length=255)
    ocpi_id = models.CharField(
        max_length=36, blank=True, default="", help_text=_("OCPI location id; unique per tenant when set.")
    )
    address = models.CharField(max_length=255)
    postal_code = models.CharField(max_length=10, blank=True, default="")
    city = models.CharField(max_length=45)
    country = models.CharField(max_length=2, default="DE", validators=[country_code])
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    timezone = models.CharField(max_length=64, default="Europe/Berlin", validators=[validate_timezone])
    parking_type = models.CharField(max_length=20, choices=ParkingType.choices, blank=True, default="")
    publish = models.BooleanField(default=True, help_text=_("Shown to roaming partners and driver apps."))
    opening_24_7 = models.BooleanField(default=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True, editable=False, help_text=DECOMMISSIONED_HELP)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "ocpi_id"],
                condition=~Q(ocpi_id=""),
                name="location_unique_ocpi_id_per_tenant",
                violation_error_message="Another location of this tenant already uses this OCPI id.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class RegistrationStatus(models.TextChoices):
    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class ChargePointStatus(models.TextChoices):
    """OCPP 1.6 ChargePointStatus (StatusNotification.status)."""

    AVAILABLE = "Available", _("Available")
    PREPARING = "Preparing", _("Preparing")
    CHARGING = "Charging", _("Charging")
    SUSPENDED_EVSE = "SuspendedEVSE", _("Suspended by the charger")
    SUSPENDED_EV = "SuspendedEV", _("Suspended by the car")
    FINISHING = "Finishing", _("Finishing")
    RESERVED = "Reserved", _("Reserved")
    UNAVAILABLE = "Unavailable", _("Unavailable")
    FAULTED = "Faulted", _("Faulted")
    UNKNOWN = "Unknown", _("Unknown (never reported)")


class SecurityProfile(models.IntegerChoices):
    """OCPP 1.6 security whitepaper profiles."""

    BASIC = 1, _("1: HTTP Basic, no TLS")
    BASIC_TLS = 2, _("2: HTTP Basic over TLS")
    CLIENT_CERTIFICATE = 3, _("3: TLS with a client certificate")


class ChargePoint(TenantOwned, TimeStampedModel):
    """One OCPP charge station. `identity` is its OCPP id, globally unique because `/ocpp/<identity>` has no tenant."""

    class RateUnit(models.TextChoices):
        AMPERE = "A"
        WATT = "W"

    location = models.ForeignKey(
        Location, null=True, blank=True, on_delete=models.PROTECT, related_name="charge_points"
    )
    identity = models.CharField(max_length=48, unique=True, validators=[identity_validator])
    password_hash = models.CharField(
        max_length=200, blank=True, default="", editable=False, help_text=_("Basic-auth secret (hashed); empty = none.")
    )
    password_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    password_pending = models.BooleanField(
        default=False,
        editable=False,
        help_text=_(
            "Accepted without a password of its own (auto-registered): it is given one "
            "(ChangeConfiguration AuthorizationKey) as soon as it is connected."
        ),
    )
    registration_status = models.CharField(
        max_length=10, choices=RegistrationStatus.choices, default=RegistrationStatus.ACCEPTED
    )
    lenient = models.BooleanField(
        default=False,
        help_text=_("Accept known vendor quirks (numbers as strings, unknown measurands) with a warning."),
    )
    security_profile = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices,
        default=SecurityProfile.BASIC,
        help_text=_("OCPP 1.6 security profile the charger must connect with; a connection below it is refused."),
    )
    security_profile_pending = models.PositiveSmallIntegerField(
        choices=SecurityProfile.choices,
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "Accepted by the charger (ChangeConfiguration SecurityProfile); becomes its profile at its first "
            "connection that meets it (until then it may fall back to its profile, as the whitepaper allows)."
        ),
    )

    # what the charger says about itself (BootNotification)
    vendor = models.CharField(max_length=20, blank=True, default="", db_index=True)
    model = models.CharField(max_length=20, blank=True, default="")
    serial_number = models.CharField(max_length=25, blank=True, default="")
    charge_box_serial_number = models.CharField(max_length=25, blank=True, default="")
    firmware_version = models.CharField(max_length=50, blank=True, default="")
    iccid = models.CharField(max_length=20, blank=True, default="")
    imsi = models.CharField(max_length=20, blank=True, default="")
    meter_type = models.CharField(max_length=25, blank=True, default="")
    meter_serial_number = models.CharField(max_length=25, blank=True, default="")
    last_boot_at = models.DateTimeField(null=True, blank=True)

    # electrical
    max_power_w = models.PositiveIntegerField(null=True, blank=True)
    phases = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(3)])
    charging_rate_unit = models.CharField(max_length=1, choices=RateUnit.choices, default=RateUnit.AMPERE)

    # liveness
    heartbeat_interval = models.PositiveIntegerField(default=300, validators=[MinValueValidator(10)])
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # not indexed: every frame of the charger writes it, and an index on it made every such update of the row
    # non-HOT, writing all 16 of the table's indexes (two of them GIN) instead of none (migration 0013)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    online = models.BooleanField(default=False, db_index=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    connection_id = models.CharField(max_length=64, blank=True, default="", editable=False)

    # connector 0 (the charger as a whole)
    status = models.CharField(max_length=20, choices=ChargePointStatus.choices, default=ChargePointStatus.UNKNOWN)
    error_code = models.CharField(max_length=30, blank=True, default="")
    vendor_error_code = models.CharField(max_length=50, blank=True, default="")
    status_info = models.CharField(max_length=50, blank=True, default="")
    status_at = models.DateTimeField(null=True, blank=True)

    # snapshots
    configuration = models.JSONField(default=dict, blank=True, help_text=_("Last GetConfiguration answer, by key."))
    configuration_read_at = models.DateTimeField(null=True, blank=True)
    configuration_complete = models.BooleanField(
        default=False, help_text=_("The snapshot is a full GetConfiguration answer (every key the charger has).")
    )
    local_list_version = models.IntegerField(default=0)
    firmware_status = models.CharField(max_length=30, blank=True, default="")
    firmware_status_at = models.DateTimeField(null=True, blank=True)
    diagnostics_status = models.CharField(max_length=30, blank=True, default="")
    diagnostics_status_at = models.DateTimeField(null=True, blank=True)
    signed_firmware_status = models.CharField(max_length=30, blank=True, default="")
    signed_firmware_status_at = models.DateTimeField(null=True, blank=True)
    signed_firmware_request_id = models.IntegerField(null=True, blank=True)
    log_status = models.CharField(max_length=30, blank=True, default="")
    log_status_at = models.DateTimeField(null=True, blank=True)
    log_request_id = models.IntegerField(null=True, blank=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True, editable=False, help_text=DECOMMISSIONED_HELP)

    class Meta:
        ordering = ["identity"]
        indexes = [models.Index(fields=["tenant", "online"], name="cp_tenant_online")]

    def __str__(self) -> str:
        return self.identity


class Evse(TenantOwned, TimeStampedModel):
    """One OCPP connector id >= 1 of a charge point (OCPI EVSE); its connectors are the plugs or cables."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="evses")
    connector_id = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    evse_uid = models.CharField(max_length=48, validators=[evse_uid_validator], help_text=_("eMI3 id: DE*VLT*E1234*1"))
    status = models.CharField(max_length=20, choices=ChargePointStatus.choices, default=ChargePointStatus.UNKNOWN)
    error_code = models.CharField(max_length=30, blank=True, default="")
    vendor_error_code = models.CharField(max_length=50, blank=True, default="")
    status_info = models.CharField(max_length=50, blank=True, default="")
    status_at = models.DateTimeField(null=True, blank=True, help_text=_("Charger's timestamp of the last status."))
    status_received_at = models.DateTimeField(null=True, blank=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True, editable=False, help_text=DECOMMISSIONED_HELP)

    class Meta:
        ordering = ["charge_point_id", "connector_id"]
        verbose_name = _("EVSE")
        constraints = [
            models.UniqueConstraint(fields=["charge_point", "connector_id"], name="evse_unique_connector_id"),
            models.UniqueConstraint(
                fields=["tenant", "evse_uid"],
                name="evse_unique_uid_per_tenant",
                violation_error_message="Another EVSE of this tenant already uses this EVSE id.",
            ),
        ]

    def __str__(self) -> str:
        return self.evse_uid


class Connector(TimeStampedModel):
    """A plug or cable of an EVSE (OCPI Connector)."""

    class Standard(models.TextChoices):
        IEC_62196_T2 = "IEC_62196_T2"
        IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
        IEC_62196_T1 = "IEC_62196_T1"
        IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
        CHADEMO = "CHADEMO"
        DOMESTIC_F = "DOMESTIC_F"
        TESLA_S = "TESLA_S"

    class Format(models.TextChoices):
        SOCKET = "SOCKET"
        CABLE = "CABLE"

    class PowerType(models.TextChoices):
        AC_1_PHASE = "AC_1_PHASE"
        AC_3_PHASE = "AC_3_PHASE"
        DC = "DC"

    evse = models.ForeignKey(Evse, on_delete=models.CASCADE, related_name="connectors")
    standard = models.CharField(max_length=24, choices=Standard.choices, default=Standard.IEC_62196_T2)
    format = models.CharField(max_length=6, choices=Format.choices, default=Format.SOCKET)
    power_type = models.CharField(max_length=10, choices=PowerType.choices, default=PowerType.AC_3_PHASE)
    max_voltage = models.PositiveIntegerField(default=400)
    max_amperage = models.PositiveIntegerField(default=32)
    max_electric_power = models.PositiveIntegerField(null=True, blank=True, help_text=_("W"))

    class Meta:
        ordering = ["evse_id", "id"]

    def __str__(self) -> str:
        return f"{self.evse} {self.standard}"


class StatusEvent(AuditLog):
    """Status history: every StatusNotification and online/offline change, per charger and connector."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.PROTECT, related_name="status_events")
    connector_id = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=20)
    error_code = models.CharField(max_length=30, blank=True, default="")
    vendor_error_code = models.CharField(max_length=50, blank=True, default="")
    info = models.CharField(max_length=50, blank=True, default="")
    timestamp = models.DateTimeField(help_text=_("When it happened (charger's clock where given)."))
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["charge_point", "-timestamp"], name="statusevent_cp_ts")]

    def __str__(self) -> str:
        return f"{self.charge_point_id}/{self.connector_id} {self.status}"


class CommandStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    ERROR = "error", _("Error")
    TIMEOUT = "timeout", _("Timed out")
    OFFLINE = "offline", _("Offline")


COMMAND_FINAL = frozenset(
    {CommandStatus.ACCEPTED, CommandStatus.REJECTED, CommandStatus.ERROR, CommandStatus.TIMEOUT, CommandStatus.OFFLINE}
)


class Command(TenantOwned, AuditLog):
    """One server-initiated OCPP CALL to a charger, with its answer. Written only by `services`."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.PROTECT, related_name="commands")
    action = models.CharField(max_length=40, db_index=True)
    payload = models.JSONField(default=dict, blank=True, help_text=_("OCPP request payload, as sent on the wire."))
    status = models.CharField(max_length=10, choices=CommandStatus.choices, default=CommandStatus.QUEUED)
    response = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=20, default="system", help_text=_("api, admin, campaign, system, ..."))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["charge_point", "-id"], name="command_cp_recent")]

    def __str__(self) -> str:
        return f"{self.action} → {self.charge_point_id} ({self.status})"


class CommandEvent(AuditLog):
    """Audit of a command's state changes (who asked, what the charger answered, when)."""

    command = models.ForeignKey(Command, on_delete=models.PROTECT, related_name="events")
    status = models.CharField(max_length=10, choices=CommandStatus.choices)
    detail = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.status} {self.at:%Y-%m-%d %H:%M:%S}"


class LocalListEntry(models.Model):
    """What we believe is in a charger's local authorization list (after an accepted SendLocalList)."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="local_list")
    id_tag = models.CharField(max_length=20)
    status = models.CharField(max_length=20, default="Accepted")
    expiry_date = models.DateTimeField(null=True, blank=True)
    parent_id_tag = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["id_tag"]
        constraints = [models.UniqueConstraint(fields=["charge_point", "id_tag"], name="locallist_unique_tag")]

    def __str__(self) -> str:
        return f"{self.id_tag} ({self.status})"


class ChargingProfile(models.Model):
    """A charging profile installed on a charger/connector (after an accepted SetChargingProfile)."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="charging_profiles")
    connector_id = models.PositiveSmallIntegerField(default=0)
    profile_id = models.IntegerField()
    stack_level = models.PositiveIntegerField(default=0)
    purpose = models.CharField(max_length=30)
    kind = models.CharField(max_length=10)
    transaction_id = models.IntegerField(null=True, blank=True)
    payload = models.JSONField(help_text=_("csChargingProfiles as sent."))
    installed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connector_id", "stack_level"]
        constraints = [models.UniqueConstraint(fields=["charge_point", "profile_id"], name="chargingprofile_unique_id")]

    def __str__(self) -> str:
        return f"profile {self.profile_id} ({self.purpose})"


def _token() -> str:
    return uuid.uuid4().hex


class FirmwareImage(TenantOwned, TimeStampedModel):
    """A firmware file served by the platform to chargers (UpdateFirmware location)."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    vendor = models.CharField(max_length=20, blank=True, default="")
    file = models.FileField(upload_to="firmware/")
    token = models.CharField(max_length=32, unique=True, default=_token, editable=False)
    # signed with the tenant's firmware signing certificate when first sent by SignedUpdateFirmware
    sha256 = models.CharField("SHA-256", max_length=64, blank=True, default="", editable=False)
    signature = models.TextField(blank=True, default="", editable=False, help_text=_("Base64 ECDSA-SHA256."))
    signing_certificate = models.TextField(blank=True, default="", editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class FirmwareCampaign(TenantOwned, TimeStampedModel):
    """UpdateFirmware over a set of chargers, with progress per charger."""

    name = models.CharField(max_length=100)
    firmware = models.ForeignKey(FirmwareImage, on_delete=models.PROTECT, related_name="campaigns")
    retrieve_at = models.DateTimeField()
    signed = models.BooleanField(
        default=False,
        help_text=_(
            "Signed firmware update (OCPP 1.6 security extension): SignedUpdateFirmware with the tenant's "
            "firmware signing certificate; the charger verifies it against the tenant CA."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class FirmwareCampaignTarget(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        REFUSED = "refused"
        DOWNLOADING = "Downloading"
        DOWNLOADED = "Downloaded"
        INSTALLING = "Installing"
        INSTALLED = "Installed"
        DOWNLOAD_FAILED = "DownloadFailed"
        INSTALLATION_FAILED = "InstallationFailed"
        # SignedFirmwareStatusNotification adds these
        DOWNLOAD_SCHEDULED = "DownloadScheduled"
        DOWNLOAD_PAUSED = "DownloadPaused"
        SIGNATURE_VERIFIED = "SignatureVerified"
        INVALID_SIGNATURE = "InvalidSignature"
        INSTALL_SCHEDULED = "InstallScheduled"
        INSTALL_REBOOTING = "InstallRebooting"
        INSTALL_VERIFICATION_FAILED = "InstallVerificationFailed"

    campaign = models.ForeignKey(FirmwareCampaign, on_delete=models.CASCADE, related_name="targets")
    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="+")
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=30, choices=State.choices, default=State.PENDING)
    detail = models.CharField(max_length=200, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "charge_point"], name="campaigntarget_unique_cp")]

    def __str__(self) -> str:
        return f"{self.charge_point_id}: {self.state}"


class DiagnosticsUpload(TenantOwned):
    """A GetDiagnostics request and the file the charger uploaded for it over HTTP."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="diagnostics")
    token = models.CharField(max_length=32, unique=True, default=_token, editable=False)
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(upload_to="diagnostics/", blank=True)
    file_name = models.CharField(max_length=255, blank=True, default="")
    size = models.PositiveBigIntegerField(default=0)
    log_type = models.CharField(
        max_length=20,
        blank=True,
        default="",
        help_text=_("GetLog logType (DiagnosticsLog, SecurityLog); empty: GetDiagnostics."),
    )
    request_id = models.IntegerField(null=True, blank=True, help_text=_("GetLog requestId."))
    created_at = models.DateTimeField(auto_now_add=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.file_name or f"diagnostics {self.token[:8]}"


# --------------------------------------------------------------------------- OCPP 1.6 security extension

# The whitepaper's (edition 3, appendix 1) security events marked critical: the charger pushes them at once and
# the platform raises an alert for them (analytics `security_event`).
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    }
)


class SecurityEvent(TenantOwned, AuditLog):
    """A SecurityEventNotification from a charger (OCPP 1.6 security whitepaper)."""

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.PROTECT, related_name="security_events")
    type = models.CharField(max_length=50, db_index=True)
    timestamp = models.DateTimeField(help_text=_("When it happened (the charger's clock)."))
    tech_info = models.CharField(max_length=255, blank=True, default="")
    critical = models.BooleanField(default=False, help_text=_("Critical per the whitepaper's list: raises an alert."))
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [models.Index(fields=["charge_point", "-timestamp"], name="securityevent_cp_ts")]

    def __str__(self) -> str:
        return f"{self.charge_point_id} {self.type}"


class CertificateAuthority(TenantOwned, TimeStampedModel):
    """The tenant's own CSMS certificate authority: signs its chargers' certificates (SignCertificate ->
    CertificateSigned). The private key is stored encrypted (`apps.stations.certificates`), never shown."""

    certificate = models.TextField(help_text=_("CA certificate (PEM)."))
    private_key_encrypted = models.TextField(editable=False)
    not_after = models.DateTimeField()
    firmware_signing_certificate = models.TextField(
        blank=True, default="", help_text=_("Issued by this CA; signs firmware for SignedUpdateFirmware (PEM).")
    )
    firmware_signing_key_encrypted = models.TextField(blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("certificate authority")
        verbose_name_plural = _("certificate authorities")
        constraints = [models.UniqueConstraint(fields=["tenant"], name="ca_one_per_tenant")]

    def __str__(self) -> str:
        return f"CA of tenant {self.tenant_id}"


class CertificateSigningRequest(TenantOwned):
    """A SignCertificate from a charger: its CSR, whether it was accepted, and the certificate it got."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        REJECTED = "rejected"
        SIGNED = "signed"
        INSTALLED = "installed", "installed (CertificateSigned accepted)"
        FAILED = "failed", "failed (CertificateSigned not accepted)"

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.PROTECT, related_name="signing_requests")
    csr = models.TextField(help_text=_("PKCS#10 CSR (PEM), as the charger sent it."))
    common_name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    detail = models.CharField(max_length=300, blank=True, default="")
    certificate = models.TextField(blank=True, default="", help_text=_("The signed certificate (PEM)."))
    serial_number = models.CharField(max_length=64, blank=True, default="")
    not_after = models.DateTimeField(null=True, blank=True)
    command = models.ForeignKey(Command, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"CSR {self.pk} of {self.charge_point_id} ({self.status})"


class InstalledCertificate(TenantOwned):
    """A certificate a charger holds, as far as the platform knows: reported by GetInstalledCertificateIds, or
    installed through an accepted InstallCertificate / CertificateSigned; gone after an accepted DeleteCertificate."""

    class Type(models.TextChoices):
        CENTRAL_SYSTEM_ROOT = "CentralSystemRootCertificate"
        MANUFACTURER_ROOT = "ManufacturerRootCertificate"
        CHARGE_POINT = "ChargePointCertificate"

    charge_point = models.ForeignKey(ChargePoint, on_delete=models.CASCADE, related_name="installed_certificates")
    certificate_type = models.CharField(max_length=30, choices=Type.choices)
    hash_algorithm = models.CharField(max_length=10, default="SHA256")
    issuer_name_hash = models.CharField(max_length=128)
    issuer_key_hash = models.CharField(max_length=128)
    serial_number = models.CharField(max_length=40)
    certificate = models.TextField(blank=True, default="", help_text=_("PEM, when the platform sent it."))
    subject = models.CharField(max_length=255, blank=True, default="")
    not_after = models.DateTimeField(null=True, blank=True, db_index=True)
    source = models.CharField(
        max_length=30, help_text=_("InstallCertificate, CertificateSigned or GetInstalledCertificateIds")
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["charge_point_id", "certificate_type", "serial_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["charge_point", "hash_algorithm", "issuer_name_hash", "issuer_key_hash", "serial_number"],
                name="installedcert_unique_hash",
            )
        ]

    def __str__(self) -> str:
        return f"{self.certificate_type} {self.serial_number}"


# --------------------------------------------------------------------------- partner stations (eMSP role)


class PartnerEvseStatus(models.TextChoices):
    """OCPI 2.2.1 Status (mod_locations): an EVSE's status as the CPO reports it."""

    AVAILABLE = "AVAILABLE", _("Available")
    BLOCKED = "BLOCKED", _("Blocked")
    CHARGING = "CHARGING", _("Charging")
    INOPERATIVE = "INOPERATIVE", _("Inoperative")
    OUTOFORDER = "OUTOFORDER", _("Out of order")
    PLANNED = "PLANNED", _("Planned")
    REMOVED = "REMOVED", _("Removed")
    RESERVED = "RESERVED", _("Reserved")
    UNKNOWN = "UNKNOWN", _("Unknown")


class PartnerLocation(TenantOwned, TimeStampedModel):
    """A location of another CPO, received over roaming (OCPI locations Receiver or pull, OICP EVSE data): where our
    tenant's drivers can charge on other networks. Operated by `partner` (the roaming partner it came from); the
    object's own `country_code`/`party_id` name the CPO that owns it (the partner itself, or a CPO behind a hub).

    The columns are what the driver search filters and sorts on; `data` keeps the object as last received (without
    its EVSEs, which are rows of PartnerEvse), so nothing the CPO sent is lost."""

    partner = models.ForeignKey("roaming.RoamingPartner", on_delete=models.CASCADE, related_name="partner_locations")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    ocpi_id = models.CharField(max_length=36, help_text=_("The CPO's location id."))
    publish = models.BooleanField(default=True)
    name = models.CharField(max_length=255, blank=True, default="")
    address = models.CharField(max_length=45)
    city = models.CharField(max_length=45)
    postal_code = models.CharField(max_length=10, blank=True, default="")
    state = models.CharField(max_length=20, blank=True, default="")
    country = models.CharField(max_length=3, help_text=_("ISO 3166-1 alpha-3, as OCPI sends it."))
    latitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-90), MaxValueValidator(90)]
    )
    longitude = models.DecimalField(
        max_digits=9, decimal_places=6, validators=[MinValueValidator(-180), MaxValueValidator(180)]
    )
    time_zone = models.CharField(max_length=255, blank=True, default="")
    operator_name = models.CharField(max_length=100, blank=True, default="")
    data = models.JSONField(default=dict, help_text=_("The location object as last received, without its EVSEs."))
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "ocpi_id"], name="partnerlocation_unique_object"
            )
        ]
        indexes = [models.Index(fields=["partner", "last_updated"], name="partnerlocation_updated")]

    def __str__(self) -> str:
        return self.name or f"{self.country_code}*{self.party_id} {self.ocpi_id}"


class PartnerEvse(TimeStampedModel):
    """An EVSE of a partner location (OCPI EVSE). `status` is kept live from the CPO's PATCHes and status pushes."""

    location = models.ForeignKey(PartnerLocation, on_delete=models.CASCADE, related_name="evses")
    uid = models.CharField(max_length=36, help_text=_("The CPO's EVSE uid (the key in OCPI URLs)."))
    evse_id = models.CharField(max_length=48, blank=True, default="", help_text=_("eMI3 EVSE id, e.g. NL*ABC*E123*1."))
    status = models.CharField(max_length=12, choices=PartnerEvseStatus.choices, default=PartnerEvseStatus.UNKNOWN)
    capabilities = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    physical_reference = models.CharField(max_length=16, blank=True, default="")
    data = models.JSONField(default=dict, help_text=_("The EVSE object as last received, without its connectors."))
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ["location_id", "uid"]
        constraints = [models.UniqueConstraint(fields=["location", "uid"], name="partnerevse_unique_uid")]
        indexes = [models.Index(fields=["evse_id"], name="partnerevse_evse_id")]

    def __str__(self) -> str:
        return self.evse_id or self.uid


class PartnerConnector(TimeStampedModel):
    """A connector of a partner EVSE (OCPI Connector), with the tariffs the CPO says apply to it."""

    evse = models.ForeignKey(PartnerEvse, on_delete=models.CASCADE, related_name="connectors")
    connector_id = models.CharField(max_length=36)
    standard = models.CharField(max_length=24)
    format = models.CharField(max_length=6)
    power_type = models.CharField(max_length=10)
    max_voltage = models.PositiveIntegerField()
    max_amperage = models.PositiveIntegerField()
    max_electric_power = models.PositiveIntegerField(null=True, blank=True)
    tariff_ids = ArrayField(models.CharField(max_length=36), default=list, blank=True)
    data = models.JSONField(default=dict, help_text=_("The connector object as last received."))
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ["evse_id", "connector_id"]
        constraints = [models.UniqueConstraint(fields=["evse", "connector_id"], name="partnerconnector_unique_id")]

    def __str__(self) -> str:
        return f"{self.evse_id}/{self.connector_id}"
