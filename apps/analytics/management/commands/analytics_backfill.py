"""Record KPI facts for sessions that never went through the charger path (imported or migrated history),
then fold them into the rollups: `manage.py analytics_backfill [--tenant SLUG ...]`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.analytics import services
from apps.tenants.models import Tenant


class Command(BaseCommand):
    help = "Backfill analytics facts from stored sessions and run the rollups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", action="append", default=[], help="tenant slug (default: every tenant)")

    def handle(self, *args: Any, **options: Any) -> None:
        slugs: list[str] = options["tenant"]
        tenants = Tenant.objects.filter(slug__in=slugs) if slugs else Tenant.objects.all()
        missing = set(slugs) - set(tenants.values_list("slug", flat=True))
        if missing:
            raise CommandError(f"unknown tenant: {', '.join(sorted(missing))}")
        for tenant in tenants.order_by("slug"):
            added = services.session_facts_backfill(tenant_id=tenant.pk)
            self.stdout.write(f"{tenant.slug}: {added} facts added")
        for result in services.rollup_run(lag=dt.timedelta(0)):
            self.stdout.write(f"rollup {result.granularity}: {result.buckets} buckets updated")
