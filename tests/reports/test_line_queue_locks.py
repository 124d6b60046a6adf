"""A charger's writes never wait on the export-line renderer (issue 20 item 2): the queueing triggers and the
render batch take no lock the other needs. Two real connections, the real triggers and the real render batch.

The reported deadlock: a MeterValues/StopTransaction transaction holds its session row (SELECT ... FOR UPDATE) and
updates it; the update's trigger queued the session with an upsert that waited for the render batch's lock on the
queue row, while the batch, at its commit, checked its line's foreign key to the session (FOR KEY SHARE) and waited
for the charger's transaction: PostgreSQL aborted one of them, and the charger got an InternalError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from apps.reports import lines, services
from apps.reports.models import PendingLine, SessionLine
from apps.sessions.models import ChargingSession
from apps.tenants.models import Tenant
from tests.reports.factories import make_sessions
from tests.stations.factories import EvseFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

WRITER_PATIENCE = 3.0  # seconds a charger's statement may wait before the test calls it a wait on the renderer


@pytest.fixture
def tenant() -> Tenant:
    return TenantFactory(slug="locks", timezone="Europe/Berlin")


def queued() -> list[int]:
    return sorted(set(PendingLine.objects.values_list("session_id", flat=True)))


def open_batch(renderer: psycopg.Connection[Any]) -> list[int]:
    """The beat task's render batch, executed and not committed yet."""
    renderer.execute("SET DateStyle = 'ISO, YMD'")
    return sorted(row[0] for row in renderer.execute(lines.render_batch_sql(100)).fetchall())


class Writer(threading.Thread):
    """A charger's transaction on its own connection, step by step: `steps` run in order, then it commits."""

    def __init__(self, steps: list[Callable[[psycopg.Connection[Any]], object]]) -> None:
        super().__init__(daemon=True)  # no lock timeout: a wait shows as the deadlock PostgreSQL detects
        self.steps = steps
        self.errors: list[BaseException] = []
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            with services.export_connection() as conn:
                for step in self.steps:
                    step(conn)
                conn.commit()
            self.finished_at = time.monotonic()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.errors.append(error)


def lock_session(session_id: int) -> Callable[[psycopg.Connection[Any]], object]:
    return lambda conn: conn.execute("SELECT id FROM charging_chargingsession WHERE id = %s FOR UPDATE", [session_id])


def update_session(session_id: int, reason: str) -> Callable[[psycopg.Connection[Any]], object]:
    return lambda conn: conn.execute(
        "UPDATE charging_chargingsession SET stop_reason = %s WHERE id = %s", [reason, session_id]
    )


def test_a_charger_updating_a_session_of_an_open_render_batch_neither_waits_nor_deadlocks(tenant: Tenant) -> None:
    # given a completed session, queued, and a render batch that holds it (not committed yet)
    (session,) = make_sessions(tenant, 1, evse=EvseFactory(charge_point__tenant=tenant))
    with services.export_connection() as renderer:
        assert open_batch(renderer) == [session.pk]

        # when a charger's transaction locks the session and updates it (a late StopTransaction, say)
        writer = Writer([lock_session(session.pk), update_session(session.pk, "Remote")])
        writer.start()
        writer.join(WRITER_PATIENCE)
        written_before_the_batch_commits = writer.finished_at is not None
        try:
            renderer.commit()  # the batch's commit takes no lock on the session either
        except psycopg.errors.DeadlockDetected as error:  # what the issue saw
            pytest.fail(f"the charger and the render batch deadlocked: {error}")
        writer.join(10)

    # then the charger's transaction went through at once, the batch committed, and the session is queued again
    assert writer.errors == []
    assert written_before_the_batch_commits
    assert queued() == [session.pk]
    services.session_lines_render()
    assert queued() == []
    assert "Remote" in "".join(SessionLine.objects.get(session_id=session.pk).parts)


def test_a_charger_holding_one_session_of_a_committing_batch_never_deadlocks_it(tenant: Tenant) -> None:
    # given two completed sessions in one open render batch
    first, second = make_sessions(tenant, 2, evse=EvseFactory(charge_point__tenant=tenant))
    with services.export_connection() as renderer:
        assert open_batch(renderer) == [first.pk, second.pk]
        # and a charger's transaction that holds the second session
        with services.export_connection() as charger:
            lock_session(second.pk)(charger)

            # when the batch commits while the charger's transaction still runs, and that transaction then locks
            # the first session too (a transaction touching two sessions of one connector)
            commit_errors: list[BaseException] = []

            def commit() -> None:
                try:
                    renderer.commit()
                except BaseException as error:  # noqa: BLE001
                    commit_errors.append(error)

            committing = threading.Thread(target=commit, daemon=True)
            committing.start()
            committing.join(WRITER_PATIENCE)
            batch_waited_for_the_charger = committing.is_alive()
            charger.execute(f"SET lock_timeout = '{int(WRITER_PATIENCE * 1000)}ms'")
            lock_session(first.pk)(charger)
            update_session(first.pk, "Local")(charger)
            charger.commit()
            committing.join(10)

    # then neither waited for the other and both committed
    assert commit_errors == []
    assert not batch_waited_for_the_charger
    assert queued() == [first.pk]
    assert set(SessionLine.objects.values_list("session_id", flat=True)) == {first.pk, second.pk}


def test_the_queue_triggers_only_insert(tenant: Tenant) -> None:
    """Every change queues by inserting a row (nothing to wait for); the renderer deletes what it rendered."""
    (session,) = make_sessions(tenant, 1, evse=EvseFactory(charge_point__tenant=tenant))
    ChargingSession.objects.filter(pk=session.pk).update(stop_reason="Remote")
    ChargingSession.objects.filter(pk=session.pk).update(stop_reason="Local")

    assert PendingLine.objects.filter(session_id=session.pk).count() == 3  # the insert and two updates
    assert services.session_lines_render() == 1
    assert queued() == []
