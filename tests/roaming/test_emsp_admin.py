"""The read-only admin pages of what CPO partners sent us as eMSP (apps/roaming/admin_emsp.py): each tenant's staff
see their own partner locations (with EVSEs and connectors), tariffs, sessions, CDRs, hub clients and pull states,
never another tenant's, and cannot change them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.tenants.models import Role, Tenant
from tests.registry import snapshot
from tests.roaming import emsp_rig as rig

MAKERS: dict[str, Callable[[Tenant], Any]] = {
    "stations_partnerlocation": rig.partner_location_for,
    "stations_partnerconnector": rig.partner_connector_for,
    "tariffs_partnertariff": rig.partner_tariff_for,
    "charging_partnersession": rig.partner_session_for,
    "charging_partnercdr": rig.partner_cdr_for,
    "roaming_hubclientinfo": rig.hub_client_for,
    "roaming_pullstate": rig.pull_state_for,
}


@pytest.mark.parametrize("page", sorted(MAKERS))
def test_each_page_lists_the_tenants_own_rows_only_and_is_read_only(
    page: str, tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., Any]
) -> None:
    ours, theirs = MAKERS[page](tenant_a), MAKERS[page](tenant_b)
    client = Client()
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))

    listing = client.get(reverse(f"admin:{page}_changelist"))
    own = client.get(reverse(f"admin:{page}_change", args=[ours.pk]))
    other = client.get(reverse(f"admin:{page}_change", args=[theirs.pk]))
    before = snapshot(ours)
    post = client.post(reverse(f"admin:{page}_change", args=[ours.pk]), {})

    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    assert list(listing.context["cl"].result_list) == [ours]
    assert own.status_code == 200
    assert other.status_code in (302, 404)  # Django's admin redirects a missing object to the index with a message
    assert post.status_code == 403
    assert snapshot(ours) == before
    assert client.get(reverse(f"admin:{page}_add")).status_code == 403


def test_the_location_page_shows_its_evses_and_connectors(tenant_a: Tenant, make_staff: Callable[..., Any]) -> None:
    location = rig.partner_location_for(tenant_a)
    client = Client()
    client.force_login(make_staff(tenant_a, Role.OPERATIONS, is_staff=True))

    page = client.get(reverse("admin:stations_partnerlocation_change", args=[location.pk])).content.decode()

    assert "NL*CPO*E1" in page
    assert "1: IEC_62196_T2 SOCKET AC_3_PHASE" in page
