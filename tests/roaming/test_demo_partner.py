"""`manage.py ocpi_demo_partner` (the demo's roaming partner in `make run`) against a live platform: it configures the
partner, registers over OCPI, pushes its driver's token; run again, it registers afresh."""

from __future__ import annotations

from django.core.management import call_command

from apps.customers.models import Token, TokenSource
from apps.roaming.models import PartnerStatus, RoamingPartner
from apps.tenants.models import Tenant


def test_the_demo_partner_registers_and_pushes_its_token(ocpi_base: str, tenant_a: Tenant) -> None:
    for _ in range(2):  # a second run (a new `make run`) finds the partner and registers again
        call_command("ocpi_demo_partner", cpo=ocpi_base, tenant=tenant_a.slug, port=0, seconds=0.1, wait=10)

    partner = RoamingPartner.objects.get(tenant=tenant_a, country_code="NL", party_id="SIM")
    assert partner.status == PartnerStatus.REGISTERED
    assert set(partner.enabled_modules) >= {"tokens", "commands", "chargingprofiles"}
    token = Token.objects.get(tenant=tenant_a, uid="NLSIM0000000001")
    assert (token.source, token.country_code, token.party_id, token.whitelist) == (
        TokenSource.ROAMING,
        "NL",
        "SIM",
        "ALWAYS",
    )
    assert token.roaming_push.partner == partner
