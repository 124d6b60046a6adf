"""The suite runs against the migrated schema: triggers, constraints and data migrations are part of the product."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader


@pytest.mark.django_db
def test_the_test_database_is_built_by_every_migration() -> None:
    loader = MigrationLoader(connection)
    on_disk = {key for key in loader.disk_migrations if not key[0].startswith(("admin", "auth", "contenttypes"))}

    missing = {key for key in on_disk if key not in loader.applied_migrations}

    assert on_disk
    assert missing == set()


@pytest.mark.django_db
def test_triggers_installed_only_by_migrations_are_present() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        triggers = {name for (name,) in cursor.fetchall()}

    assert "charging_cdr_no_update" in triggers
    assert any(name.startswith("reports_") for name in triggers), triggers


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    # exits non-zero (SystemExit) when a model change has no migration
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
