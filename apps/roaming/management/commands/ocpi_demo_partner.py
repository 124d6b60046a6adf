"""The demo's roaming partner (`make run`): a simulated eMSP (apps/roaming/partner_sim.py) configured as a partner of
a demo tenant, registered with it over OCPI, pushing its driver's token, and answering real-time authorization, so a
demo charger's session of that driver is a roaming session (ChargingSession.roaming_partner NL*SIM)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.roaming import services
from apps.roaming.management.platform_wait import wait_for
from apps.roaming.models import PartnerStatus, RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.tenants.models import Tenant

DEMO_PUSHED_TOKEN = "NLSIM0000000001"  # pushed, whitelist ALWAYS: the charger's StartTransaction decides locally
DEMO_REALTIME_TOKEN = "NLSIM0000000002"  # not pushed: authorized in real time at the simulated eMSP
MODULES = ["tokens", "commands", "chargingprofiles"]


class Command(BaseCommand):
    help = "Run the demo's roaming partner: a simulated eMSP registered with a demo tenant (until Ctrl-C)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cpo", default="http://127.0.0.1:8000", help="This platform's base URL.")
        parser.add_argument("--tenant", default="voltnet", help="The demo tenant (slug) the partner roams with.")
        parser.add_argument("--port", type=int, default=9411)
        parser.add_argument("--seconds", type=float, default=0, help="Stop after this long (0: run until Ctrl-C).")
        parser.add_argument("--wait", type=float, default=60, help="How long to wait for the platform to answer.")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}: run `manage.py seed_demo` first.")
        versions_url = f"{options['cpo'].rstrip('/')}/ocpi/versions"
        wait_for(f"{options['cpo'].rstrip('/')}/healthz", options["wait"])
        sim = PartnerSimulator(port=options["port"], country_code="NL", party_id="SIM", name="Demo eMSP (simulated)")
        sim.start()
        try:
            token_a = self._partner_token_a(tenant)
            answer = sim.register_with(versions_url, token_a)
            if answer.get("status_code") != 1000:
                raise CommandError(f"Registration failed: {answer}")
            pushed = sim.push_token(sim.token_object(DEMO_PUSHED_TOKEN, whitelist="ALWAYS"))
            sim.authorizations[DEMO_REALTIME_TOKEN] = {
                "allowed": "ALLOWED",
                "token": sim.token_object(DEMO_REALTIME_TOKEN, whitelist="NEVER"),
            }
            self.stdout.write(
                f"roaming partner NL*SIM of {tenant.slug}: registered at {versions_url}; token {DEMO_PUSHED_TOKEN} "
                f"pushed ({pushed.get('status_code')}), {DEMO_REALTIME_TOKEN} authorized in real time"
            )
            deadline = time.monotonic() + options["seconds"] if options["seconds"] else None
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            sim.stop()

    def _partner_token_a(self, tenant: Tenant) -> str:
        """The demo partner (created the first time), back to pending with a fresh token A: the simulator starts
        with new tokens of its own every run, so it registers again."""
        partner = RoamingPartner.objects.filter(tenant=tenant, country_code="NL", party_id="SIM").first()
        if partner is None:
            partner, token_a = services.partner_create(
                tenant=tenant,
                name="Demo eMSP (simulated)",
                country_code="NL",
                party_id="SIM",
                roles=["EMSP"],
                enabled_modules=MODULES,
            )
            return token_a
        if partner.status == PartnerStatus.SUSPENDED:
            partner = services.partner_reinstate(partner=partner)
        if partner.status != PartnerStatus.PENDING or partner.our_token_kind != "A":
            partner = services.partner_unregistered(partner_id=partner.pk)
        _, token_a = services.partner_token_a_issue(partner=partner)
        return token_a
