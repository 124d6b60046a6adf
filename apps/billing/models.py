"""Invoices, credit notes, payments, payment rules and payouts (layer 4).

An invoice is a snapshot: its lines copy everything they print (session, location, times, energy, price
breakdown, VAT, the Eichrecht verification reference), so a later change to a session, a location or a
tariff never changes an issued document. Issued invoices are immutable (services refuse changes, and a
database trigger refuses updates of the printed columns); corrections are credit notes.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from apps.core.models import AuditLog, History, TimeStampedModel
from apps.sessions.models import PartnerCdr
from apps.tenants.models import TenantOwned, currency_code

ZERO = Decimal("0.00")


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    RECEIPT = "receipt", _("Session receipt")
    CREDIT_NOTE = "credit_note", _("Credit note")


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    SENT = "sent", _("Sent")
    PAID = "paid", _("Paid")
    VOID = "void", _("Void")
    CREDITED = "credited", _("Credited")


class Invoice(TenantOwned, TimeStampedModel, History):
    """An invoice, a per-session receipt, or a credit note. Numbered only when issued."""

    kind = models.CharField(max_length=12, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    status = models.CharField(max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    number = models.CharField(max_length=32, blank=True, default="", help_text=_("Assigned when issued."))
    number_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # the customer: a link where we have one, and always the snapshot that is printed
    business_customer = models.ForeignKey(
        "customers.BusinessCustomer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    driver = models.ForeignKey("customers.Driver", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    customer_name = models.CharField(max_length=200)
    customer_address = models.TextField(blank=True, default="")
    customer_email = models.EmailField(blank=True, default="")
    customer_vat_id = models.CharField(max_length=30, blank=True, default="")
    period_start = models.DateField()
    period_end = models.DateField(help_text=_("Inclusive."))
    # a receipt covers one session; the link makes "one receipt per session" a constraint
    receipt_session_id = models.IntegerField(null=True, blank=True)
    # a receipt of our driver's session on another network covers one partner CDR (charging.PartnerCdr, eMSP)
    receipt_partner_cdr_id = models.IntegerField(null=True, blank=True, verbose_name=_("receipt of partner CDR"))
    credited_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes"
    )
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    total_excl_vat = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    total_vat = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    total_incl_vat = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    vat_breakdown = models.JSONField(
        default=list, blank=True, help_text='[{"rate": "19.00", "net": "10.00", "vat": "1.90", "gross": "11.90"}]'
    )
    notes = models.TextField(blank=True, default="")
    pdf = models.FileField(upload_to="invoices/%Y/%m/", blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "number"], condition=~Q(number=""), name="invoice_unique_number_per_tenant"
            ),
            # the monthly run may run twice (or resume): a customer gets one invoice per period
            models.UniqueConstraint(
                fields=["tenant", "business_customer", "period_start", "period_end", "kind"],
                condition=Q(business_customer__isnull=False) & ~Q(kind="credit_note"),
                name="invoice_unique_business_customer_period",
            ),
            models.UniqueConstraint(
                fields=["tenant", "driver", "period_start", "period_end", "kind"],
                condition=Q(driver__isnull=False) & Q(kind="invoice"),
                name="invoice_unique_driver_period",
            ),
            models.UniqueConstraint(
                fields=["tenant", "receipt_session_id"],
                condition=Q(kind="receipt"),
                name="invoice_unique_receipt_per_session",
            ),
            models.CheckConstraint(
                condition=(Q(status="draft") & Q(number="")) | (~Q(status="draft") & ~Q(number="")),
                name="invoice_number_iff_issued",
            ),
            models.CheckConstraint(
                condition=Q(kind="credit_note", credited_invoice__isnull=False)
                | (~Q(kind="credit_note") & Q(credited_invoice__isnull=True)),
                name="invoice_credit_note_has_original",
            ),
            models.UniqueConstraint(
                fields=["tenant", "receipt_partner_cdr_id"],
                condition=Q(kind="receipt") & Q(receipt_partner_cdr_id__isnull=False),
                name="invoice_unique_receipt_per_partner_cdr",
            ),
            models.CheckConstraint(
                condition=Q(kind="receipt", receipt_session_id__isnull=False, receipt_partner_cdr_id__isnull=True)
                | Q(kind="receipt", receipt_session_id__isnull=True, receipt_partner_cdr_id__isnull=False)
                | (~Q(kind="receipt") & Q(receipt_session_id__isnull=True, receipt_partner_cdr_id__isnull=True)),
                name="invoice_receipt_has_session",
            ),
            models.CheckConstraint(
                condition=~Q(business_customer__isnull=False, driver__isnull=False),
                name="invoice_one_customer",
            ),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="invoice_period"),
        ]
        indexes = [models.Index(fields=["tenant", "status", "-id"], name="invoice_tenant_status")]

    def __str__(self) -> str:
        return self.number or f"draft {self.pk}"

    @property
    def is_draft(self) -> bool:
        return self.status == InvoiceStatus.DRAFT

    @property
    def is_credit_note(self) -> bool:
        return self.kind == InvoiceKind.CREDIT_NOTE


class InvoiceLine(History):
    """One session (or a fee) on an invoice, copied at the time the invoice was built."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveIntegerField()
    description = models.CharField(max_length=300)
    session_id = models.IntegerField(null=True, blank=True, help_text=_("The charging session (not a FK: a snapshot)."))
    session_reference = models.CharField(max_length=64, blank=True, default="", help_text=_("CDR / session id."))
    location_id = models.IntegerField(null=True, blank=True, help_text=_("stations.Location (a snapshot, not a FK)."))
    location_name = models.CharField(max_length=255, blank=True, default="")
    location_address = models.CharField(max_length=400, blank=True, default="")
    evse_reference = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(
        max_length=64, blank=True, default="", help_text=_("The location's IANA time zone: times are printed in it.")
    )
    duration_seconds = models.PositiveIntegerField(default=0)
    energy_wh = models.BigIntegerField(default=0)
    components = models.JSONField(
        default=list,
        blank=True,
        help_text='Price per dimension excl. VAT: [{"dimension": "ENERGY", "description": "...", "excl_vat": "4.20"}]',
    )
    vat_rate = models.DecimalField(
        max_digits=5, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    total_excl_vat = models.DecimalField(max_digits=14, decimal_places=2)
    total_vat = models.DecimalField(max_digits=14, decimal_places=2)
    total_incl_vat = models.DecimalField(max_digits=14, decimal_places=2)
    meter_verification = models.TextField(
        blank=True,
        default="",
        help_text=_("Eichrecht: how to verify the signed meter data (OCMF reference, meter, transparency software)."),
    )
    partner_cdr_id = models.IntegerField(
        null=True,
        blank=True,
        verbose_name=_("partner CDR"),
        help_text=_("The partner CDR billed (roaming, charging.PartnerCdr; a snapshot)."),
    )
    cpo_cost_excl_vat = models.DecimalField(
        verbose_name=_("operator's cost excl. VAT"),
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_("Roaming: what the other operator charges us for this session, excl. VAT (kept for the margin)."),
    )
    credits_line = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credited_by",
        help_text=_("On a credit note: the invoice line it reverses."),
    )

    class Meta:
        ordering = ["invoice_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoiceline_unique_position"),
        ]
        indexes = [
            models.Index(fields=["session_id"], name="invoiceline_session"),
            models.Index(fields=["partner_cdr_id"], name="invoiceline_partner_cdr"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.position}"

    @property
    def margin_excl_vat(self) -> Decimal | None:
        """Roaming: our retail price minus the CPO's cost, excl. VAT (None for our own sessions)."""
        if self.cpo_cost_excl_vat is None:
            return None
        return Decimal(self.total_excl_vat) - Decimal(self.cpo_cost_excl_vat)


class InvoiceNumberSequence(TenantOwned):
    """The last number issued per tenant and year. Locked FOR UPDATE inside the issuing transaction."""

    year = models.PositiveSmallIntegerField()
    prefix = models.CharField(max_length=10, default="")
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "year"], name="invoicesequence_unique_year")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.year}: {self.last_number}"


class InvoiceEvent(TenantOwned, AuditLog):
    """Audit row of every invoice state change, written in the same transaction.

    A deleted draft's events stay: the link is cleared (SET_NULL) and `invoice_ref` keeps which invoice it was."""

    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    invoice_ref = models.IntegerField(help_text=_("The invoice's id, kept after a deleted draft's link is cleared."))
    action = models.CharField(max_length=30)
    from_status = models.CharField(max_length=10, blank=True, default="")
    to_status = models.CharField(max_length=10)
    actor = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.invoice_ref} {self.action}"


# --------------------------------------------------------------------------- payments


class PaymentProviderName(models.TextChoices):
    FISERV = "fiserv", _("Fiserv (card)")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer / SEPA")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    AUTHORIZED = "authorized", _("Authorised (held)")
    CAPTURING = "capturing", _("Capture sent, outcome unknown")
    CAPTURED = "captured", _("Captured")
    VOIDED = "voided", _("Voided")
    REFUNDED = "refunded", _("Refunded")
    DECLINED = "declined", _("Declined")
    FAILED = "failed", _("Failed")


class Payment(TenantOwned, TimeStampedModel, History):
    """Money moving for an invoice or a session: a card pre-authorisation and its capture, or a bank transfer."""

    provider = models.CharField(max_length=20, choices=PaymentProviderName.choices)
    status = models.CharField(max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    session_id = models.IntegerField(null=True, blank=True, help_text=_("Ad hoc session this payment is for."))
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    amount_authorized = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    amount_captured = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    amount_refunded = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    merchant_reference = models.CharField(
        max_length=64, unique=True, help_text=_("Our idempotency reference (Fiserv merchantTransactionId).")
    )
    provider_reference = models.CharField(max_length=64, blank=True, default="", help_text=_("ipgTransactionId."))
    capture_request_id = models.CharField(max_length=64, blank=True, default="")
    bank_reference = models.CharField(max_length=140, blank=True, default="", help_text=_("Bank statement reference."))
    received_on = models.DateField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_captured__gte=0), name="payment_captured_not_negative"),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=models.F("amount_captured")), name="payment_refund_le_captured"
            ),
        ]

    def __str__(self) -> str:
        return self.merchant_reference


class PaymentEvent(TenantOwned, AuditLog):
    """Audit row of every payment state change and every provider call, written in the same transaction."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30)
    from_status = models.CharField(max_length=12, blank=True, default="")
    to_status = models.CharField(max_length=12)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.payment_id} {self.action}"


# --------------------------------------------------------------------------- rules and payouts


class Party(models.TextChoices):
    DRIVER = "driver", _("Driver")
    BUSINESS_CUSTOMER = "business_customer", _("Business customer")
    TENANT = "tenant", _("Tenant (operator)")
    SITE_OWNER = "site_owner", _("Site owner")
    PLATFORM = "platform", _("Platform")


class PaymentRule(TenantOwned, TimeStampedModel):
    """Who pays whom for sessions at a location (or everywhere), and the platform fee kept on the way."""

    name = models.CharField(max_length=100)
    payer = models.CharField(max_length=20, choices=Party.choices, default=Party.DRIVER)
    payee = models.CharField(max_length=20, choices=Party.choices, default=Party.SITE_OWNER)
    location = models.ForeignKey(
        "stations.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Sessions at this location; empty: every location of the tenant."),
    )
    payee_name = models.CharField(max_length=200, help_text=_("Printed on the payout statement."))
    payee_iban = models.CharField(max_length=34, blank=True, default="")
    payee_email = models.EmailField(blank=True, default="")
    platform_fee_flat = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=ZERO,
        validators=[MinValueValidator(0)],
        help_text=_("Per payout period."),
    )
    platform_fee_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=ZERO, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="paymentrule_unique_name"),
            models.CheckConstraint(condition=~Q(payer=models.F("payee")), name="paymentrule_payer_not_payee"),
            models.CheckConstraint(
                condition=Q(platform_fee_flat__gte=0)
                & Q(platform_fee_percent__gte=0)
                & Q(platform_fee_percent__lte=100),
                name="paymentrule_fee_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PayoutStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")
    PAID = "paid", _("Paid")


class Payout(TenantOwned, TimeStampedModel, History):
    """A payout statement: what a payee earned under a rule in a period, minus the platform fee."""

    rule = models.ForeignKey(PaymentRule, on_delete=models.PROTECT, related_name="payouts")
    period_start = models.DateField()
    period_end = models.DateField(help_text=_("Inclusive."))
    status = models.CharField(max_length=10, choices=PayoutStatus.choices, default=PayoutStatus.DRAFT)
    payee_name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, default="EUR", validators=[currency_code])
    session_count = models.PositiveIntegerField(default=0)
    energy_wh = models.BigIntegerField(default=0)
    gross_excl_vat = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    fee_flat = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    fee_percent_amount = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    fee_total = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    net_amount = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO)
    statement = models.JSONField(default=list, blank=True, help_text=_("The invoice lines counted, as printed."))
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "period_start", "period_end"], name="payout_unique_rule_period"),
            models.CheckConstraint(condition=Q(period_end__gte=models.F("period_start")), name="payout_period"),
        ]

    def __str__(self) -> str:
        return f"{self.payee_name} {self.period_start:%Y-%m}"


# --------------------------------------------------------------------------- roaming CDR reconciliation (eMSP)


class RoamingCdrReview(PartnerCdr):
    """The received CDRs as finance reviews them (admin page): the CPO's cost, our retail price and margin, and
    whether the total matches the CPO's tariff. A proxy: the rows are charging.PartnerCdr."""

    class Meta:
        proxy = True
        verbose_name = _("roaming CDR reconciliation")
        verbose_name_plural = _("roaming CDR reconciliation")
