from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from django.db import connection


@pytest.fixture(scope="session", autouse=True)
def billing_triggers(django_db_setup: Any, django_db_blocker: Any) -> None:
    """Tests build the schema from the models (--no-migrations); install the immutability triggers of
    migration billing/0002 the way the migration does, so the tests exercise the real SQL."""
    migration = importlib.import_module("apps.billing.migrations.0002_immutable_issued_invoices")
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(migration.BACKWARD)
        cursor.execute(migration.FORWARD)


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Rendered PDFs go to a fresh folder per test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT  # type: ignore[no-any-return]
