"""`make run PEER=1`: the peer platform offers a registration token (`demo_peer offer`) and the main one links with
it (`demo_peer link`): both registered, each CPO and eMSP towards the other, Voltnet's retail rule in place."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.roaming.models import PartnerStatus, RoamingPartner
from apps.tariffs.models import RetailMode
from tests.platforms import Platform, peer_platform
from tests.tenants.factories import TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def peer() -> Iterator[Platform]:
    platform = peer_platform("demopeer")
    try:
        yield platform.start()
    finally:
        platform.stop()


def test_the_demo_platforms_link_as_cpo_and_emsp_both_ways(peer: Platform, live_server: object, tmp_path: Path) -> None:
    token_file = tmp_path / "token-a"
    out = peer.python(
        "from django.core.management import call_command; from tests.tenants.factories import TenantFactory; "
        "TenantFactory(slug='nordlicht', ocpi_country_code='NL', ocpi_party_id='NLT'); "
        "call_command('demo_peer', 'offer', tenant='nordlicht', party='DE*VLT', name='Voltnet', "
        f"token_file='{token_file}')"
    )
    assert "registration token for Voltnet" in out
    assert token_file.read_text().strip()
    TenantFactory(slug="voltnet", ocpi_country_code="DE", ocpi_party_id="VLT")  # (seed_demo's tenants, without data)
    call_command(
        "demo_peer", "link", tenant="voltnet", party="NL*NLT", name="Nordlicht", token_file=str(token_file),
        versions_url=f"{peer.url}/ocpi/versions", base_url=live_server.url, wait=30,  # type: ignore[attr-defined]
    )  # fmt: skip
    partner = RoamingPartner.objects.get(tenant__slug="voltnet", party_id="NLT")
    assert partner.status == PartnerStatus.REGISTERED
    assert sorted(partner.our_roles) == ["CPO", "EMSP"]
    assert partner.retail_rule.mode == RetailMode.MARKUP  # type: ignore[attr-defined]
    assert partner.retail_rule.markup_percent == Decimal("10.00")  # type: ignore[attr-defined]
    assert not token_file.exists()  # used up
    on_peer = peer.python(
        "from apps.roaming.models import RoamingPartner as P; p = P.objects.get(party_id='VLT'); "
        "print('RESULT', p.status, sorted(p.our_roles))"
    )
    assert re.search(r"RESULT registered \['CPO', 'EMSP'\]", on_peer), on_peer
    # a second link (a restart of `make run PEER=1`) leaves the registration as it is
    call_command(
        "demo_peer", "link", tenant="voltnet", party="NL*NLT", name="Nordlicht", token_file=str(token_file),
        versions_url=f"{peer.url}/ocpi/versions", base_url=live_server.url, wait=30,  # type: ignore[attr-defined]
    )  # fmt: skip
    assert RoamingPartner.objects.get(pk=partner.pk).status == PartnerStatus.REGISTERED
