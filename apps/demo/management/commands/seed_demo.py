from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.demo.services import MAIN_TENANTS, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo network (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--tenants",
            default=",".join(MAIN_TENANTS),
            help="Demo tenants to seed, by slug (the peer platform of `make run PEER=1` seeds nordlicht).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = [slug for slug in options["tenants"].split(",") if slug]
        logins, keys = seed_demo(slugs)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  {'tenant':<15} {'username':<18} {'password':<15} role")
        for login in logins:
            self.stdout.write(f"  {login.tenant:<15} {login.username:<18} {login.password:<15} {login.role}")
        self.stdout.write("  API keys (header `Authorization: Api-Key <key>`):")
        for key in keys:
            self.stdout.write(f"  {key.tenant:<15} {key.key}")
        from apps.demo.stations_demo import DEMO_CHARGER_PASSWORD, demo_charger_ids
        from apps.tenants.models import Tenant

        chargers = [i for t in Tenant.objects.order_by("slug") for i in demo_charger_ids(t) if t.slug in slugs]
        self.stdout.write(
            f"  Simulated chargers (ws://…/ocpp/<id>, Basic password {DEMO_CHARGER_PASSWORD}): {', '.join(chargers)}"
        )
