"""White-label operators (tenants), their staff and roles, and their API credentials.

A `User` is a person's own login (username, password, e-mail, name): it belongs to the person, not to any tenant.
A `Membership` is what a tenant grants that person (a role, and whether the access is on). Tenants reach people only
through invitations the person accepts (`Invitation`, see `apps.tenants.services`), never by naming a user.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.models import TimeStampedModel
from apps.tenants.scopes import scopes_cover, validate_scope

hex_colour = RegexValidator(r"^#[0-9A-Fa-f]{6}$", "Use a hex colour such as #0B5FFF.")
currency_code = RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 currency code such as EUR.")
country_code = RegexValidator(r"^[A-Z]{2}$", "Use an ISO 3166-1 alpha-2 country code such as DE.")
ocpi_party_id = RegexValidator(r"^[A-Z0-9]{3}$", "Use the 3-character OCPI party id, such as VLT.")
oicp_operator_id = RegexValidator(r"^[A-Za-z]{2}\*?[A-Za-z0-9]{3}$", "Use an OICP operator id such as DE*VLT.")
oicp_provider_id = RegexValidator(r"^[A-Za-z]{2}[*-]?[A-Za-z0-9]{3}$", "Use an OICP provider id such as DE-VLT.")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name such as Europe/Berlin.")


class Role(models.TextChoices):
    ADMIN = "admin", _("Tenant admin")
    OPERATIONS = "operations", _("Operations")
    FINANCE = "finance", _("Finance")
    READ_ONLY = "read_only", _("Read-only")


class Tenant(TimeStampedModel):
    """A company running its own charging network under its own brand on this platform."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    is_active = models.BooleanField(default=True)

    # branding
    logo = models.ImageField(upload_to="tenants/logos/", blank=True)
    primary_colour = models.CharField(max_length=7, default="#0B5FFF", validators=[hex_colour])
    secondary_colour = models.CharField(max_length=7, default="#111827", validators=[hex_colour])
    sender_email = models.EmailField(blank=True, help_text=_("From-address of e-mails sent under this brand."))

    # legal identity, printed on invoices
    legal_name = models.CharField(max_length=200, blank=True)
    address_line = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, default="DE", validators=[country_code])
    vat_id = models.CharField(max_length=30, blank=True)
    bank_name = models.CharField(max_length=100, blank=True)
    iban = models.CharField(max_length=34, blank=True)
    bic = models.CharField(max_length=11, blank=True)

    # money and time
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    timezone = models.CharField(max_length=64, default="Europe/Berlin", validators=[validate_timezone])
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=settings.LANGUAGES,
        default="en",
        db_default="en",  # rows written by SQL and by the code before this column
        help_text=_(
            "Default language of the console for this tenant's staff, and of documents and e-mails to customers "
            "and drivers who did not choose their own."
        ),
    )
    default_vat_rate = models.DecimalField(
        max_digits=5, decimal_places=2, default=19, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    parking_grace_minutes = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("Idle time before parking (idle) fees start, per idle stretch, for tariffs that set none."),
    )

    # roaming identities
    ocpi_country_code = models.CharField(max_length=2, blank=True, validators=[country_code])
    ocpi_party_id = models.CharField(max_length=3, blank=True, validators=[ocpi_party_id])
    oicp_operator_id = models.CharField(max_length=6, blank=True, validators=[oicp_operator_id])
    oicp_provider_id = models.CharField(max_length=6, blank=True, validators=[oicp_provider_id])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["ocpi_country_code", "ocpi_party_id"],
                condition=~Q(ocpi_party_id=""),
                name="tenant_unique_ocpi_party",
                violation_error_message="Another tenant already uses this OCPI country code and party id.",
            ),
            models.CheckConstraint(
                condition=Q(ocpi_party_id="") | ~Q(ocpi_country_code=""),
                name="tenant_ocpi_party_needs_country",
                violation_error_message="An OCPI party id needs an OCPI country code.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TenantOwned(models.Model):
    """Abstract base of every row that belongs to one tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")

    class Meta:
        abstract = True


class User(AbstractUser):
    """A staff user (operations, finance, tenant admins) or a platform superuser."""

    email = models.EmailField("email address", blank=True, db_index=True)
    oidc_subject = models.CharField(max_length=255, blank=True, default="", db_index=True)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class MembershipSource(models.TextChoices):
    INVITATION = "invitation", _("Accepted invitation")
    OIDC = "oidc", _("Identity provider (OIDC claims)")
    PLATFORM = "platform", _("Granted by the platform operator")


class Membership(TimeStampedModel):
    """A staff user's role in one tenant. A user may belong to several tenants; each tenant holds only its own row.

    Everything a tenant may change about one of its people lives here (role, access on/off), so no tenant ever
    writes the person's account, which other tenants' access depends on too."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.READ_ONLY)
    is_active = models.BooleanField(
        default=True, help_text=_("Access to this tenant; off suspends it here only, never the person's other tenants.")
    )
    source = models.CharField(
        max_length=20,
        choices=MembershipSource.choices,
        default=MembershipSource.PLATFORM,
        help_text=_("How the access was granted; OIDC logins re-sync only the memberships that came from claims."),
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.get_role_display()})"


class Invitation(TimeStampedModel):
    """A tenant's offer of a role to whoever reads the e-mail sent to `email`.

    The tenant learns nothing about the address (whether an account uses it, in which tenants) until the person
    accepts. Only a lookup key and a nonce are stored: the token in the e-mail is an HMAC over them with the
    server's secret key, so neither the database alone nor the tenant's staff can accept on the person's behalf."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.READ_ONLY)
    key = models.CharField(max_length=32, unique=True, editable=False)
    nonce = models.CharField(max_length=64, editable=False)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    invited_by_key = models.ForeignKey("ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "tenant",
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_tenant_and_email",
                violation_error_message="An open invitation for this address exists in this tenant.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} @ {self.tenant} ({self.get_role_display()})"

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_open(self) -> bool:
        return self.status == "pending"


class ApiKey(TimeStampedModel):
    """A per-tenant credential for white-label integrations. Only a hash of the secret is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=40, validators=[validate_scope]), default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("API key")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="apikey_unique_name_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def allows(self, area: str, write: bool) -> bool:
        return scopes_cover(self.scopes, f"{area}:{'write' if write else 'read'}")
