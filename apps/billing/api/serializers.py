from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.billing.models import Invoice, InvoiceLine, Payment, PaymentRule, Payout, PayoutStatus
from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.customers.models import BusinessCustomer
from apps.sessions.models import PartnerCdr
from apps.tenants.scoping import ScopedRelatedField, TenantField, TenantOwnedSerializer

_Location = PaymentRule._meta.get_field("location").related_model


class InvoiceLineSerializer(StrictModelSerializer):
    margin_excl_vat = serializers.DecimalField(
        max_digits=14,
        decimal_places=4,
        read_only=True,
        allow_null=True,
        help_text="Roaming lines: our retail price minus the other operator's cost, excl. VAT; null for our sessions.",
    )

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "description",
            "session_id",
            "session_reference",
            "location_name",
            "location_address",
            "evse_reference",
            "started_at",
            "stopped_at",
            "duration_seconds",
            "energy_wh",
            "components",
            "vat_rate",
            "total_excl_vat",
            "total_vat",
            "total_incl_vat",
            "meter_verification",
            "partner_cdr_id",
            "cpo_cost_excl_vat",
            "margin_excl_vat",
        ]
        read_only_fields = fields


INVOICE_FIELDS = [
    "id",
    "tenant",
    "kind",
    "status",
    "number",
    "business_customer",
    "driver",
    "customer_name",
    "customer_address",
    "customer_email",
    "customer_vat_id",
    "period_start",
    "period_end",
    "receipt_session_id",
    "receipt_partner_cdr_id",
    "credited_invoice",
    "currency",
    "issued_at",
    "due_date",
    "total_excl_vat",
    "total_vat",
    "total_incl_vat",
    "vat_breakdown",
    "notes",
    "sent_at",
    "paid_at",
    "created_at",
    "updated_at",
]


class InvoiceSerializer(StrictModelSerializer):
    """Invoices are written by services only (create a draft, issue, void, credit); every field is read-only."""

    tenant: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Invoice
        fields = INVOICE_FIELDS
        read_only_fields = INVOICE_FIELDS


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*INVOICE_FIELDS, "lines"]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class _TenantField(TenantField):
    """The owning tenant (typed for the schema: these serializers have no model to derive it from)."""


class InvoiceDraftSerializer(StrictSerializer):
    """A draft invoice for a customer and period, with the customer's priced, not yet billed sessions."""

    tenant = _TenantField()
    business_customer = ScopedRelatedField(queryset=BusinessCustomer.objects.all())
    period_start = serializers.DateField()
    period_end = serializers.DateField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["period_end"] < attrs["period_start"]:
            raise serializers.ValidationError({"period_end": ["Must not be before period_start."]})
        tenant = attrs.get("tenant")
        if tenant is not None and attrs["business_customer"].tenant_id != tenant.pk:
            raise serializers.ValidationError({"business_customer": ["Belongs to another tenant."]})
        return attrs


class InvoiceUpdateSerializer(StrictSerializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    due_date = serializers.DateField(required=False)


class ReasonSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=500)


class CreditNoteSerializer(ReasonSerializer):
    positions = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        allow_empty=False,
        max_length=10_000,
        help_text="Line positions to credit; without: every line not credited yet.",
    )


class EmptySerializer(StrictSerializer):
    """No input."""


class PaymentSerializer(StrictModelSerializer):
    tenant: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "tenant",
            "provider",
            "status",
            "invoice",
            "session_id",
            "currency",
            "amount_authorized",
            "amount_captured",
            "amount_refunded",
            "merchant_reference",
            "provider_reference",
            "bank_reference",
            "received_on",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BankTransferSerializer(StrictSerializer):
    """Money received by bank transfer / SEPA for an invoice (recorded by finance)."""

    invoice = ScopedRelatedField(queryset=Invoice.objects.all())
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))
    received_on = serializers.DateField()
    bank_reference = serializers.CharField(max_length=140, required=False, default="", allow_blank=True)


class AmountSerializer(StrictSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0.01"))


class BankStatementSerializer(StrictSerializer):
    tenant = _TenantField()
    file = serializers.FileField(help_text="CSV with columns date (YYYY-MM-DD), amount, reference.")


class StatementReportSerializer(StrictSerializer):
    matched = serializers.ListField(child=serializers.CharField())
    unmatched = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


class PaymentRuleSerializer(TenantOwnedSerializer):
    location = ScopedRelatedField(queryset=_Location._default_manager.all(), required=False, allow_null=True)  # type: ignore[union-attr]

    class Meta:
        model = PaymentRule
        fields = [
            "id",
            "tenant",
            "name",
            "payer",
            "payee",
            "location",
            "payee_name",
            "payee_iban",
            "payee_email",
            "platform_fee_flat",
            "platform_fee_percent",
            "currency",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        payer = attrs.get("payer", getattr(self.instance, "payer", None))
        payee = attrs.get("payee", getattr(self.instance, "payee", None))
        if payer is not None and payer == payee:
            raise serializers.ValidationError({"payee": ["Must differ from the payer."]})
        return attrs


class PayoutSerializer(StrictModelSerializer):
    tenant: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Payout
        fields = [
            "id",
            "tenant",
            "rule",
            "period_start",
            "period_end",
            "status",
            "payee_name",
            "currency",
            "session_count",
            "energy_wh",
            "gross_excl_vat",
            "fee_flat",
            "fee_percent_amount",
            "fee_total",
            "net_amount",
            "statement",
            "paid_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PayoutComputeSerializer(StrictSerializer):
    rule = ScopedRelatedField(queryset=PaymentRule.objects.all())
    period_start = serializers.DateField()
    period_end = serializers.DateField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["period_end"] < attrs["period_start"]:
            raise serializers.ValidationError({"period_end": ["Must not be before period_start."]})
        return attrs


class PayoutStatusSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=PayoutStatus.choices, help_text="approved (from draft) or paid.")


# --------------------------------------------------------------------------- roaming CDR reconciliation (eMSP)


class PartnerCdrReviewSerializer(StrictModelSerializer):
    """A CDR another CPO sent for our driver's session: the CPO's cost, our retail price and margin (from the line
    that bills it; null while not billed), and whether its total matches the CPO's tariff (`review`)."""

    party = serializers.SerializerMethodField()
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    cpo_cost_excl_vat = serializers.DecimalField(source="total_cost_excl_vat", max_digits=12, decimal_places=4)
    retail_excl_vat = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    retail_incl_vat = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    margin_excl_vat = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
    invoice_number = serializers.CharField(allow_null=True)

    class Meta:
        model = PartnerCdr
        fields = [
            "id",
            "tenant",
            "partner",
            "partner_name",
            "party",
            "ocpi_id",
            "credit",
            "credit_reference_id",
            "driver",
            "business_customer",
            "start_date_time",
            "end_date_time",
            "currency",
            "total_energy",
            "cpo_cost_excl_vat",
            "retail_excl_vat",
            "retail_incl_vat",
            "margin_excl_vat",
            "invoice_number",
            "review",
            "review_detail",
        ]
        read_only_fields = fields

    def get_party(self, obj: PartnerCdr) -> str:
        return f"{obj.country_code}*{obj.party_id}"
