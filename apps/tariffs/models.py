"""OCPI tariffs, their assignment to the network, and business customers' contract price lists (layer 2).

Storage choice: a Tariff's scalar fields (currency, type, min/max price, validity, alt url) are columns, so
they can be filtered, constrained and indexed; its `elements` (TariffElement -> PriceComponent and
TariffRestrictions) are ONE validated JSON document on the row, in the OCPI 2.2.1 shape (numbers stored as
decimal strings so no float ever touches a price). Why not three tables:
- OCPI treats a tariff as one document: PUT replaces it whole and CDRs must reference exactly the version
  that priced them. A document is replaced atomically, snapshotted by copying, and compared by equality;
  an element/component/restriction tree in three tables needs delete-and-reinsert on every edit and three
  queries (or prefetches) to read.
- The order of elements is meaning ("the first element that matches wins"); in a list it cannot drift.
- Nobody queries "all components with step_size 900"; the pricing engine reads the whole tree anyway.
- One validator (`apps.tariffs.ocpi.validate_elements`) guards every way in: API, admin JSON editor, services.

`TariffAssignment` attaches a tariff to the tenant (its default), a location, a charge point or an EVSE;
`ContractPriceList` holds a business customer's negotiated prices.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import TimeStampedModel
from apps.tariffs.ocpi import validate_alt_text, validate_elements, validate_energy_mix
from apps.tenants.models import TenantOwned, currency_code


class TariffType(models.TextChoices):
    """OCPI 2.2.1 TariffType (mod_tariffs: PROFILE_CHEAP / PROFILE_FAST, as the spec and its examples spell them)."""

    AD_HOC_PAYMENT = "AD_HOC_PAYMENT", _("Ad hoc payment")
    PROFILE_CHEAP = "PROFILE_CHEAP", _("Charging preference: cheap")
    PROFILE_FAST = "PROFILE_FAST", _("Charging preference: fast")
    PROFILE_GREEN = "PROFILE_GREEN", _("Charging preference: green")
    REGULAR = "REGULAR", _("Regular")


def _money_field(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal(0))], **kwargs
    )


class Tariff(TenantOwned, TimeStampedModel):
    """An OCPI 2.2.1 Tariff owned by a tenant (the CPO). `updated_at` is OCPI's `last_updated`."""

    ocpi_id = models.CharField("OCPI id", max_length=36, help_text=_("OCPI Tariff.id, unique per tenant."))
    currency = models.CharField(max_length=3, validators=[currency_code])
    type = models.CharField(
        max_length=20, choices=TariffType.choices, blank=True, help_text=_("Empty: valid for all sessions.")
    )
    tariff_alt_text = models.JSONField(
        default=list, blank=True, validators=[validate_alt_text], help_text=_("OCPI DisplayText list.")
    )
    tariff_alt_url = models.URLField(max_length=255, blank=True)
    min_price_excl_vat = _money_field()
    min_price_incl_vat = _money_field()
    max_price_excl_vat = _money_field()
    max_price_incl_vat = _money_field()
    elements = models.JSONField(
        validators=[validate_elements], help_text=_("OCPI TariffElement list (validated; numbers as decimal strings).")
    )
    start_date_time = models.DateTimeField(null=True, blank=True)
    end_date_time = models.DateTimeField(null=True, blank=True)
    energy_mix = models.JSONField(
        null=True, blank=True, validators=[validate_energy_mix], help_text=_("OCPI EnergyMix, optional.")
    )
    # not OCPI: how long a car may stand idle (SuspendedEV, Finishing, no power drawn) before PARKING_TIME is billed
    parking_grace_minutes = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("Minutes of every idle stretch that are not billed as parking; empty: the tenant's default."),
    )

    class Meta:
        ordering = ["ocpi_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "ocpi_id"],
                name="tariff_unique_ocpi_id_per_tenant",
                violation_error_message="A tariff with this OCPI id exists.",
            ),
            models.CheckConstraint(
                condition=Q(end_date_time__isnull=True)
                | Q(start_date_time__isnull=True)
                | Q(end_date_time__gt=F("start_date_time")),
                name="tariff_end_after_start",
                violation_error_message="end_date_time must be after start_date_time.",
            ),
            models.CheckConstraint(
                condition=Q(min_price_incl_vat__isnull=True) | Q(min_price_excl_vat__isnull=False),
                name="tariff_min_price_needs_excl_vat",
                violation_error_message="min_price needs excl_vat.",
            ),
            models.CheckConstraint(
                condition=Q(max_price_incl_vat__isnull=True) | Q(max_price_excl_vat__isnull=False),
                name="tariff_max_price_needs_excl_vat",
                violation_error_message="max_price needs excl_vat.",
            ),
            models.CheckConstraint(
                condition=Q(min_price_excl_vat__isnull=True)
                | Q(max_price_excl_vat__isnull=True)
                | Q(min_price_excl_vat__lte=F("max_price_excl_vat")),
                name="tariff_min_price_not_above_max",
                violation_error_message="min_price must not exceed max_price.",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "type"], name="tariff_tenant_type")]

    def __str__(self) -> str:
        return f"{self.ocpi_id} ({self.currency})"

    @property
    def last_updated(self) -> Any:
        return self.updated_at

    @property
    def min_price(self) -> dict[str, Decimal] | None:
        return _price(self.min_price_excl_vat, self.min_price_incl_vat)

    @property
    def max_price(self) -> dict[str, Decimal] | None:
        return _price(self.max_price_excl_vat, self.max_price_incl_vat)


def _price(excl: Decimal | None, incl: Decimal | None) -> dict[str, Decimal] | None:
    """An OCPI Price object from two columns."""
    if excl is None:
        return None
    return {"excl_vat": excl} if incl is None else {"excl_vat": excl, "incl_vat": incl}


class TariffAssignment(TenantOwned, TimeStampedModel):
    """Attaches a tariff to the network. Precedence: EVSE > charge point > location > tenant default.

    At most one of `evse`, `charge_point`, `location` is set; none set makes the tenant's default.
    `ad_hoc` assignments price drivers without a contract (card terminal, QR code); the others price
    contract and roaming drivers. Several on one target: the one that became valid last wins.
    """

    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="assignments")
    location = models.ForeignKey(
        "stations.Location", null=True, blank=True, on_delete=models.CASCADE, related_name="tariff_assignments"
    )
    charge_point = models.ForeignKey(
        "stations.ChargePoint", null=True, blank=True, on_delete=models.CASCADE, related_name="tariff_assignments"
    )
    evse = models.ForeignKey(
        "stations.Evse", null=True, blank=True, on_delete=models.CASCADE, related_name="tariff_assignments"
    )
    ad_hoc = models.BooleanField(default=False, help_text=_("For drivers without a contract (ad hoc payment)."))
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True, help_text=_("Exclusive; empty means open-ended."))

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_from__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="tariffassignment_until_after_from",
                violation_error_message="valid_until must be after valid_from.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(location__isnull=True, charge_point__isnull=True)
                    | Q(location__isnull=True, evse__isnull=True)
                    | Q(charge_point__isnull=True, evse__isnull=True)
                ),
                name="tariffassignment_one_target",
                violation_error_message="Assign to one of EVSE, charge point or location (or none: tenant default).",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tariff} -> {self.target_label}"

    @property
    def level(self) -> int:
        """0 EVSE, 1 charge point, 2 location, 3 tenant default (lower wins)."""
        if self.evse_id is not None:
            return 0
        if self.charge_point_id is not None:
            return 1
        if self.location_id is not None:
            return 2
        return 3

    @property
    def target_label(self) -> str:
        names = ("EVSE", "charge point", "location", "tenant default")
        return names[self.level] + (" (ad hoc)" if self.ad_hoc else "")


class ContractPriceList(TenantOwned, TimeStampedModel):
    """A business customer's negotiated prices, applied on top of the site's tariff for its drivers.

    `energy_price_per_kwh` (when set) replaces the tariff's energy price; `discount_percent` lowers every
    other tariff price; `session_fee` is added per session; `monthly_fee` is billed once per month by the
    invoice run. Amounts exclude VAT; `vat_rate` empty means the tenant's default rate.
    """

    business_customer = models.ForeignKey(
        "customers.BusinessCustomer", on_delete=models.PROTECT, related_name="price_lists"
    )
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, validators=[currency_code])
    discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    energy_price_per_kwh = _money_field(help_text=_("Fixed price per kWh excl. VAT; empty: the tariff's price."))
    session_fee = models.DecimalField(
        max_digits=12, decimal_places=4, default=Decimal(0), validators=[MinValueValidator(Decimal(0))]
    )
    monthly_fee = models.DecimalField(
        max_digits=12, decimal_places=4, default=Decimal(0), validators=[MinValueValidator(Decimal(0))]
    )
    vat_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True, help_text=_("Exclusive; empty means open-ended."))

    class Meta:
        ordering = ["business_customer_id", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_customer", "valid_from"],
                name="contractpricelist_unique_start_per_customer",
                violation_error_message="This business customer already has a price list starting then.",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="contractpricelist_until_after_from",
                violation_error_message="valid_until must be after valid_from.",
            ),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                name="contractpricelist_discount_0_100",
                violation_error_message="discount_percent must be between 0 and 100.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- roaming (eMSP role)


class PartnerTariff(TenantOwned, TimeStampedModel):
    """A tariff of another CPO, received over roaming (OCPI tariffs Receiver or pull): what the CPO charges our
    tenant for a session on its EVSEs (the connectors name it in `tariff_ids`). Kept as the OCPI Tariff object
    (`data`), which the pricing engine reads as it is (`pricing.tariff_from_ocpi`)."""

    partner = models.ForeignKey("roaming.RoamingPartner", on_delete=models.CASCADE, related_name="partner_tariffs")
    country_code = models.CharField(max_length=2)
    party_id = models.CharField(max_length=3)
    ocpi_id = models.CharField(max_length=36)
    currency = models.CharField(max_length=3)
    data = models.JSONField(default=dict, help_text=_("The OCPI Tariff object as last received."))
    last_updated = models.DateTimeField()

    class Meta:
        ordering = ["partner_id", "ocpi_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "country_code", "party_id", "ocpi_id"], name="partnertariff_unique_object"
            )
        ]

    def __str__(self) -> str:
        return f"{self.country_code}*{self.party_id} {self.ocpi_id}"


class RetailMode(models.TextChoices):
    PASS_THROUGH = "pass_through", _("Pass-through: the CPO's price")
    MARKUP = "markup", _("The CPO's price plus a mark-up")
    FIXED_KWH = "fixed_kwh", _("A fixed price per kWh")


class RoamingRetailRule(TenantOwned, TimeStampedModel):
    """What our tenant's drivers pay for a session on a partner's EVSEs (one rule per roaming partner; none: pass-
    through). The CPO's cost is what its tariff gives; the retail price is derived from it (mark-up in percent on
    every price component) or replaces it (a fixed price per kWh), and is what the driver search shows and what the
    driver's receipt or the business customer's invoice bills."""

    partner = models.OneToOneField("roaming.RoamingPartner", on_delete=models.CASCADE, related_name="retail_rule")
    mode = models.CharField(max_length=12, choices=RetailMode.choices, default=RetailMode.PASS_THROUGH)
    markup_percent = models.DecimalField(
        max_digits=6, decimal_places=2, default=Decimal(0), validators=[MinValueValidator(Decimal(0))]
    )
    price_per_kwh_excl_vat = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, validators=[MinValueValidator(Decimal(0))]
    )
    vat_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("The VAT our tenant charges its driver on the retail price, in percent."),
    )
    currency = models.CharField(max_length=3, blank=True, default="", validators=[currency_code])

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(mode="fixed_kwh") | Q(price_per_kwh_excl_vat__isnull=False),
                name="retailrule_fixed_needs_price",
                violation_error_message="A fixed price per kWh needs the price.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} ({self.partner_id})"
