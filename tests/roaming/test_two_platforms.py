"""Two instances of the platform, separate databases and processes, set up to roam with each other from the admin
alone (issue 15, "two platforms, one journey"): each tenant is CPO and eMSP towards the other."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import pytest

from apps.roaming.models import PartnerStatus, RoamingPartner
from tests.platforms import Platform, admin_messages, admin_post, peer_platform, platform_for_test_db
from tests.tenants.factories import MembershipFactory, TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ALL_MODULES = ["cdrs", "commands", "locations", "sessions", "tariffs", "tokens"]
SETUP_B = """
from apps.roaming import services
from apps.tenants.models import Role
from tests.tenants.factories import MembershipFactory, TenantFactory
tenant = TenantFactory(name="Nordlicht", slug="nordlicht", ocpi_country_code="NL", ocpi_party_id="NLT")
MembershipFactory(tenant=tenant, role=Role.ADMIN, user__username="nl-admin", user__password="nl-password")
partner, _ = services.partner_create(
    tenant=tenant, name="Voltnet", country_code="DE", party_id="VLT", our_roles=["CPO", "EMSP"],
    roles=["CPO", "EMSP"], enabled_modules=%(modules)r,
)
print("partner", partner.pk)
"""


@pytest.fixture
def platforms() -> Iterator[tuple[Platform, Platform]]:
    a, b = platform_for_test_db(), peer_platform()
    try:
        b.start()
        a.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_two_platforms_register_with_each_other_from_the_admin(platforms: tuple[Platform, Platform]) -> None:
    a, b = platforms
    # B (Nordlicht, NL*NLT) knows A as a partner: its operator issues a registration token from B's admin
    b_partner_id = int(re.search(r"partner (\d+)", b.python(SETUP_B % {"modules": ALL_MODULES})).group(1))  # type: ignore[union-attr]
    b_admin = b.admin("nl-admin", "nl-password")
    page = admin_post(
        b_admin,
        f"{b.url}/admin/roaming/roamingpartner/",
        {"action": "issue_token_a", "_selected_action": b_partner_id, "index": 0, "select_across": 0},
    )
    issued = [m for m in admin_messages(page.text) if "CREDENTIALS_TOKEN_A" in m]
    assert len(issued) == 1, admin_messages(page.text)
    token_a = issued[0].rsplit(": ", 1)[1]

    # A (Voltnet, DE*VLT) gets B's versions URL and token A out of band and registers from A's admin
    tenant = TenantFactory(name="Voltnet", slug="voltnet", ocpi_country_code="DE", ocpi_party_id="VLT")
    MembershipFactory(tenant=tenant, user__username="vlt-admin")
    # the password hashed as the platform hashes it (the test settings use a fast hasher the platform does not know)
    a.python(
        "from django.contrib.auth import get_user_model; u = get_user_model().objects.get(username='vlt-admin'); "
        "u.set_password('vlt-password'); u.save()"
    )
    from apps.roaming import services

    partner, _token = services.partner_create(
        tenant=tenant,
        name="Nordlicht",
        country_code="NL",
        party_id="NLT",
        our_roles=["CPO", "EMSP"],
        roles=["CPO", "EMSP"],
        enabled_modules=ALL_MODULES,
        versions_url=f"{b.url}/ocpi/versions",
        their_token=token_a,
    )
    a_admin = a.admin("vlt-admin", "vlt-password")
    page = admin_post(
        a_admin,
        f"{a.url}/admin/roaming/roamingpartner/",
        {"action": "register", "_selected_action": partner.pk, "index": 0, "select_across": 0},
    )
    assert any("register done" in m for m in admin_messages(page.text)), admin_messages(page.text)

    # both sides are registered, each knowing the other's endpoints and a token to call them with
    partner = RoamingPartner.objects.get(pk=partner.pk)
    assert partner.status == PartnerStatus.REGISTERED
    assert partner.their_token
    assert partner.their_token != token_a
    assert {e["identifier"] for e in partner.endpoints} >= {"credentials", "locations", "tokens"}
    on_b = b.python(
        "from apps.roaming.models import RoamingPartner as P; "
        f"p = P.objects.get(pk={b_partner_id}); print('RESULT', p.status, p.version, bool(p.their_token), "
        "sorted({e['identifier'] for e in p.endpoints}))"
    )
    status, version, has_token, identifiers = re.search(r"RESULT (\S+) (\S+) (\S+) (.*)", on_b).groups()  # type: ignore[union-attr]
    assert (status, version, has_token) == ("registered", "2.2.1", "True")
    assert {"credentials", "locations", "tokens"} <= set(ast.literal_eval(identifiers))
