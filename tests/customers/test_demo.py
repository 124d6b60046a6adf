"""seed_demo adds drivers, fleets with contracts, tokens and vehicles, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.customers.models import BusinessCustomer, Contract, Driver, Token, Vehicle
from apps.customers.services import token_authorize
from apps.demo.services import seed_demo
from apps.tenants.models import Tenant

MODELS = (BusinessCustomer, Contract, Driver, Token, Vehicle)


def rows() -> dict[str, list[dict[str, object]]]:
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


@pytest.mark.django_db
def test_seed_demo_customers_are_complete_and_idempotent() -> None:
    seed_demo()
    first = rows()

    seed_demo()

    assert rows() == first
    voltnet = Tenant.objects.get(slug="voltnet")
    assert Driver.objects.filter(tenant=voltnet).count() == 4
    assert BusinessCustomer.objects.filter(tenant=voltnet).count() == 2
    limited = Contract.objects.get(tenant=voltnet, number="SWF-2025-01")
    assert (limited.max_session_duration, limited.limit_action) == (dt.timedelta(minutes=30), "stop")
    assert set(Token.objects.filter(tenant=voltnet).values_list("type", flat=True)) == {"APP_USER", "RFID"}
    assert sorted(Vehicle.objects.filter(tenant=voltnet).values_list("make", flat=True)) == [
        "Renault",
        "Tesla",
        "Volkswagen",
    ]
    fleet_card = token_authorize(tenant=voltnet, id_tag="04c0ffee000001")
    lost_card = token_authorize(tenant=voltnet, id_tag="04DEADBEEF0001")
    assert (fleet_card.status, fleet_card.token.business_contract) == ("Accepted", limited)  # type: ignore[union-attr]
    assert lost_card.status == "Blocked"
