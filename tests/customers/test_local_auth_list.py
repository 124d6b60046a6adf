"""The OCPP local authorization list built from tokens, its digest and differential updates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from apps.customers.authorization import LocalAuthEntry
from apps.customers.models import WhitelistType
from apps.customers.selectors import local_auth_list, local_auth_list_diff, local_auth_list_hash
from apps.stations.models import Location
from apps.tenants.models import Tenant
from tests.customers.factories import ContractFactory, TokenFactory

NOW = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)


def test_list_holds_locally_usable_tokens_with_their_status(tenant_a: Tenant, tenant_b: Tenant) -> None:
    contract = ContractFactory(tenant=tenant_a, valid_until=NOW + dt.timedelta(days=5))
    TokenFactory(tenant=tenant_a, uid="A-OK", whitelist=WhitelistType.ALWAYS, group_id="G")
    TokenFactory(tenant=tenant_a, uid="B-CONTRACT", business_contract=contract, expires_at=NOW + dt.timedelta(days=9))
    TokenFactory(tenant=tenant_a, uid="C-BLOCKED", blocked=True)
    TokenFactory(tenant=tenant_a, uid="D-EXPIRED", whitelist=WhitelistType.ALLOWED_OFFLINE, expires_at=NOW)
    TokenFactory(tenant=tenant_a, uid="E-REALTIME", whitelist=WhitelistType.NEVER)
    windowed = ContractFactory(
        tenant=tenant_a, time_windows=[{"days_of_week": [1], "start_time": "08:00", "end_time": "09:00"}]
    )
    TokenFactory(tenant=tenant_a, uid="F-WINDOWED", business_contract=windowed)
    located = ContractFactory(tenant=tenant_a)
    located.allowed_locations.set(
        [
            Location.objects.create(
                tenant=tenant_a, name="D", address="A", city="C", latitude=Decimal(1), longitude=Decimal(1)
            )
        ]
    )
    TokenFactory(tenant=tenant_a, uid="G-LOCATED", business_contract=located)
    TokenFactory(tenant=tenant_b, uid="H-OTHER-TENANT")

    entries = local_auth_list(tenant=tenant_a, at=NOW)

    assert entries == [
        LocalAuthEntry("A-OK", "Accepted", None, "G"),
        LocalAuthEntry("B-CONTRACT", "Accepted", NOW + dt.timedelta(days=5), None),
        LocalAuthEntry("C-BLOCKED", "Blocked", None, None),
        LocalAuthEntry("D-EXPIRED", "Expired", None, None),
    ]


def test_hash_changes_with_content_only(tenant_a: Tenant) -> None:
    token = TokenFactory(tenant=tenant_a, uid="T1")
    TokenFactory(tenant=tenant_a, uid="T2")
    first = local_auth_list_hash(local_auth_list(tenant=tenant_a, at=NOW))

    same = local_auth_list_hash(reversed(local_auth_list(tenant=tenant_a, at=NOW)))
    token.blocked = True
    token.save()
    after_block = local_auth_list_hash(local_auth_list(tenant=tenant_a, at=NOW))

    assert same == first
    assert after_block != first
    assert len(first) == 64


def test_diff_sends_changes_and_removals() -> None:
    previous = [
        LocalAuthEntry("KEEP", "Accepted"),
        LocalAuthEntry("CHANGE", "Accepted"),
        LocalAuthEntry("GONE", "Accepted"),
    ]
    current = [
        LocalAuthEntry("KEEP", "Accepted"),
        LocalAuthEntry("CHANGE", "Blocked"),
        LocalAuthEntry("NEW", "Accepted"),
    ]

    diff = local_auth_list_diff(previous=previous, current=current)

    assert diff == [
        LocalAuthEntry("CHANGE", "Blocked"),
        LocalAuthEntry("GONE", None),
        LocalAuthEntry("NEW", "Accepted"),
    ]
