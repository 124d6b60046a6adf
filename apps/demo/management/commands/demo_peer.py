"""The two demo platforms roaming with each other (`make run PEER=1`): the main instance's Voltnet (DE*VLT) and the
peer instance's Nordlicht (NL*NLT) are each CPO and eMSP towards the other, set up as an operator would in the
admin, over OCPI between the two processes.

- `demo_peer offer` runs on the peer instance: Nordlicht's partner entry for Voltnet (created the first time) and,
  while it is not registered, a fresh CREDENTIALS_TOKEN_A written to `--token-file` (handed over "out of band").
- `demo_peer link` runs on the main instance once both answer: Voltnet's partner entry for Nordlicht with the peer's
  versions URL and that token, the registration (the admin action "Register with the selected partners"), and a
  retail rule (Voltnet's drivers pay Nordlicht's price plus 10 %); then it stays up (honcho ends every process when
  one exits) until Ctrl-C.

A partner already registered on both sides stays as it is; after `make clean` of one side only, unregister the other
side's partner in its admin (or delete it) and start again.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.roaming import services
from apps.roaming.management.platform_wait import wait_for
from apps.roaming.models import PartnerStatus, RoamingPartner
from apps.roaming.ocpi import handshake
from apps.tariffs.models import RetailMode, RoamingRetailRule
from apps.tenants.models import Tenant

MODULES = ["cdrs", "commands", "locations", "sessions", "tariffs", "tokens"]
ROLES = ["CPO", "EMSP"]


class Command(BaseCommand):
    help = "Set up roaming between the two demo platforms (make run PEER=1): `offer` on the peer, `link` on main."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("step", choices=["offer", "link"])
        parser.add_argument("--tenant", required=True, help="Our demo tenant (slug).")
        parser.add_argument("--party", required=True, help="The other side's OCPI party, e.g. NL*NLT.")
        parser.add_argument("--name", required=True, help="The other side's name in our partner registry.")
        parser.add_argument("--token-file", required=True, type=Path)
        parser.add_argument("--versions-url", default="", help="link: the peer's versions URL.")
        parser.add_argument("--base-url", default="", help="link: our base URL as the peer reaches it.")
        parser.add_argument("--wait", type=float, default=120, help="link: how long to wait for both platforms.")
        parser.add_argument("--stay", action="store_true", help="link: keep running after linking (for honcho).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}: run `manage.py seed_demo` first.")
        country_code, _, party_id = options["party"].partition("*")
        partner = RoamingPartner.objects.filter(tenant=tenant, country_code=country_code, party_id=party_id).first()
        if options["step"] == "offer":
            self._offer(tenant, partner, country_code, party_id, options)
        else:
            self._link(tenant, partner, country_code, party_id, options)
            if options["stay"]:
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass

    def _offer(
        self, tenant: Tenant, partner: RoamingPartner | None, cc: str, pid: str, options: dict[str, Any]
    ) -> None:
        token_file = Path(options["token_file"])
        if partner is None:
            partner, token_a = services.partner_create(
                tenant=tenant, name=options["name"], country_code=cc, party_id=pid, our_roles=ROLES, roles=ROLES,
                enabled_modules=MODULES,
            )  # fmt: skip
        elif partner.status == PartnerStatus.PENDING:
            partner, token_a = services.partner_token_a_issue(partner=partner)
        else:
            token_file.unlink(missing_ok=True)
            self.stdout.write(f"{tenant.slug}: {partner} is {partner.status}; no new registration token")
            return
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token_a)
        token_file.chmod(0o600)
        self.stdout.write(f"{tenant.slug}: registration token for {partner} written to {token_file}")

    def _link(self, tenant: Tenant, partner: RoamingPartner | None, cc: str, pid: str, options: dict[str, Any]) -> None:
        if partner is not None and partner.status == PartnerStatus.REGISTERED:
            self.stdout.write(f"{tenant.slug}: {partner} already registered")
            return
        versions_url, base_url = options["versions_url"], options["base_url"].rstrip("/")
        if not versions_url or not base_url:
            raise CommandError("link needs --versions-url and --base-url.")
        wait_for(versions_url.rsplit("/ocpi/", 1)[0] + "/healthz", options["wait"])
        wait_for(f"{base_url}/healthz", options["wait"])
        token_file = Path(options["token_file"])
        if not token_file.exists():
            raise CommandError(f"No registration token in {token_file}: run `demo_peer offer` on the peer first.")
        token_a = token_file.read_text().strip()
        if partner is None:
            partner, _ours = services.partner_create(
                tenant=tenant, name=options["name"], country_code=cc, party_id=pid, our_roles=ROLES, roles=ROLES,
                enabled_modules=MODULES, versions_url=versions_url, their_token=token_a,
            )  # fmt: skip
        else:
            partner = services.partner_update(partner=partner, versions_url=versions_url, their_token=token_a)
        RoamingRetailRule.objects.get_or_create(
            partner=partner,
            defaults={
                "tenant": tenant,
                "mode": RetailMode.MARKUP,
                "markup_percent": Decimal("10.00"),
                "vat_rate": tenant.default_vat_rate,
                "currency": tenant.currency,
            },
        )
        try:
            handshake.register_with_partner(partner=partner, base_url=base_url)
        except ApplicationError as exc:
            raise CommandError(f"Registration with {partner} failed: {exc.message}") from exc
        token_file.unlink(missing_ok=True)  # used: the peer issued C in exchange
        self.stdout.write(self.style.SUCCESS(f"{tenant.slug}: registered with {partner} at {versions_url}"))
