"""Drivers, business customers and contracts, tokens, vehicles (layer 2).

Tokens follow the OCPI 2.2.1 Token object (mod_tokens): `uid` is the token's identity (OCPI allows 36 characters),
`wire_id` what a charger sends as the OCPP idTag (OCPP 1.6 allows 20): the uid itself when it fits, else a short id
derived from it. `group_id` is the OCPP parentIdTag (sent in its wire form, `wire_id_for`). Uids and wire ids are
unique per tenant regardless of letter case, because chargers differ in how they print an RFID uid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import MD5, Concat, Length, Lower, Substr, Upper
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from apps.core.models import TimeStampedModel
from apps.tenants.models import TenantOwned, country_code

language_code = RegexValidator(r"^[a-z]{2}$", "Use an ISO 639-1 language code such as de.")
vin_validator = RegexValidator(r"^[A-HJ-NPR-Z0-9]{17}$", "A VIN has 17 characters (digits and capitals, no I, O, Q).")
token_uid_validator = RegexValidator(
    r"^[!-~]+$", "Use printable ASCII characters without spaces (OCPI CiString, OCPP idTag)."
)
party_id_validator = RegexValidator(r"^[A-Z0-9]{3}$", "Use a 3-character OCPI party id such as TNM.")


# OCPP 1.6 idTag / parentIdTag: CiString20Type
WIRE_ID_LENGTH = 20
WIRE_ID_PREFIX = "X"  # not a hex digit: a derived wire id never equals a hex-printed RFID uid


def wire_id_for(value: str) -> str:
    """The OCPP idTag of a token uid (or parentIdTag of a group id): the value itself when it fits in 20
    characters, else "X" and 19 hex digits of the MD5 of its lower-case form (stable, printable, case-blind).

    The database computes the same for `Token.wire_id` (`WIRE_ID_SQL`); both must stay equal."""
    if len(value) <= WIRE_ID_LENGTH:
        return value
    digest = hashlib.md5(value.lower().encode(), usedforsecurity=False).hexdigest()
    return WIRE_ID_PREFIX + digest[: WIRE_ID_LENGTH - len(WIRE_ID_PREFIX)].upper()


WIRE_ID_SQL = Case(
    When(LessThanOrEqual(Length("uid"), WIRE_ID_LENGTH), then=F("uid")),
    default=Concat(
        Value(WIRE_ID_PREFIX),
        Upper(Substr(MD5(Lower("uid")), 1, WIRE_ID_LENGTH - len(WIRE_ID_PREFIX))),
        output_field=models.CharField(max_length=WIRE_ID_LENGTH),
    ),
    output_field=models.CharField(max_length=WIRE_ID_LENGTH),
)


class TokenType(models.TextChoices):
    AD_HOC_USER = "AD_HOC_USER", _("Ad hoc user")
    APP_USER = "APP_USER", _("App user")
    OTHER = "OTHER", _("Other")
    RFID = "RFID", _("RFID")


class WhitelistType(models.TextChoices):
    ALWAYS = "ALWAYS", _("Always (no real-time authorization)")
    ALLOWED = "ALLOWED", _("Allowed")
    ALLOWED_OFFLINE = "ALLOWED_OFFLINE", _("Allowed when offline")
    NEVER = "NEVER", _("Never (real-time authorization only)")


# whitelist types that allow a charger to accept the token from its local list
LOCAL_WHITELIST_TYPES = (WhitelistType.ALWAYS, WhitelistType.ALLOWED, WhitelistType.ALLOWED_OFFLINE)


class ProfileType(models.TextChoices):
    CHEAP = "CHEAP", _("Cheap")
    FAST = "FAST", _("Fast")
    GREEN = "GREEN", _("Green")
    REGULAR = "REGULAR", _("Regular")


class TokenSource(models.TextChoices):
    LOCAL = "local", _("Issued by this tenant")
    ROAMING = "roaming", _("Cached from a roaming partner")


class ConnectorStandard(models.TextChoices):
    """OCPI 2.2.1 ConnectorType (mod_locations)."""

    CHADEMO = "CHADEMO", _("CHAdeMO")
    CHAOJI = "CHAOJI", _("ChaoJi")
    DOMESTIC_A = "DOMESTIC_A", _("Domestic type A")
    DOMESTIC_B = "DOMESTIC_B", _("Domestic type B")
    DOMESTIC_C = "DOMESTIC_C", _("Domestic type C")
    DOMESTIC_D = "DOMESTIC_D", _("Domestic type D")
    DOMESTIC_E = "DOMESTIC_E", _("Domestic type E")
    DOMESTIC_F = "DOMESTIC_F", _("Domestic type F (Schuko)")
    DOMESTIC_G = "DOMESTIC_G", _("Domestic type G")
    DOMESTIC_H = "DOMESTIC_H", _("Domestic type H")
    DOMESTIC_I = "DOMESTIC_I", _("Domestic type I")
    DOMESTIC_J = "DOMESTIC_J", _("Domestic type J")
    DOMESTIC_K = "DOMESTIC_K", _("Domestic type K")
    DOMESTIC_L = "DOMESTIC_L", _("Domestic type L")
    DOMESTIC_M = "DOMESTIC_M", _("Domestic type M")
    DOMESTIC_N = "DOMESTIC_N", _("Domestic type N")
    DOMESTIC_O = "DOMESTIC_O", _("Domestic type O")
    GBT_AC = "GBT_AC", _("GB/T AC")
    GBT_DC = "GBT_DC", _("GB/T DC")
    IEC_60309_2_SINGLE_16 = "IEC_60309_2_single_16", _("IEC 60309-2 single phase 16 A")
    IEC_60309_2_THREE_16 = "IEC_60309_2_three_16", _("IEC 60309-2 three phases 16 A")
    IEC_60309_2_THREE_32 = "IEC_60309_2_three_32", _("IEC 60309-2 three phases 32 A")
    IEC_60309_2_THREE_64 = "IEC_60309_2_three_64", _("IEC 60309-2 three phases 64 A")
    IEC_62196_T1 = "IEC_62196_T1", _("Type 1 (SAE J1772)")
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO", _("CCS Combo 1")
    IEC_62196_T2 = "IEC_62196_T2", _("Type 2 (Mennekes)")
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO", _("CCS Combo 2")
    IEC_62196_T3A = "IEC_62196_T3A", _("Type 3A")
    IEC_62196_T3C = "IEC_62196_T3C", _("Type 3C (Scame)")
    NEMA_5_20 = "NEMA_5_20", _("NEMA 5-20")
    NEMA_6_30 = "NEMA_6_30", _("NEMA 6-30")
    NEMA_6_50 = "NEMA_6_50", _("NEMA 6-50")
    NEMA_10_30 = "NEMA_10_30", _("NEMA 10-30")
    NEMA_10_50 = "NEMA_10_50", _("NEMA 10-50")
    NEMA_14_30 = "NEMA_14_30", _("NEMA 14-30")
    NEMA_14_50 = "NEMA_14_50", _("NEMA 14-50")
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP", _("Pantograph bottom-up")
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN", _("Pantograph top-down")
    TESLA_R = "TESLA_R", _("Tesla Roadster")
    TESLA_S = "TESLA_S", _("Tesla Model S")


class PaymentMethod(models.TextChoices):
    """Placeholder until billing brings real payment methods."""

    INVOICE = "invoice", _("Invoice (bank transfer)")
    SEPA_DIRECT_DEBIT = "sepa_direct_debit", _("SEPA direct debit")
    CARD = "card", _("Card")


class LimitAction(models.TextChoices):
    STOP = "stop", _("Stop the session (RemoteStopTransaction)")
    ZERO_CURRENT = "zero_current", _("Hold at 0 A (TxProfile), session stays open")


def _check_same_tenant(obj: models.Model, *fk_names: str) -> None:
    """Every related row must belong to the same tenant as `obj` (admin forms and services call `clean`)."""
    errors: dict[str, str] = {}
    tenant_id = obj.tenant_id  # type: ignore[attr-defined]
    for name in fk_names:
        related = getattr(obj, name, None)
        if related is not None and tenant_id is not None and related.tenant_id != tenant_id:
            errors[name] = "Belongs to another tenant."
    if errors:
        raise ValidationError(errors)


# --------------------------------------------------------------------------- time windows

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_WINDOW_KEYS = {"days_of_week", "start_time", "end_time"}


def parse_hhmm(value: str) -> dt.time:
    match = _TIME.match(value)
    if match is None:
        raise ValueError(value)
    return dt.time(int(match.group(1)), int(match.group(2)))


def validate_time_windows(value: Any) -> None:
    """A list of {"days_of_week": [1..7 ISO, Monday=1], "start_time": "HH:MM", "end_time": "HH:MM"}.

    A window whose end is before its start crosses midnight and ends on the next day; the day of week
    names the day it starts. An empty list means "any time".
    """
    if not isinstance(value, list):
        raise ValidationError("Time windows must be a list.")
    problems: list[str] = []
    for index, window in enumerate(value):
        where = f"Window {index + 1}"
        if not isinstance(window, dict):
            problems.append(f"{where}: must be an object.")
            continue
        keys = set(window)
        if keys != _WINDOW_KEYS:
            missing, unknown = sorted(_WINDOW_KEYS - keys), sorted(keys - _WINDOW_KEYS)
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}.")
            if unknown:
                problems.append(f"{where}: unknown {', '.join(unknown)}.")
            continue
        days = window["days_of_week"]
        if (
            not isinstance(days, list)
            or not days
            or any(type(day) is not int or not 1 <= day <= 7 for day in days)
            or len(set(days)) != len(days)
        ):
            problems.append(f"{where}: days_of_week must be a non-empty list of distinct days 1 (Monday) to 7.")
        times: list[dt.time] = []
        for key in ("start_time", "end_time"):
            raw = window[key]
            try:
                times.append(parse_hhmm(raw) if isinstance(raw, str) else parse_hhmm(""))
            except ValueError:
                problems.append(f"{where}: {key} must be HH:MM (00:00 to 23:59).")
        if len(times) == 2 and times[0] == times[1]:
            problems.append(f"{where}: start_time and end_time must differ.")
    if problems:
        raise ValidationError(problems)


# --------------------------------------------------------------------------- models


class BusinessCustomer(TenantOwned, TimeStampedModel):
    """A fleet or company whose drivers charge on its account."""

    name = models.CharField(max_length=200)
    legal_name = models.CharField(max_length=200, blank=True)
    vat_id = models.CharField("VAT id", max_length=30, blank=True)
    registration_number = models.CharField(max_length=50, blank=True, help_text=_("Commercial register number."))
    billing_email = models.EmailField(blank=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        choices=settings.LANGUAGES,
        blank=True,
        db_default="",  # rows written by SQL (bulk loads, benchmarks) and by the code before this column
        help_text=_("Language of this customer's invoices and e-mails; empty: the tenant's default."),
    )
    billing_address_line = models.CharField(max_length=200, blank=True)
    billing_postal_code = models.CharField(max_length=20, blank=True)
    billing_city = models.CharField(max_length=100, blank=True)
    billing_country = models.CharField(max_length=2, blank=True, validators=[country_code])
    payment_method = models.CharField(max_length=30, choices=PaymentMethod.choices, default=PaymentMethod.INVOICE)
    payment_reference = models.CharField(
        max_length=100, blank=True, help_text=_("Placeholder: mandate id or payment provider reference.")
    )
    is_active = models.BooleanField(default=True)
    credit_blocked = models.BooleanField(
        _("no credit"),
        default=False,
        db_default=False,
        help_text=_(
            "The account has no credit (unpaid invoices, a failed payment): its tokens are refused (OCPP Blocked, "
            "OCPI NO_CREDIT) until this is cleared."
        ),
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="businesscustomer_unique_name_per_tenant",
                violation_error_message="A business customer with this name exists.",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Driver(TenantOwned, TimeStampedModel):
    """A tenant's end user: charges with tokens, owns vehicles, may drive for a business customer."""

    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=30, blank=True)
    language = models.CharField(
        _("language"),
        max_length=2,
        blank=True,
        validators=[language_code],
        help_text=_("Language of this driver's receipts and e-mails (ISO 639-1); empty: the tenant's default."),
    )
    address_line = models.CharField(max_length=200, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, validators=[country_code])
    is_active = models.BooleanField(default=True)
    credit_blocked = models.BooleanField(
        _("no credit"),
        default=False,
        db_default=False,
        help_text=_(
            "The driver's account has no credit (unpaid receipts, a failed payment): its tokens are refused (OCPP "
            "Blocked, OCPI NO_CREDIT) until this is cleared."
        ),
    )
    business_customer = models.ForeignKey(
        BusinessCustomer, null=True, blank=True, on_delete=models.PROTECT, related_name="drivers"
    )

    class Meta:
        ordering = ["last_name", "first_name", "pk"]
        constraints = [
            models.UniqueConstraint(
                F("tenant"),
                Lower("email"),
                condition=~Q(email=""),
                name="driver_unique_email_per_tenant",
                violation_error_message="A driver with this e-mail exists.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def clean(self) -> None:
        _check_same_tenant(self, "business_customer")


class Contract(TenantOwned, TimeStampedModel):
    """A business customer's charging contract: validity, priority, session limits and where/when it applies."""

    business_customer = models.ForeignKey(BusinessCustomer, on_delete=models.PROTECT, related_name="contracts")
    number = models.CharField(max_length=50)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True, help_text=_("Exclusive; empty means open-ended."))
    priority = models.SmallIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text=_("Higher wins when smart charging shares power."),
    )
    max_session_duration = models.DurationField(null=True, blank=True, help_text=_("E.g. 00:30:00 for 30 minutes."))
    max_session_energy_wh = models.PositiveIntegerField(null=True, blank=True)
    limit_action = models.CharField(max_length=20, choices=LimitAction.choices, default=LimitAction.STOP)
    allowed_locations = models.ManyToManyField(
        "stations.Location",
        blank=True,
        related_name="+",
        help_text=_("Where the contract's tokens may charge; none means every location."),
    )
    time_windows = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_time_windows],
        help_text=_(
            'When charging is allowed, in local time: [{"days_of_week": [1, 2, 3, 4, 5], "start_time": "07:00", '
            '"end_time": "19:00"}]. Monday is 1. An end before the start crosses midnight. Empty: any time.'
        ),
    )

    class Meta:
        ordering = ["business_customer_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "number"],
                name="contract_unique_number_per_tenant",
                violation_error_message="A contract with this number exists.",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="contract_valid_until_after_from",
                violation_error_message="valid_until must be after valid_from.",
            ),
            models.CheckConstraint(
                condition=Q(max_session_duration__isnull=True) | Q(max_session_duration__gt=dt.timedelta(0)),
                name="contract_max_duration_positive",
                violation_error_message="max_session_duration must be positive.",
            ),
            models.CheckConstraint(
                condition=Q(max_session_energy_wh__isnull=True) | Q(max_session_energy_wh__gt=0),
                name="contract_max_energy_positive",
                violation_error_message="max_session_energy_wh must be positive.",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        _check_same_tenant(self, "business_customer")


class Token(TenantOwned, TimeStampedModel):
    """An OCPI 2.2.1 Token plus our links. `wire_id` is its OCPP idTag (the uid when it fits); `group_id` its
    parentIdTag (in its wire form)."""

    uid = models.CharField(
        max_length=36,
        validators=[token_uid_validator],
        help_text=_("The OCPI uid (RFID uid, app token id); the OCPP idTag when it fits in 20 characters."),
    )
    wire_id = models.GeneratedField(
        expression=WIRE_ID_SQL,
        output_field=models.CharField(max_length=WIRE_ID_LENGTH),
        db_persist=True,
        verbose_name=_("OCPP idTag"),
        help_text=_(
            "What chargers see (OCPP idTag, 20 characters at most): the uid when it fits, else derived from it."
        ),
    )
    type = models.CharField(max_length=20, choices=TokenType.choices, default=TokenType.RFID)
    contract_id = models.CharField("contract id (eMAID)", max_length=36, blank=True)
    visual_number = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=64, blank=True)
    group_id = models.CharField(
        max_length=36, blank=True, help_text=_("Groups tokens that work as one; sent to chargers as parentIdTag.")
    )
    valid = models.BooleanField(default=True)
    whitelist = models.CharField(max_length=20, choices=WhitelistType.choices, default=WhitelistType.ALLOWED)
    language = models.CharField(max_length=2, blank=True, validators=[language_code])
    default_profile_type = models.CharField(max_length=10, choices=ProfileType.choices, blank=True)
    energy_contract_supplier_name = models.CharField(max_length=64, blank=True)
    energy_contract_id = models.CharField(max_length=64, blank=True)
    # the owning eMSP (OCPI country_code/party_id); empty for our own tokens (the tenant's identity applies)
    country_code = models.CharField(max_length=2, blank=True, validators=[country_code])
    party_id = models.CharField(max_length=3, blank=True, validators=[party_id_validator])
    source = models.CharField(max_length=10, choices=TokenSource.choices, default=TokenSource.LOCAL)

    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="tokens")
    business_customer = models.ForeignKey(
        BusinessCustomer, null=True, blank=True, on_delete=models.PROTECT, related_name="tokens"
    )
    # named business_contract: `contract_id` is the OCPI eMAID field above
    business_contract = models.ForeignKey(
        Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="tokens"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    blocked = models.BooleanField(default=False, help_text=_("Blocked by the operator (lost card, unpaid bills)."))

    class Meta:
        ordering = ["uid"]
        constraints = [
            models.UniqueConstraint(
                F("tenant"),
                Lower("uid"),
                name="token_unique_uid_per_tenant",
                violation_error_code="uid_taken",
                violation_error_message="A token with this uid exists (uids are compared ignoring case).",
            ),
            models.UniqueConstraint(
                F("tenant"),
                Lower("wire_id"),
                name="token_unique_wire_id_per_tenant",
                violation_error_code="wire_id_taken",
                violation_error_message="This uid is the OCPP idTag of another token (compared ignoring case).",
            ),
            models.CheckConstraint(
                condition=~Q(uid=""), name="token_uid_not_empty", violation_error_message="uid is required."
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "group_id"], name="token_tenant_group"),
            # the OCPI tokens Sender's list: the tenant's own tokens by (last_updated, id)
            models.Index(
                fields=["tenant", "updated_at", "id"], condition=Q(source="local"), name="token_local_updated"
            ),
        ]

    def __str__(self) -> str:
        return self.uid

    def validate_constraints(self, exclude: Any = None) -> None:
        """A duplicate uid is reported once, not also as a duplicate wire id (a short uid is its own wire id)."""
        try:
            super().validate_constraints(exclude)
        except ValidationError as error:
            errors = error.update_error_dict({})
            found = errors.get(NON_FIELD_ERRORS, [])
            if any(getattr(e, "code", None) == "uid_taken" for e in found):
                errors[NON_FIELD_ERRORS] = [e for e in found if getattr(e, "code", None) != "wire_id_taken"]
            raise ValidationError(errors) from None

    def clean(self) -> None:
        _check_same_tenant(self, "driver", "business_customer", "business_contract")
        if (
            self.business_contract is not None
            and self.business_customer_id is not None
            and self.business_contract.business_customer_id != self.business_customer_id
        ):
            raise ValidationError({"business_contract": "The contract belongs to another business customer."})


class Vehicle(TenantOwned, TimeStampedModel):
    """An electric vehicle of a driver and/or a business customer's fleet."""

    driver = models.ForeignKey(Driver, null=True, blank=True, on_delete=models.PROTECT, related_name="vehicles")
    business_customer = models.ForeignKey(
        BusinessCustomer, null=True, blank=True, on_delete=models.PROTECT, related_name="vehicles"
    )
    make = models.CharField(max_length=50)
    model = models.CharField(max_length=100)
    battery_kwh = models.DecimalField(
        "battery (kWh)", max_digits=6, decimal_places=1, validators=[MinValueValidator(1)]
    )
    ac_phases = models.PositiveSmallIntegerField("AC phases", choices=[(1, "1"), (3, "3")], default=3)
    ac_max_current_a = models.PositiveSmallIntegerField(
        "AC max current (A)", validators=[MinValueValidator(6), MaxValueValidator(80)]
    )
    dc_max_power_w = models.PositiveIntegerField(
        "DC max power (W)", null=True, blank=True, help_text=_("Empty when the vehicle cannot charge DC.")
    )
    connector_types = ArrayField(
        models.CharField(max_length=30, choices=ConnectorStandard.choices),
        default=list,
        blank=True,
        help_text=_("OCPI connector standards the vehicle accepts."),
    )
    licence_plate = models.CharField(max_length=20, blank=True)
    vin = models.CharField("VIN", max_length=17, blank=True, validators=[vin_validator])

    class Meta:
        ordering = ["make", "model", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(driver__isnull=False) | Q(business_customer__isnull=False),
                name="vehicle_has_owner",
                violation_error_message="A vehicle belongs to a driver or a business customer.",
            ),
            models.CheckConstraint(
                condition=Q(dc_max_power_w__isnull=True) | Q(dc_max_power_w__gt=0),
                name="vehicle_dc_power_positive",
                violation_error_message="dc_max_power_w must be positive (leave it empty for AC-only vehicles).",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.make} {self.model}" + (f" ({self.licence_plate})" if self.licence_plate else "")

    def clean(self) -> None:
        _check_same_tenant(self, "driver", "business_customer")
