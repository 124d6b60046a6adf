"""Server-side prepared statements for the few hot reads whose planning costs more than their execution.

Django binds parameters on the client (psycopg's ClientCursor, which never prepares) and opens its connections
with `prepare_threshold=None`, which also turns off psycopg's prepared statements for every other cursor of the
connection: `execute(..., prepare=True)` on a server-side-binding cursor then silently plans the statement anew
each time (the search relied on it and was not prepared at all: `pg_prepared_statements` stayed empty).
`prepared_cursor` gives a server-side-binding cursor on the same connection with prepared statements on, so a
statement run with `prepare=True` is parsed and planned once per connection and shape (psycopg keeps up to
`prepared_max` of them, 100 by default) and PostgreSQL may reuse a generic plan for it. Django's own cursors are
not affected (a ClientCursor ignores the threshold)."""

from __future__ import annotations

from typing import Any

import psycopg

# psycopg's default: a statement run this many times on a connection is prepared even without prepare=True
PREPARE_THRESHOLD = 5


def prepared_cursor(django_cursor: Any) -> psycopg.Cursor[Any]:
    """A server-side-binding psycopg cursor on the connection of `django_cursor` (a Django cursor), with prepared
    statements enabled on that connection."""
    connection = django_cursor.connection
    if connection.prepare_threshold is None:
        connection.prepare_threshold = PREPARE_THRESHOLD
    return psycopg.Cursor(connection)
