from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.db import connection, migrations

from tests.ocpp.conftest import connect, server, station  # noqa: F401 (fixtures: a real WebSocket server and charger)


@pytest.fixture(scope="session", autouse=True)
def cdr_triggers(django_db_setup: Any, django_db_blocker: Any) -> None:
    """Tests build the schema from the models (--no-migrations); install the CDR immutability triggers of
    migrations charging/0003 (no update) and 0004 (no delete) with the migrations' own SQL."""
    full = importlib.import_module("apps.sessions.migrations.0003_sessions_full")
    no_delete = importlib.import_module("apps.sessions.migrations.0004_cdr_json_numbers_no_delete")
    (trigger,) = [op for op in full.Migration.operations if isinstance(op, migrations.RunSQL)]
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(no_delete.NO_DELETE_REVERSE)
        cursor.execute(trigger.reverse_sql)
        cursor.execute(trigger.sql)
        cursor.execute(no_delete.NO_DELETE)
