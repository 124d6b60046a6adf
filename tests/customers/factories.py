from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from factory.django import DjangoModelFactory

from apps.customers.models import (
    BusinessCustomer,
    ConnectorStandard,
    Contract,
    Driver,
    Token,
    TokenType,
    Vehicle,
    WhitelistType,
)
from tests.tenants.factories import TenantFactory


class BusinessCustomerFactory(DjangoModelFactory[BusinessCustomer]):
    class Meta:
        model = BusinessCustomer

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Fleet {n}")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name} GmbH")
    billing_email = factory.Sequence(lambda n: f"billing{n}@fleet.example")


class DriverFactory(DjangoModelFactory[Driver]):
    class Meta:
        model = Driver

    tenant = factory.SubFactory(TenantFactory)
    first_name = "Dana"
    last_name = factory.Sequence(lambda n: f"Driver{n}")
    email = factory.Sequence(lambda n: f"driver{n}@example.com")
    language = "de"


class ContractFactory(DjangoModelFactory[Contract]):
    class Meta:
        model = Contract

    tenant = factory.SubFactory(TenantFactory)
    business_customer = factory.SubFactory(BusinessCustomerFactory, tenant=factory.SelfAttribute("..tenant"))
    number = factory.Sequence(lambda n: f"C-{n:05d}")
    valid_from = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class TokenFactory(DjangoModelFactory[Token]):
    class Meta:
        model = Token

    tenant = factory.SubFactory(TenantFactory)
    uid = factory.Sequence(lambda n: f"04A1B2C3{n:06X}")
    type = TokenType.RFID
    contract_id = factory.Sequence(lambda n: f"DEVLTC{n:08d}")
    issuer = "Voltnet"
    whitelist = WhitelistType.ALLOWED


class VehicleFactory(DjangoModelFactory[Vehicle]):
    class Meta:
        model = Vehicle

    tenant = factory.SubFactory(TenantFactory)
    driver = factory.SubFactory(DriverFactory, tenant=factory.SelfAttribute("..tenant"))
    make = "Volkswagen"
    model = "ID.3 Pro"
    battery_kwh = Decimal("58.0")
    ac_phases = 3
    ac_max_current_a = 16
    dc_max_power_w = 120_000
    connector_types = factory.LazyFunction(
        lambda: [ConnectorStandard.IEC_62196_T2.value, ConnectorStandard.IEC_62196_T2_COMBO.value]
    )
