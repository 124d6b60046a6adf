"""A StopTransaction's answer waits for the stop only: pricing and the CDR follow in the SessionStopped delivery,
which publishes SessionEnded (receipts, roaming CDRs, KPIs) once the price is stored. Nothing is lost or priced twice
between the two, and the invoice run never leaves off a session stopped a moment ago."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.billing import services as billing_services
from apps.billing.models import Invoice
from apps.core import outbox
from apps.core.models import OutboxDelivery
from apps.sessions import services
from apps.sessions.models import Cdr, ChargingSession, SessionStatus
from apps.tenants.models import Tenant
from tests.charging.test_one_price import STANDARD, charge
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def charge_point_id(tenant_a: Tenant) -> int:
    charge_point = ChargePointFactory(tenant=tenant_a)
    ConnectorFactory(evse=EvseFactory(charge_point=charge_point, connector_id=1), max_electric_power=22_000)
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, ocpi_id="STD", elements=STANDARD))
    return int(charge_point.pk)


def _pending(event_type: str, session_id: int) -> list[str]:
    return sorted(
        OutboxDelivery.objects.filter(
            event_type=event_type, subject=f"session:{session_id}", state=OutboxDelivery.State.PENDING
        ).values_list("subscriber", flat=True)
    )


def _stored(session_id: int) -> dict[str, Any]:
    session = ChargingSession.objects.get(pk=session_id)
    return {
        "status": session.status,
        "cost": (session.cost_excl_vat, session.cost_incl_vat),
        "cdrs": list(Cdr.objects.filter(session_id=session_id).values_list("pk", "total_cost")),
        "ended": OutboxDelivery.objects.filter(event_type="SessionEnded", subject=f"session:{session_id}").count(),
    }


def test_the_stop_commits_without_its_price_and_the_delivery_prices_it_once(
    tenant_a: Tenant, charge_point_id: int
) -> None:
    # given a registered driver's session whose charger sent its StopTransaction
    token = TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a))
    session = charge(charge_point_id, token.uid, complete=False)

    # then the stop is stored (completed, its energy) but not priced yet: SessionStopped waits, SessionEnded not
    assert (session.status, session.energy_wh, session.cost_incl_vat) == (SessionStatus.COMPLETED, 5_490, None)
    assert not Cdr.objects.filter(session=session).exists()
    assert _pending("SessionStopped", session.pk) == ["apps.sessions.subscribers.session_stopped"]
    assert _pending("SessionEnded", session.pk) == []
    assert services.sessions_awaiting_completion(tenant_id=tenant_a.pk) == [session.pk]

    # when the outbox delivers it
    outbox.deliver_pending(wait=True)

    # then it is priced, has its CDR, and SessionEnded was published (and delivered) after that
    after = _stored(session.pk)
    # 5.49 kWh x 0.39 = 2.1411 -> 2.14 (x 1.19 = 2.55 after rounding); 31 min x 0.60/h = 0.31 (0.37)
    assert after["cost"] == (Decimal("2.45"), Decimal("2.92"))
    assert [total for _, total in after["cdrs"]] == [{"excl_vat": Decimal("2.45"), "incl_vat": Decimal("2.92")}]
    assert after["ended"] == 5  # one row per SessionEnded subscriber, published once
    assert _pending("SessionStopped", session.pk) == _pending("SessionEnded", session.pk) == []
    assert services.sessions_awaiting_completion(tenant_id=tenant_a.pk) == []

    # and a second delivery (at least once) or a repeated StopTransaction changes nothing
    assert services.session_completion(session_id=session.pk) is False
    repeated, _ = services.session_stop(
        charge_point_id=charge_point_id,
        transaction_id=session.pk,
        meter_stop=session.meter_stop_wh or 0,
        timestamp=session.stopped_at,
    )
    assert repeated is not None
    outbox.deliver_pending(wait=True)
    assert _stored(session.pk) == after


def test_the_invoice_run_prices_a_session_whose_delivery_has_not_run_yet(
    tenant_a: Tenant, charge_point_id: int
) -> None:
    # given a fleet driver's session stopped a moment ago: its SessionStopped is still in the outbox
    fleet = BusinessCustomerFactory(tenant=tenant_a)
    token = TokenFactory(tenant=tenant_a, driver=DriverFactory(tenant=tenant_a, business_customer=fleet))
    session = charge(charge_point_id, token.uid, complete=False)
    assert session.cost_incl_vat is None

    # when the month's invoices are run
    report = billing_services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    # then the session is on the fleet's invoice at its price, not left off as unpriced
    assert (len(report.issued), report.unpriced_sessions) == (1, {})
    line = Invoice.objects.get(business_customer=fleet).lines.get(session_id=session.pk)
    assert (line.total_excl_vat, line.total_incl_vat) == (Decimal("2.45"), Decimal("2.92"))
    priced = _stored(session.pk)
    assert priced["cost"] == (line.total_excl_vat, line.total_incl_vat)

    # and the late delivery finds it priced: one CDR, one SessionEnded, the same price
    outbox.deliver_pending(wait=True)
    assert _stored(session.pk) == priced
    assert len(priced["cdrs"]) == 1
