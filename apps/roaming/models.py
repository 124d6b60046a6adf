"""The roaming partner registry: one row per OCPI party a tenant roams with (configuration, not code).

Credentials tokens (credentials.asciidoc), seen from our side:
- the token a partner uses to call *us* ("ours") is CREDENTIALS_TOKEN_A while they have not registered with us
  (only `versions` and `credentials` accept it), then CREDENTIALS_TOKEN_C (they registered with us: we generated
  it in our answer to their POST) or CREDENTIALS_TOKEN_B (we registered with them: we sent it in our POST). Only
  its SHA-256 is stored (`our_token_hash`, unique: it names the partner, and so the tenant, of every request),
  with its first characters to recognise it; the plain token is shown once, when it is issued.
- the token we use to call *them* ("theirs") is the CREDENTIALS_TOKEN_A they gave us out of band, then the B they
  sent in their POST or the C they answered to ours. It is kept as it is (we must send it), and shown masked.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.models import TimeStampedModel
from apps.tenants.models import TenantOwned, country_code, ocpi_party_id, oicp_operator_id, oicp_provider_id


class Role(models.TextChoices):
    """OCPI 2.2.1 Role enum (types.asciidoc)."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class Module(models.TextChoices):
    """OCPI 2.2.1 ModuleID enum, less `credentials` (always on). `hubclientinfo`: we are a Receiver of a hub's
    ClientInfo (the parties behind it)."""

    CDRS = "cdrs"
    CHARGINGPROFILES = "chargingprofiles"
    COMMANDS = "commands"
    HUBCLIENTINFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


class TokenStyle(models.TextChoices):
    OCPI_221 = "2.2.1", _("2.2.1: Authorization: Token <base64(token)>")
    OCPI_211 = "2.1.1", _("2.1.1-style: the raw token accepted and sent")


class TokenKind(models.TextChoices):
    A = "A", _("CREDENTIALS_TOKEN_A (registration only)")
    B = "B", _("CREDENTIALS_TOKEN_B")
    C = "C", _("CREDENTIALS_TOKEN_C")


class PartnerStatus(models.TextChoices):
    PENDING = "pending", _("Pending (not registered)")
    REGISTERED = "registered", _("Registered")
    SUSPENDED = "suspended", _("Suspended")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def default_our_roles() -> list[str]:
    return [Role.CPO]


def default_modules() -> list[str]:
    return [Module.LOCATIONS]


class Protocol(models.TextChoices):
    OCPI = "ocpi", "OCPI 2.2.1"
    OICP = "oicp", _("OICP 2.3 (Hubject)")


class RoamingPartner(TenantOwned, TimeStampedModel):
    """An OCPI 2.2.1 party a tenant roams with. Each tenant is its own party (`our_country_code`/`our_party_id`,
    defaulting to the tenant's OCPI identity), so one platform answers for many tenants.

    A Hubject connection is a partner too (`protocol` OICP, its settings in `OicpConnection`), so partner stations,
    tariffs, sessions and CDRs point at one registry whichever protocol brought them. Its OCPI columns hold Hubject's
    pseudo-party DE*HBS (one Hubject connection per tenant) and no OCPI modules, so no OCPI code path picks it."""

    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=4, choices=Protocol.choices, default=Protocol.OCPI, db_default="ocpi")
    # who we are towards this partner: one party (country code + party id) in each of our roles
    our_country_code = models.CharField(max_length=2, validators=[country_code])
    our_party_id = models.CharField(max_length=3, validators=[ocpi_party_id])
    our_roles = ArrayField(models.CharField(max_length=5, choices=Role.choices), default=default_our_roles)
    # who they are
    country_code = models.CharField(max_length=2, validators=[country_code])
    party_id = models.CharField(max_length=3, validators=[ocpi_party_id])
    roles = ArrayField(models.CharField(max_length=5, choices=Role.choices), default=list, blank=True)
    credentials_roles = models.JSONField(
        default=list, blank=True, help_text=_("The CredentialsRole list they sent in the handshake, as sent.")
    )
    versions_url = models.URLField(max_length=255, blank=True, help_text=_("Their versions endpoint."))
    version = models.CharField(max_length=10, blank=True, help_text=_("Negotiated OCPI version."))
    endpoints = models.JSONField(
        default=list, blank=True, help_text=_("Their 2.2.1 endpoints (identifier, role, url).")
    )
    token_style = models.CharField(max_length=5, choices=TokenStyle.choices, default=TokenStyle.OCPI_221)
    # the token they call us with: only its hash (see the module docstring)
    our_token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    our_token_hint = models.CharField(max_length=8, blank=True, editable=False)
    our_token_kind = models.CharField(max_length=1, choices=TokenKind.choices, blank=True, editable=False)
    # the token we call them with
    their_token = models.CharField(max_length=64, blank=True)
    their_token_kind = models.CharField(max_length=1, choices=TokenKind.choices, blank=True)
    enabled_modules = ArrayField(
        models.CharField(max_length=20, choices=Module.choices), default=default_modules, blank=True
    )
    status = models.CharField(max_length=10, choices=PartnerStatus.choices, default=PartnerStatus.PENDING)
    # OCPI tariffs Sender: the tariffs this partner sees; none chosen = the tenant's public tariffs (on the network)
    tariffs = models.ManyToManyField(
        "tariffs.Tariff",
        blank=True,
        related_name="+",
        help_text=_("Tariffs shown to this partner (OCPI tariffs module); empty: the tenant's public tariffs."),
    )
    last_handshake_at = models.DateTimeField(null=True, blank=True)
    # per module: {"credentials": {"at": "...Z", "message": "..."}}
    last_errors = models.JSONField(default=dict, blank=True)
    # per module: {"locations": {"at": "...Z", "object": "evse:12"}}: the last push the partner accepted
    last_pushes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "country_code", "party_id"], name="roamingpartner_unique_party_per_tenant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.party})"

    @property
    def party(self) -> str:
        """ "DE*ABC": the form `charging.ChargingSession.roaming_partner` and the exports use."""
        return f"{self.country_code}*{self.party_id}"

    @property
    def their_token_masked(self) -> str:
        return mask(self.their_token)

    def endpoint_url(self, identifier: str, role: str | None = None) -> str | None:
        for endpoint in self.endpoints or []:
            if endpoint.get("identifier") == identifier and (role is None or endpoint.get("role") == role):
                return str(endpoint.get("url"))
        return None


def mask(token: str) -> str:
    if not token:
        return ""
    return token[:4] + "…" if len(token) > 8 else "…"


class PushState(models.Model):
    """One object we push to one partner (OCPI Sender pushes): `version` counts the changes, `pushed_version` the
    last one the partner acknowledged. A change only bumps `version`; the pusher sends the object's *current* state,
    so a partner that was down for hours gets each changed object once (coalesced), not every intermediate state."""

    partner = models.ForeignKey(RoamingPartner, on_delete=models.CASCADE, related_name="push_states")
    module = models.CharField(max_length=20, choices=Module.choices)
    object_key = models.CharField(max_length=64, help_text=_("e.g. evse:123"))
    version = models.PositiveIntegerField(default=1)
    pushed_version = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    changed_at = models.DateTimeField(auto_now=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    remote_url = models.URLField(
        max_length=255,
        blank=True,
        default="",
        help_text=_("Where the partner keeps it (a POSTed CDR's Location header)."),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "module", "object_key"], name="pushstate_unique_object"),
        ]
        indexes = [
            models.Index(
                fields=["partner", "id"],
                name="pushstate_pending",
                condition=models.Q(version__gt=models.F("pushed_version")),
            )
        ]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.module} {self.object_key} v{self.version}/{self.pushed_version}"


# --------------------------------------------------------------------------- CPO Receiver modules (tokens, commands)


class PartnerToken(TimeStampedModel):
    """A token an eMSP partner pushed to us (tokens module, Receiver interface). The token itself is a `customers`
    Token row (source roaming, the partner's country code and party id), so authorization, the local list,
    sessions and exports use it like any other; this row keeps which partner pushed it and the `last_updated`
    it gave (the partner owns the object: a GET answers it as they sent it)."""

    partner = models.ForeignKey(RoamingPartner, on_delete=models.CASCADE, related_name="pushed_tokens")
    token = models.OneToOneField("customers.Token", on_delete=models.CASCADE, related_name="roaming_push")
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.token_id} from {self.partner_id}"


class CommandType(models.TextChoices):
    """OCPI 2.2.1 CommandType (mod_commands.asciidoc)."""

    CANCEL_RESERVATION = "CANCEL_RESERVATION"
    RESERVE_NOW = "RESERVE_NOW"
    START_SESSION = "START_SESSION"
    STOP_SESSION = "STOP_SESSION"
    UNLOCK_CONNECTOR = "UNLOCK_CONNECTOR"


class RoamingCommand(TimeStampedModel):
    """A command a partner sent us (commands or chargingprofiles module, Receiver): what they asked, the OCPP
    command it became (`stations.Command`), and the result we POSTed (or are POSTing) to their `response_url`."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued (the charger is being asked)"
        ANSWERED = "answered", "Result known, not yet delivered to the partner"
        DELIVERED = "delivered", "Result delivered to the partner"
        UNDELIVERED = "undelivered", "The partner never took the result"

    partner = models.ForeignKey(RoamingPartner, on_delete=models.CASCADE, related_name="commands")
    module = models.CharField(max_length=20, default="commands")  # commands | chargingprofiles
    command = models.CharField(max_length=30)  # a CommandType, or SET/GET/CLEAR for charging profiles
    request = models.JSONField(default=dict, help_text=_("The partner's request body, as sent."))
    target = models.JSONField(default=dict, blank=True, help_text=_("What the request resolved to (EVSE, dates, ids)."))
    response_url = models.URLField(max_length=255)
    charge_point = models.ForeignKey(
        "stations.ChargePoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    session_id = models.BigIntegerField(null=True, blank=True)
    ocpp_command_id = models.BigIntegerField(null=True, blank=True, help_text=_("The stations.Command sent."))
    timeout_s = models.PositiveIntegerField(default=30)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    result = models.JSONField(null=True, blank=True, help_text=_("The CommandResult (or profile result) for them."))
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.command} from {self.partner_id} ({self.state})"


class PartnerReservation(TimeStampedModel):
    """A partner's reservation id (RESERVE_NOW) and the reservation id our charger got: the spec forbids sending
    theirs to the charger, and one partner may not cancel another's."""

    partner = models.ForeignKey(RoamingPartner, on_delete=models.CASCADE, related_name="reservations")
    their_reservation_id = models.CharField(max_length=36)
    charge_point = models.ForeignKey("stations.ChargePoint", on_delete=models.PROTECT, related_name="+")
    reservation = models.OneToOneField("charging.Reservation", on_delete=models.PROTECT, related_name="roaming")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "charge_point", "their_reservation_id"], name="partnerreservation_unique_per_cp"
            )
        ]

    def __str__(self) -> str:
        return f"{self.their_reservation_id} → {self.reservation_id}"


# --------------------------------------------------------------------------- eMSP commands Sender (our drivers)


class EmspCommand(TimeStampedModel):
    """A command we sent a CPO partner for one of our drivers (commands module, we are Sender; mod_commands): the
    body we POSTed, the CPO's synchronous CommandResponse and the asynchronous CommandResult it POSTed to our
    `response_url` (`/ocpi/emsp/2.2.1/commands/{command}/{uid}`). What it means for the driver is the state of its
    `charging.PartnerSession` (apps/roaming/ocpi/emsp_commands.py maps results to states)."""

    class State(models.TextChoices):
        SENDING = "sending", _("Being sent to the operator")
        PENDING = "pending", _("Accepted by the operator, waiting for the charger's result")
        DONE = "done", _("Result known")

    partner = models.ForeignKey(RoamingPartner, on_delete=models.PROTECT, related_name="sent_commands")
    session = models.ForeignKey("charging.PartnerSession", on_delete=models.PROTECT, related_name="commands")
    uid = models.CharField(max_length=36, unique=True, help_text=_("The last segment of our response_url."))
    command = models.CharField(max_length=20, choices=CommandType.choices)
    request = models.JSONField(default=dict, help_text=_("The body we sent, response_url included."))
    state = models.CharField(max_length=8, choices=State.choices, default=State.SENDING)
    response = models.JSONField(null=True, blank=True, help_text=_("The CPO's CommandResponse, as answered."))
    result = models.CharField(
        max_length=20,
        blank=True,
        default="",
        help_text=_("The outcome: a CommandResponseType or CommandResultType, or ERROR when the call failed."),
    )
    message = models.CharField(max_length=512, blank=True, default="", help_text=_("The CPO's message, if any."))
    result_body = models.JSONField(null=True, blank=True, help_text=_("The CPO's CommandResult, as received."))
    deadline = models.DateTimeField(help_text=_("No result by then: TIMEOUT."))
    previous_state = models.CharField(
        max_length=16, blank=True, default="", help_text=_("The session's state before this command.")
    )

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["deadline"], name="emspcommand_open", condition=~models.Q(state="done")),
        ]

    def __str__(self) -> str:
        return f"{self.command} {self.uid} ({self.state})"


class PullState(models.Model):
    """Pulling a CPO partner's Sender of one module (we are eMSP: locations, tariffs, sessions, cdrs): the `date_from`
    of the next incremental pull (`synced_from`: when the last successful pull started, less an overlap for clock
    skew), and when the partner last pushed to our Receiver of the module (a partner that pushes is not pulled on
    the schedule; a full resync pulls it anyway)."""

    partner = models.ForeignKey(RoamingPartner, on_delete=models.CASCADE, related_name="pull_states")
    module = models.CharField(max_length=20, choices=Module.choices)
    synced_from = models.DateTimeField(null=True, blank=True, help_text=_("date_from of the next pull."))
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_push_at = models.DateTimeField(null=True, blank=True, help_text=_("The partner's last push to us."))
    last_count = models.PositiveIntegerField(default=0, help_text=_("Objects received by the last pull."))
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["partner", "module"], name="pullstate_unique_module")]

    def __str__(self) -> str:
        return f"{self.partner_id} {self.module}"


class ConnectionStatus(models.TextChoices):
    """OCPI 2.2.1 ConnectionStatus (mod_hub_client_info)."""

    CONNECTED = "CONNECTED", _("Connected")
    OFFLINE = "OFFLINE", _("Offline")
    PLANNED = "PLANNED", _("Planned")
    SUSPENDED = "SUSPENDED", _("Suspended")


class HubClientInfo(TimeStampedModel):
    """A party behind a hub partner, as the hub tells us (OCPI hubclientinfo Receiver: ClientInfo objects). Objects
    the hub relays from these parties (routing headers OCPI-from-*) are taken as from the hub itself."""

    partner = models.ForeignKey(RoamingPartner, on_delete=models.CASCADE, related_name="hub_clients")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    role = models.CharField(max_length=5, choices=Role.choices)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices)
    data = models.JSONField(default=dict, help_text=_("The ClientInfo object as last received."))
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ["partner_id", "country_code", "party_id"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "country_code", "party_id"], name="hubclientinfo_unique_party")
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} ({self.role}, {self.status})"


# --------------------------------------------------------------------------- eMSP tokens Sender (authorization)


class EmspAuthorization(TenantOwned):
    """A CPO partner's real-time authorization request for one of our tenant's tokens (mod_tokens POST authorize)
    and our answer. `authorization_reference` (given when ALLOWED, unique per tenant) is what the CPO echoes in the
    session and CDR it sends us, so they can be matched to this decision, its token and its location."""

    partner = models.ForeignKey(RoamingPartner, on_delete=models.PROTECT, related_name="authorizations")
    token = models.ForeignKey("customers.Token", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    allowed = models.CharField(max_length=12, help_text=_("OCPI AllowedType answered."))
    reason = models.CharField(max_length=40, help_text=_("Our authorization reason (customers Reason)."))
    authorization_reference = models.CharField(max_length=36, blank=True, default="")
    location_id = models.CharField(max_length=36, blank=True, default="", help_text=_("The CPO's location id."))
    evse_uids = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("real-time authorization")
        verbose_name_plural = _("real-time authorizations")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "authorization_reference"],
                condition=~models.Q(authorization_reference=""),
                name="emspauthorization_unique_reference",
            )
        ]

    def __str__(self) -> str:
        return f"{self.token_id} at {self.partner_id}: {self.allowed}"


# --------------------------------------------------------------------------- OICP 2.3 (Hubject): the connection


class OicpEnvironment(models.TextChoices):
    QA = "qa", _("Hubject QA")
    PRODUCTION = "production", _("Hubject production")
    CUSTOM = "custom", _("Other URL (a local Hubject)")


OICP_BASE_URLS = {
    OicpEnvironment.QA: "https://service-qa.hubject.com/api/oicp",
    OicpEnvironment.PRODUCTION: "https://service.hubject.com/api/oicp",
}


class OicpOperation(models.TextChoices):
    """The OICP 2.3 operations we call at Hubject (the OpenAPI files' operationIds without version)."""

    PUSH_EVSE_DATA = "PushEvseData", "PushEvseData (CPO)"
    PUSH_EVSE_STATUS = "PushEvseStatus", "PushEvseStatus (CPO)"
    AUTHORIZE_START = "AuthorizeStart", "AuthorizeStart (CPO)"
    AUTHORIZE_STOP = "AuthorizeStop", "AuthorizeStop (CPO)"
    CHARGE_DETAIL_RECORD = "ChargeDetailRecord", "ChargeDetailRecord (CPO)"
    CHARGING_NOTIFICATIONS = "ChargingNotifications", "ChargingNotifications (CPO)"
    PUSH_PRICING_PRODUCT_DATA = "PushPricingProductData", "PushPricingProductData (CPO)"
    PUSH_EVSE_PRICING = "PushEVSEPricing", "PushEVSEPricing (CPO)"
    PULL_EVSE_DATA = "PullEvseData", "PullEvseData (EMP)"
    PULL_EVSE_STATUS = "PullEvseStatus", "PullEvseStatus (EMP)"
    AUTHORIZE_REMOTE_START = "AuthorizeRemoteStart", "AuthorizeRemoteStart (EMP)"
    AUTHORIZE_REMOTE_STOP = "AuthorizeRemoteStop", "AuthorizeRemoteStop (EMP)"
    PUSH_AUTHENTICATION_DATA = "PushAuthenticationData", "PushAuthenticationData (EMP)"
    GET_CHARGE_DETAIL_RECORDS = "GetChargeDetailRecords", "GetChargeDetailRecords (EMP)"
    AUTHORIZE_REMOTE_RESERVATION_START = "AuthorizeRemoteReservationStart", "AuthorizeRemoteReservationStart (EMP)"
    AUTHORIZE_REMOTE_RESERVATION_STOP = "AuthorizeRemoteReservationStop", "AuthorizeRemoteReservationStop (EMP)"


# the role each operation is called in: the OpenAPI file its bodies are checked against
_EMP_OPERATIONS = {"PullEvseData", "PullEvseStatus", "AuthorizeRemoteStart", "AuthorizeRemoteStop"}
_EMP_OPERATIONS |= {"PushAuthenticationData", "GetChargeDetailRecords"}
_EMP_OPERATIONS |= {"AuthorizeRemoteReservationStart", "AuthorizeRemoteReservationStop"}
OICP_OPERATION_SIDE: dict[str, Literal["cpo", "emp"]] = {
    op.value: ("emp" if op.value in _EMP_OPERATIONS else "cpo") for op in OicpOperation
}


def default_oicp_operations() -> list[str]:
    return [op.value for op in OicpOperation]


class OicpConnection(TenantOwned, TimeStampedModel):
    """A tenant's connection to Hubject (OICP 2.3): who we are there (OperatorID as CPO, ProviderID as EMP), the
    client certificate Hubject knows us by (mutual TLS; its private key stored encrypted, never shown), where
    Hubject is, and which operations we call. Its partner row (`partner`) is what partner data points at."""

    partner = models.OneToOneField(RoamingPartner, on_delete=models.CASCADE, related_name="oicp_connection")
    environment = models.CharField(max_length=10, choices=OicpEnvironment.choices, default=OicpEnvironment.QA)
    base_url = models.URLField(
        max_length=255, help_text=_("Hubject's OICP base URL, e.g. https://service-qa.hubject.com/api/oicp.")
    )
    operator_id = models.CharField(
        max_length=7, blank=True, validators=[oicp_operator_id], help_text=_("Our OperatorID (CPO), e.g. DE*VLT.")
    )
    provider_id = models.CharField(
        max_length=7, blank=True, validators=[oicp_provider_id], help_text=_("Our ProviderID (EMP), e.g. DE-VLT.")
    )
    hotline_phone_number = models.CharField(
        max_length=16,
        blank=True,
        validators=[RegexValidator(r"^\+[0-9]{5,15}$", _("An international number: + and 5 to 15 digits."))],
        help_text=_("The drivers' hotline at our EVSEs, as Hubject wants it (+4930123456); needed to push EVSE data."),
    )
    client_certificate = models.TextField(help_text=_("Our client certificate (PEM), as Hubject issued or signed it."))
    client_key_encrypted = models.TextField(editable=False)
    certificate_subject = models.CharField(max_length=255, blank=True, editable=False)
    certificate_not_after = models.DateTimeField(null=True, blank=True, editable=False)
    server_ca = models.TextField(
        _("server CA"),
        blank=True,
        help_text=_("CA certificates (PEM) that Hubject's server certificate is checked against; empty: the system's."),
    )
    enabled = models.BooleanField(default=True)
    enabled_operations = ArrayField(
        models.CharField(max_length=40, choices=OicpOperation.choices), default=default_oicp_operations, blank=True
    )
    evse_data_pulled_at = models.DateTimeField(
        _("EVSE data pulled at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("When our last PullEvseData began (EMP): the next pull asks only for what changed since."),
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("Hubject (OICP) connection")
        verbose_name_plural = _("Hubject (OICP) connections")

    def __str__(self) -> str:
        return f"{self.partner.name} ({self.get_environment_display()})"


class OicpOperationState(models.Model):
    """The last call of one operation on one connection: when, what Hubject answered, the last error."""

    class Outcome(models.TextChoices):
        OK = "ok", _("Accepted")
        REFUSED = "refused", _("Refused by Hubject")
        FAILED = "failed", _("Failed (network, TLS, HTTP or an invalid answer)")

    connection = models.ForeignKey(OicpConnection, on_delete=models.CASCADE, related_name="operation_states")
    operation = models.CharField(max_length=40, choices=OicpOperation.choices)
    calls = models.PositiveIntegerField(default=0)
    last_call_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True)
    last_status_code = models.CharField(max_length=3, blank=True, help_text=_("OICP StatusCode.Code"))
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connection_id", "operation"]
        verbose_name = _("OICP operation state")
        verbose_name_plural = _("OICP operation states")
        constraints = [
            models.UniqueConstraint(fields=["connection", "operation"], name="oicpoperationstate_unique_operation")
        ]

    def __str__(self) -> str:
        return f"{self.operation}: {self.last_outcome or '-'}"


class OicpEvseState(models.Model):
    """One of our EVSEs as Hubject holds it (PushEvseData, we are CPO): the EvseID it knows and the record it last
    acknowledged, so that a sync sends only inserts, updates and deletes (`apps/roaming/oicp/cpo_push.py`); a delete
    sends the record Hubject has."""

    connection = models.ForeignKey(OicpConnection, on_delete=models.CASCADE, related_name="evse_states")
    evse_id = models.CharField(_("EvseID"), max_length=48)
    evse_pk = models.BigIntegerField(help_text=_("stations.Evse (not a key: the row may be gone, Hubject's stays)"))
    record = models.JSONField(help_text=_("The EvseDataRecord Hubject acknowledged."))
    pushed_at = models.DateTimeField()

    class Meta:
        ordering = ["connection_id", "evse_id"]
        verbose_name = _("EVSE at Hubject")
        verbose_name_plural = _("EVSEs at Hubject")
        constraints = [models.UniqueConstraint(fields=["connection", "evse_id"], name="oicpevsestate_unique_evse")]

    def __str__(self) -> str:
        return self.evse_id


class OicpAuthenticationState(models.Model):
    """One of our tokens as Hubject holds it (PushAuthenticationData, we are an offline-authorizing EMP): the
    AuthenticationDataRecord it last acknowledged, so that a sync sends only inserts, updates and deletes
    (`apps/roaming/oicp/emp_auth.py`); a delete sends the record Hubject has."""

    connection = models.ForeignKey(OicpConnection, on_delete=models.CASCADE, related_name="authentication_states")
    token_pk = models.BigIntegerField(help_text=_("customers.Token (not a key: the row may be gone, Hubject's stays)"))
    record = models.JSONField(help_text=_("The AuthenticationDataRecord Hubject acknowledged."))
    pushed_at = models.DateTimeField()

    class Meta:
        ordering = ["connection_id", "token_pk"]
        verbose_name = _("token at Hubject")
        verbose_name_plural = _("tokens at Hubject")
        constraints = [
            models.UniqueConstraint(fields=["connection", "token_pk"], name="oicpauthenticationstate_unique_token")
        ]

    def __str__(self) -> str:
        return str(self.token_pk)
