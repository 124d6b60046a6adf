"""django-filter FilterSets of the tariffs API. Every foreign key also filters as `<fk>_id`."""

from __future__ import annotations

import datetime as dt

import django_filters
from django.db.models import Q, QuerySet

from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment, TariffType


class TariffFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    ocpi_id = django_filters.CharFilter(field_name="ocpi_id")
    type = django_filters.ChoiceFilter(choices=TariffType.choices)
    currency = django_filters.CharFilter(field_name="currency", lookup_expr="iexact")
    valid_at = django_filters.IsoDateTimeFilter(method="filter_valid_at", help_text="Tariffs valid at this time.")
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="OCPI date_from: last_updated at or after."
    )
    updated_before = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="lt", help_text="OCPI date_to: last_updated before."
    )

    class Meta:
        model = Tariff
        fields = ["tenant"]

    def filter_valid_at(self, queryset: QuerySet[Tariff], name: str, value: dt.datetime) -> QuerySet[Tariff]:
        return queryset.filter(
            (Q(start_date_time__isnull=True) | Q(start_date_time__lte=value))
            & (Q(end_date_time__isnull=True) | Q(end_date_time__gt=value))
        )


class TariffAssignmentFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    tariff_id = django_filters.NumberFilter(field_name="tariff_id")
    location_id = django_filters.NumberFilter(field_name="location_id")
    charge_point_id = django_filters.NumberFilter(field_name="charge_point_id")
    evse_id = django_filters.NumberFilter(field_name="evse_id")
    tenant_default = django_filters.BooleanFilter(
        method="filter_tenant_default", help_text="Only (or no) tenant-wide default assignments."
    )

    class Meta:
        model = TariffAssignment
        fields = ["tenant", "tariff", "ad_hoc"]

    def filter_tenant_default(
        self, queryset: QuerySet[TariffAssignment], name: str, value: bool
    ) -> QuerySet[TariffAssignment]:
        default = Q(location__isnull=True, charge_point__isnull=True, evse__isnull=True)
        return queryset.filter(default) if value else queryset.exclude(default)


class ContractPriceListFilter(django_filters.FilterSet):
    tenant_id = django_filters.NumberFilter(field_name="tenant_id")
    business_customer_id = django_filters.NumberFilter(field_name="business_customer_id")
    valid_at = django_filters.IsoDateTimeFilter(method="filter_valid_at", help_text="Price lists valid at this time.")

    class Meta:
        model = ContractPriceList
        fields = ["tenant", "business_customer", "currency"]

    def filter_valid_at(
        self, queryset: QuerySet[ContractPriceList], name: str, value: dt.datetime
    ) -> QuerySet[ContractPriceList]:
        return queryset.filter(valid_from__lte=value).filter(Q(valid_until__isnull=True) | Q(valid_until__gt=value))
