"""A transactional test's teardown that empties only the tables the test wrote to.

Django's `TransactionTestCase` flushes after every transactional test: one `TRUNCATE` of all ~140 tables (and their
partitions and indexes: every one gets a new file), then `post_migrate` re-creates the content types and
permissions it has just deleted. Measured on this 2-core machine: 1.3-2.0 s per test, ~750 transactional tests,
so about 1,300 s of a full run's worker time went into emptying tables that were mostly empty already.

Here one query finds the tables that have rows, and a `DELETE` empties each of them, with triggers and foreign-key
checks off for that transaction (`session_replication_role = replica`, as `TRUNCATE` skips row triggers too: the
immutable-CDR and issued-invoice triggers must not stop a teardown). The content types and permissions stay (they
are the same for every test, and their ids stay valid in the caches of the daphne and Celery processes a test
started). Measured: ~25 ms per teardown. Where the role cannot be set (a database user that is not a superuser),
or a test asked for something else (available_apps, serialized rollback), Django's own flush runs.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connections, transaction
from django.test import TransactionTestCase

KEPT = frozenset({"django_content_type", "auth_permission"})

_django_teardown = TransactionTestCase._fixture_teardown


def _empty(alias: str) -> bool:
    """Delete every row of the database's Django tables but KEPT; False (nothing changed) where it cannot."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return False
    tables = sorted(set(connection.introspection.django_table_names(only_existing=True, include_views=False)) - KEPT)
    if not tables:
        return True
    quote = connection.ops.quote_name
    probe = " UNION ALL ".join(f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {quote(t)})" for i, t in enumerate(tables))
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(probe)
            full = [tables[row[0]] for row in cursor.fetchall()]
            for table in full:
                cursor.execute(f"DELETE FROM {quote(table)}")
    except DatabaseError:
        return False
    return True


def _fixture_teardown(self: Any) -> None:
    if self.available_apps is not None or self.serialized_rollback:
        _django_teardown(self)
        return
    for alias in self._databases_names(include_mirrors=False):
        if not _empty(alias):
            _django_teardown(self)
            return


def install() -> None:
    TransactionTestCase._fixture_teardown = _fixture_teardown  # type: ignore[method-assign]
