"""Time-partitioned tables (native PostgreSQL range partitioning on a timestamp column, one partition per day).

The platform's append-only logs grow by tens of millions of rows a day at 10,000 chargers; deleting old rows
row by row costs as much as writing them and leaves the table bloated. Partitioned by day, retention drops whole
partitions (a catalog change, milliseconds) and a query bounded in time reads only its days (partition pruning).

- `convert_to_partitioned`: turns an existing table into a partitioned one without rewriting or blocking it for
  longer than a catalog change: its rows become one partition (`<table>_legacy`, everything before the cut) after
  a CHECK constraint proves its range (validated while writes go on); new days get partitions of their own.
- `ensure_partitions`: today's and the next days' partitions exist (beat, hourly), each with its own primary key
  on `id` (the parent has none: PostgreSQL would need the partition key in it, and the ids come from one identity).
  A unique key that holds the partition key lives on the parent (meter values' sample key, KPI facts' (session,
  kind, at)), so ON CONFLICT works across partitions.
  A DEFAULT partition catches what falls outside (never expected): its rows are moved into the day's partition
  when that partition is created.
- `drop_partitions_before`: retention; a partition goes once its whole range is older than the cutoff.

pg_partman (Debian's `postgresql-15-partman`) would do the same maintenance, but installing it can pull a newer
PostgreSQL server package under running clusters (seen on this machine); the few statements here need nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

DAY = dt.timedelta(days=1)
_BOUND = re.compile(r"FROM \((?P<lo>MINVALUE|'[^']+')\) TO \((?P<hi>MAXVALUE|'[^']+')\)")


@dataclass(frozen=True)
class Partition:
    name: str
    start: dt.datetime | None  # None: MINVALUE (or the DEFAULT partition)
    end: dt.datetime | None  # None: MAXVALUE (or the DEFAULT partition)
    default: bool = False


def _stamp(text: str) -> dt.datetime | None:
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return dt.datetime.fromisoformat(text.strip("'")).astimezone(dt.UTC)


def partitions(table: str, cursor: Any = None) -> list[Partition]:
    """The partitions of `table`, by start (the DEFAULT one last)."""
    sql = (
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass"
    )
    if cursor is None:
        with connection.cursor() as own:
            own.execute(sql, [table])
            rows = own.fetchall()
    else:
        cursor.execute(sql, [table])
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        if bound == "DEFAULT":
            found.append(Partition(name, None, None, default=True))
            continue
        match = _BOUND.search(bound)
        assert match is not None, bound
        found.append(Partition(name, _stamp(match["lo"]), _stamp(match["hi"])))
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda p: (p.default, p.start or epoch))


def _day(at: dt.datetime) -> dt.datetime:
    at = at.astimezone(dt.UTC)
    return dt.datetime(at.year, at.month, at.day, tzinfo=dt.UTC)


def _lit(at: dt.datetime) -> str:
    return f"'{at.isoformat()}'"


def _values(start: dt.datetime | None, end: dt.datetime) -> str:
    return f"FOR VALUES FROM ({'MINVALUE' if start is None else _lit(start)}) TO ({_lit(end)})"


def partition_name(table: str, day: dt.datetime) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _create_day(cursor: Any, table: str, column: str, day: dt.datetime) -> str:
    """The day's partition, with the rows the DEFAULT partition holds for it moved in (one transaction)."""
    name = partition_name(table, day)
    default = f"{table}_default"
    end = day + DAY
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(f'ALTER TABLE "{name}" ADD PRIMARY KEY (id)')
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{default}" WHERE "{column}" >= %s AND "{column}" < %s RETURNING *)'  # noqa: S608
        f' INSERT INTO "{name}" SELECT * FROM moved',
        [day, end],
    )
    cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" {_values(day, end)}')
    return name


def ensure_partitions(table: str, column: str, *, days_ahead: int = 7, now: dt.datetime | None = None) -> list[str]:
    """Create the missing day partitions from today to `days_ahead` days on (after the last bounded one);
    returns the names created."""
    today = _day(now or dt.datetime.now(dt.UTC))
    created = []
    for offset in range(days_ahead + 1):
        day = today + offset * DAY
        with transaction.atomic(), connection.cursor() as cursor:
            # one maintainer at a time (beat may overlap a migration or a second beat)
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
            if any(_covers(p, day) for p in partitions(table, cursor)):
                continue
            created.append(_create_day(cursor, table, column, day))
    return created


def _covers(partition: Partition, day: dt.datetime) -> bool:
    if partition.default:
        return False
    starts_before = partition.start is None or partition.start <= day
    ends_after = partition.end is None or partition.end > day
    return starts_before and ends_after


def drop_partitions_before(table: str, cutoff: dt.datetime) -> list[str]:
    """Drop every bounded partition whose whole range lies before `cutoff` (retention); returns their names."""
    dropped = []
    for partition in partitions(table):
        if partition.default or partition.end is None or partition.end > cutoff:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
            cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{partition.name}"')
            cursor.execute(f'DROP TABLE "{partition.name}"')
        dropped.append(partition.name)
    return dropped


def convert_to_partitioned(
    cursor: Any,
    *,
    table: str,
    column: str,
    indexes: dict[str, str],
    unique: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Turn `table` (with an `id` identity column) into a table partitioned by day on `column`, keeping every row
    where it is. Run OUTSIDE a transaction (a non-atomic migration): the CHECK constraint is validated while
    writes continue; only the final swap (rename, create, attach: catalog changes) takes the table's lock.

    `indexes`: name -> definition (`"(charge_point_id, created_at DESC)"`) of the indexes the parent gets; the
    table's own indexes of those names become the legacy partition's (attached, not rebuilt). `unique`: name ->
    column list of the UNIQUE constraints the parent gets (each must contain `column`, as PostgreSQL requires of a
    partitioned table); the table's own constraint of that name becomes the legacy partition's, its index attached
    to the parent's (not rebuilt), so ON CONFLICT on it keeps working through the swap."""
    cut = _day(now or dt.datetime.now(dt.UTC)) + 2 * DAY  # the swap below happens well before this instant
    legacy = f"{table}_legacy"
    check = f"{table}_legacy_range"
    cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{check}" CHECK ("{column}" < {_lit(cut)}) NOT VALID')
    cursor.execute(f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{check}"')  # a scan; writes go on meanwhile
    with transaction.atomic(using=cursor.db.alias):
        cursor.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        cursor.execute(f"SELECT last_value + 1 FROM {sequence}")  # noqa: S608
        next_id = cursor.fetchone()[0]
        cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{legacy}"')
        for name in indexes:
            cursor.execute(f'ALTER INDEX IF EXISTS "{name}" RENAME TO "{name[:50]}_legacy"')
        cursor.execute(f'ALTER INDEX IF EXISTS "{table}_pkey" RENAME TO "{legacy}_pkey"')
        for name in unique or {}:
            cursor.execute(f'ALTER TABLE "{legacy}" RENAME CONSTRAINT "{name}" TO "{name[:50]}_legacy"')
        cursor.execute(
            f'CREATE TABLE "{table}" (LIKE "{legacy}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
            f' PARTITION BY RANGE ("{column}")'
        )
        cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{check}"')
        cursor.execute(f'ALTER TABLE "{legacy}" ALTER COLUMN id DROP IDENTITY')
        cursor.execute(
            f'ALTER TABLE "{table}" ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {int(next_id)})'
        )
        cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{legacy}" {_values(None, cut)}')
        cursor.execute(f'ALTER TABLE "{legacy}" DROP CONSTRAINT "{check}"')
        for name, definition in indexes.items():
            cursor.execute(f'CREATE INDEX "{name}" ON "{table}" {definition}')  # attaches the legacy ones
        for name, columns in (unique or {}).items():
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" UNIQUE {columns}')  # attaches the legacy one
        # the foreign keys: re-declared on the parent, they adopt the legacy partition's own (no validation scan)
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
            " AND contype = 'f'",
            [legacy],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
        cursor.execute(f'ALTER TABLE "{table}_default" ADD PRIMARY KEY (id)')
        for offset in range(8):  # the next week's days after the cut (beat keeps a week ahead from then on)
            day = cut + offset * DAY
            end = day + DAY
            name = partition_name(table, day)
            cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" {_values(day, end)}')
            cursor.execute(f'ALTER TABLE "{name}" ADD PRIMARY KEY (id)')
