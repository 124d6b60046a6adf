from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment
from tests.customers.factories import BusinessCustomerFactory
from tests.tenants.factories import TenantFactory

ENERGY_039 = [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}]


class TariffFactory(DjangoModelFactory[Tariff]):
    """Rows only (stored form: numbers as strings); use `services.tariff_create` to go through validation."""

    class Meta:
        model = Tariff

    tenant = factory.SubFactory(TenantFactory)
    ocpi_id = factory.Sequence(lambda n: f"T-{n}")
    currency = "EUR"
    elements = factory.LazyFunction(lambda: [dict(e) for e in ENERGY_039])


class TariffAssignmentFactory(DjangoModelFactory[TariffAssignment]):
    class Meta:
        model = TariffAssignment

    tenant = factory.SubFactory(TenantFactory)
    tariff = factory.SubFactory(TariffFactory, tenant=factory.SelfAttribute("..tenant"))


class ContractPriceListFactory(DjangoModelFactory[ContractPriceList]):
    class Meta:
        model = ContractPriceList

    tenant = factory.SubFactory(TenantFactory)
    business_customer = factory.SubFactory(BusinessCustomerFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"Fleet prices {n}")
    currency = "EUR"
    discount_percent = Decimal("10")
    session_fee = Decimal("0.50")
    monthly_fee = Decimal("9.90")
    valid_from = factory.LazyFunction(lambda: dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
