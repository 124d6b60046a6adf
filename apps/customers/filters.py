"""django-filter FilterSets of the customers API (published with one name per field: apps.core.api.filters)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from apps.customers.models import BusinessCustomer, ConnectorStandard, Contract, Driver, Token, Vehicle


class BusinessCustomerFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    name = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = BusinessCustomer
        fields = ["tenant", "is_active", "payment_method", "vat_id"]


class DriverFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    business_customer_id = django_filters.NumberFilter(field_name="business_customer_id")
    email = django_filters.CharFilter(lookup_expr="iexact")
    name = django_filters.CharFilter(method="filter_name", help_text="Part of the first or last name.")

    class Meta:
        model = Driver
        fields = ["tenant", "business_customer", "is_active", "language", "country"]

    def filter_name(self, queryset: QuerySet[Driver], name: str, value: str) -> QuerySet[Driver]:
        return queryset.filter(Q(first_name__icontains=value) | Q(last_name__icontains=value))


class ContractFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    business_customer_id = django_filters.NumberFilter(field_name="business_customer_id")
    valid_at = django_filters.IsoDateTimeFilter(method="filter_valid_at", help_text="Contracts valid at this time.")

    class Meta:
        model = Contract
        fields = ["tenant", "business_customer", "number", "limit_action"]

    def filter_valid_at(self, queryset: QuerySet[Contract], name: str, value: Any) -> QuerySet[Contract]:
        return queryset.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=value), valid_from__lte=value)


class TokenFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    driver_id = django_filters.NumberFilter(field_name="driver_id")
    business_customer_id = django_filters.NumberFilter(field_name="business_customer_id")
    business_contract_id = django_filters.NumberFilter(field_name="business_contract_id")
    uid = django_filters.CharFilter(method="filter_uid", help_text="Exact uid, ignoring letter case.")

    class Meta:
        model = Token
        fields = [
            "tenant",
            "driver",
            "business_customer",
            "business_contract",
            "type",
            "whitelist",
            "valid",
            "blocked",
            "source",
            "contract_id",
            "group_id",
        ]

    def filter_uid(self, queryset: QuerySet[Token], name: str, value: str) -> QuerySet[Token]:
        return queryset.alias(uid_ci=Lower("uid")).filter(uid_ci=value.lower())


class VehicleFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    driver_id = django_filters.NumberFilter(field_name="driver_id")
    business_customer_id = django_filters.NumberFilter(field_name="business_customer_id")
    make = django_filters.CharFilter(lookup_expr="iexact")
    connector_type = django_filters.ChoiceFilter(
        choices=ConnectorStandard.choices,
        method="filter_connector_type",
        help_text="Vehicles accepting this connector.",
    )

    class Meta:
        model = Vehicle
        fields = ["tenant", "driver", "business_customer", "ac_phases"]

    def filter_connector_type(self, queryset: QuerySet[Vehicle], name: str, value: str) -> QuerySet[Vehicle]:
        return queryset.filter(connector_types__contains=[value])
