from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import factory
from factory.django import DjangoModelFactory

from apps.billing.costing import PricedDimension, SessionPrice
from apps.billing.models import Invoice, Payment, PaymentProviderName, PaymentRule, Payout
from apps.sessions.models import ChargingSession, SessionStatus
from apps.tenants.models import Tenant
from tests.stations.factories import ChargePointFactory
from tests.tenants.factories import TenantFactory

START = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)


def stored_price(session_price: SessionPrice) -> dict[str, Any]:
    """The price fields completion stores on a priced session (what billing reads): totals and the breakdown lines."""
    return {
        "currency": session_price.currency,
        "cost_excl_vat": session_price.total_excl_vat,
        "cost_incl_vat": session_price.total_incl_vat,
        "cost_breakdown": {
            "lines": [
                {
                    "group": d.dimension,
                    "dimension": d.dimension,
                    "description": d.description,
                    "vat": str(d.vat_rate),
                    "excl_vat": str(d.excl_vat),
                    "incl_vat": str(d.incl_vat),
                }
                for d in session_price.dimensions
            ]
        },
    }


class ChargingSessionFactory(DjangoModelFactory[ChargingSession]):
    """A completed session priced at completion (by default 10.00 excl. / 11.90 incl. VAT, see `price`); pass
    `priced=price(...)` for another stored price."""

    class Meta:
        model = ChargingSession

    class Params:
        priced = factory.LazyFunction(lambda: price())

    tenant = factory.SubFactory(TenantFactory)
    charge_point = factory.SubFactory(ChargePointFactory, tenant=factory.SelfAttribute("..tenant"))
    connector_id = 1
    id_tag = "04AABBCC"
    auth_status = "Accepted"
    status = SessionStatus.COMPLETED
    started_at = factory.Sequence(lambda n: START + dt.timedelta(hours=n))
    stopped_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(minutes=45))
    meter_start_wh = 1_000_000
    meter_stop_wh = 1_022_500
    energy_wh = 22_500
    currency = factory.LazyAttribute(lambda o: stored_price(o.priced)["currency"])
    cost_excl_vat = factory.LazyAttribute(lambda o: stored_price(o.priced)["cost_excl_vat"])
    cost_incl_vat = factory.LazyAttribute(lambda o: stored_price(o.priced)["cost_incl_vat"])
    cost_breakdown = factory.LazyAttribute(lambda o: stored_price(o.priced)["cost_breakdown"])


def price(
    energy: str = "8.10", time: str = "0.90", flat: str = "1.00", vat: str = "19.00", currency: str = "EUR"
) -> SessionPrice:
    """A priced breakdown as the pricing engine hands it over: per dimension, VAT rounded per line."""
    rate = Decimal(vat)
    dims = []
    for name, amount, text in (
        ("ENERGY", energy, "22.5 kWh at 0.36/kWh"),
        ("TIME", time, "45 min at 1.20/h"),
        ("FLAT", flat, "fee 1.00"),
    ):
        excl = Decimal(amount)
        if excl == 0:
            continue
        incl = (excl * (1 + rate / 100)).quantize(Decimal("0.01"))
        dims.append(PricedDimension(dimension=name, description=text, excl_vat=excl, vat_rate=rate, incl_vat=incl))
    return SessionPrice(currency=currency, dimensions=tuple(dims))


def draft_invoice(tenant: Tenant, sessions: int = 1, **kwargs: Any) -> Invoice:
    from apps.billing import services

    priced = [(ChargingSessionFactory(tenant=tenant), price()) for _ in range(sessions)]
    kwargs.setdefault("period_start", dt.date(2026, 3, 1))
    kwargs.setdefault("period_end", dt.date(2026, 3, 31))
    return services.invoice_create_draft(tenant=tenant, priced_sessions=priced, **kwargs)


def issued_invoice(tenant: Tenant, **kwargs: Any) -> Invoice:
    from apps.billing import services

    return services.invoice_issue(invoice=draft_invoice(tenant, **kwargs), render=False)


class PaymentFactory(DjangoModelFactory[Payment]):
    class Meta:
        model = Payment

    tenant = factory.SubFactory(TenantFactory)
    provider = PaymentProviderName.FISERV
    currency = "EUR"
    merchant_reference = factory.Sequence(lambda n: f"PA-test{n:08d}")


class PaymentRuleFactory(DjangoModelFactory[PaymentRule]):
    class Meta:
        model = PaymentRule

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Site owner rule {n}")
    payee_name = "Parkhaus Mitte GmbH"
    platform_fee_flat = Decimal("5.00")
    platform_fee_percent = Decimal("10.00")


class PayoutFactory(DjangoModelFactory[Payout]):
    class Meta:
        model = Payout

    tenant = factory.SubFactory(TenantFactory)
    rule = factory.SubFactory(PaymentRuleFactory, tenant=factory.SelfAttribute("..tenant"))
    period_start = dt.date(2026, 3, 1)
    period_end = dt.date(2026, 3, 31)
    payee_name = "Parkhaus Mitte GmbH"
