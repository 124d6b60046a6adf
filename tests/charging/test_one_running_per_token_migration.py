"""The migration that makes "one running session per token" a database guarantee first ends the older running
duplicates a database may hold from before (the race it closes), with an audit row, keeping the newest."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db import connection

from apps.sessions.models import ChargingSession, SessionEvent
from apps.tenants.models import Tenant
from tests.charging.factories import ChargingSessionFactory
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db  # rolled back: the index dropped below comes back

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_the_migration_ends_older_running_duplicates_of_a_tag_and_keeps_the_newest(tenant_a: Tenant) -> None:
    migration = importlib.import_module("apps.sessions.migrations.0007_one_running_session_per_token")
    with connection.cursor() as cursor:  # the state before the migration: no index, duplicates possible
        cursor.execute("DROP INDEX session_one_running_per_tag")
    cp = ChargePointFactory(tenant=tenant_a)
    oldest = ChargingSessionFactory(charge_point=cp, id_tag="dup", status="active", started_at=T0)
    older = ChargingSessionFactory(
        charge_point=cp, connector_id=2, id_tag="DUP", status="suspended", started_at=T0 + dt.timedelta(hours=1)
    )
    newest = ChargingSessionFactory(
        charge_point=cp, connector_id=3, id_tag="Dup", status="active", started_at=T0 + dt.timedelta(hours=2)
    )
    alone = ChargingSessionFactory(charge_point=cp, connector_id=4, id_tag="other", status="active", started_at=T0)
    ended = ChargingSessionFactory(charge_point=cp, connector_id=5, id_tag="dup", status="completed", started_at=T0)

    with connection.cursor() as cursor:
        cursor.execute(migration.END_OLDER_DUPLICATES)

    statuses = dict(
        ChargingSession.objects.filter(pk__in=[oldest.pk, older.pk, newest.pk, alone.pk, ended.pk]).values_list(
            "pk", "status"
        )
    )
    assert statuses == {
        oldest.pk: "failed",
        older.pk: "failed",
        newest.pk: "active",
        alone.pk: "active",
        ended.pk: "completed",
    }
    events = sorted(SessionEvent.objects.values_list("session_id", "from_status", "to_status"))
    assert events == sorted([(oldest.pk, "active", "failed"), (older.pk, "suspended", "failed")])
    assert ChargingSession.objects.get(pk=oldest.pk).failure_reason == "another session of this token was running"
