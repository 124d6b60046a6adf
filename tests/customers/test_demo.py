"""seed_demo adds drivers, fleets with contracts, tokens and vehicles, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.customers.models import BusinessCustomer, Contract, Driver, Token, Vehicle
from apps.customers.services import token_authorize
from apps.demo.customers_demo import TOKENS, _card_uid
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


def test_each_demo_tenant_issues_cards_of_its_own_uid() -> None:
    """Tenants that roam with each other push their cards to each other: a uid the other issued itself is refused
    (OCPI 2001), so the demo's cards differ between tenants (seen with `make run PEER=1`: Nordlicht's pushes of
    04DEADBEEF0001 and app-7f3a2c9e-jonas were refused by Voltnet)."""
    owner, other, third = Tenant(slug="voltnet"), Tenant(slug="nordlicht"), Tenant(slug="fjord")
    uids = [token["uid"] for token in TOKENS]
    assert [_card_uid(owner, uid) for uid in uids] == uids
    for tenant in (other, third):
        theirs = [_card_uid(tenant, uid) for uid in uids]
        assert not set(theirs) & set(uids)
        assert all(len(uid) <= 20 for uid in theirs)  # an OCPP idTag
    assert not {_card_uid(other, uid) for uid in uids} & {_card_uid(third, uid) for uid in uids}
