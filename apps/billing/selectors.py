"""Billing reads: querysets with their relations loaded."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.billing.models import Invoice, Payment, PaymentRule, Payout


def invoice_list() -> QuerySet[Invoice]:
    return Invoice.objects.select_related("tenant", "credited_invoice").order_by("-id")


def invoice_detail() -> QuerySet[Invoice]:
    return invoice_list().prefetch_related("lines")


def payment_list() -> QuerySet[Payment]:
    return Payment.objects.select_related("invoice").order_by("-id")


def payment_rule_list() -> QuerySet[PaymentRule]:
    return PaymentRule.objects.select_related("location").order_by("name", "pk")


def payout_list() -> QuerySet[Payout]:
    return Payout.objects.select_related("rule").order_by("-period_start", "-id")
