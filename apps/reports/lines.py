"""Export lines: every session's export row, rendered once in SQL and stored, so an export only streams text.

Why: rendering 32 columns from 10 tables costs PostgreSQL ~6 us per session (1M sessions: 6.2 s in one process,
4.0 s with two parallel workers, `COPY ... TO '/dev/null'`; the same columns as COPY's own CSV output: 5.0 s /
3.8 s), so 10M sessions could never be exported in 20 s on two cores, whatever the client does. Streaming the
stored line of 1M sessions costs 0.47 s, and assembling it from its stored parts (below) 0.65-0.93 s.

What is stored (`SessionLine`): per session, the filter columns and `parts`, the line cut into runs of columns.
A run that differs by the caller's rights or the file format is stored in each variant: a token column raw and
masked; the personal columns once (left out without the right to see them); date, time and duration columns as
CSV text and as Excel serial numbers. The tenant's own name is the same on every row and is not stored.

The encoding is the same for CSV and XLSX: every cell is an opening marker (per cell type), the value and a
closing marker, or one marker for an empty cell; a separator marker between cells; numbers use a marker for
their decimal point, text that CSV must quote is wrapped in quote markers. The markers are ASCII control
characters that text values never contain (they are removed when the line is rendered), so the exporter turns a
block of lines into CSV with one `bytes.translate` (separator, decimal point and quotes in place, the rest
deleted) or into sheet XML with a few `bytes.replace` (see `exporter`).

How it stays right (one invariant: every session is either in `PendingLine` or has a current `SessionLine`):
- triggers queue a session into `PendingLine` when it is inserted, when a session in a final state (completed,
  failed, invalid) is updated, when a dimension row's exported column changes (a location renamed: all its
  final sessions), and when it is deleted (a tombstone). They run in the writer's transaction, so an export
  snapshot never misses a change;
- the queue is insert-only: each change adds a row, with no unique key and no foreign key, so a trigger never
  waits for anything (a charger's MeterValues or StopTransaction must never wait on a reporting job; the former
  upsert waited for the render batch's lock on the queue row while the batch's foreign-key check waited for the
  charger's session lock: a deadlock, answered InternalError, issue 20 item 2);
- `render_pending` renders queued final sessions in batches (beat, and until empty) and, in the same statement,
  deletes the queue rows of those sessions that its snapshot sees: a change committed while the batch renders is
  in a row the batch cannot see, so the session stays queued and is rendered again. Nothing the batch writes
  refers to the session (no foreign key to check at commit), so it takes no lock on session rows either; batches
  run one at a time (an advisory lock only renderers take);
- an export reads the stored lines of sessions not queued, plus the queued ones (running sessions, the not yet
  rendered) rendered live by the same SQL, in one REPEATABLE READ snapshot;
- `LAYOUT_VERSION` (a hash of the parts' SQL) is installed with the triggers; when the code's layout differs from
  the installed one, exports render everything live until `layout_install` (beat) has queued every session again.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from apps.reports.columns import COLUMNS, DIMENSIONS, SESSIONS_TABLE, Column, ColumnType
from apps.sessions.models import SessionStatus

FINAL_STATUSES = (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.INVALID)
LINES_TABLE = "reports_sessionline"
PENDING_TABLE = "reports_pendingline"

# --------------------------------------------------------------------------- the encoding

# \x01 and \x02 are the quote and delimiter of the exporter's COPY; \t \n \r are allowed in text
SEP = "\x03"  # between two cells
EMPTY = "\x04"  # an empty cell
QUOTE = "\x05"  # around text that CSV quotes
DOT = "\x06"  # a number's decimal point
END_TEXT = "\x07"
END_NUMBER = "\x08"
APOS = "\x13"  # CSV only: before text that a spreadsheet would take for a formula (= + - @)
ROW_END = "\x16"  # ends every line an export reads (not stored: added when the line is assembled)
OPEN: dict[ColumnType, str] = {
    ColumnType.TEXT: "\x0b",
    ColumnType.INT: "\x0c",
    ColumnType.MONEY: "\x0e",
    ColumnType.KWH: "\x0f",
    ColumnType.DATETIME: "\x10",
    ColumnType.DURATION: "\x11",
    ColumnType.KW: "\x12",
}
MARKERS = SEP + EMPTY + QUOTE + DOT + END_TEXT + END_NUMBER + APOS + ROW_END + "".join(OPEN.values())
# control characters removed from text values (XML 1.0 forbids them; the markers are among them)
_CONTROL = "[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f]"


def _lit(text: str) -> str:
    """An SQL string literal of marker characters (E'\\x03')."""
    return "E'" + "".join(f"\\x{ord(c):02x}" for c in text) + "'"


# --------------------------------------------------------------------------- the layout


class RunKind(enum.Enum):
    PLAIN = "plain"  # stored once
    TOKEN = "token"  # stored raw and masked
    PERSONAL = "personal"  # stored once, left out without access to personal data
    TIMES = "times"  # stored as CSV text and as Excel serial numbers
    TENANT = "tenant"  # the tenant's own columns: rendered once per export, not stored


def _kind(column: Column) -> RunKind:
    if column.dim == "tn":
        return RunKind.TENANT
    if column.personal:
        return RunKind.PERSONAL
    if column.token:
        return RunKind.TOKEN
    if column.type in (ColumnType.DATETIME, ColumnType.DURATION):
        return RunKind.TIMES
    return RunKind.PLAIN


@dataclass(frozen=True)
class Run:
    kind: RunKind
    columns: tuple[Column, ...]
    part: int  # 1-based index of its first variant in `parts` (0 for TENANT: not stored)
    last: bool  # holds the line's last column (no separator after it)


def _runs() -> tuple[Run, ...]:
    groups: list[tuple[RunKind, list[Column]]] = []
    for column in COLUMNS:
        kind = _kind(column)
        if groups and groups[-1][0] is kind and kind is not RunKind.TOKEN:
            groups[-1][1].append(column)
        else:
            groups.append((kind, [column]))
    runs, part = [], 1
    for i, (kind, columns) in enumerate(groups):
        stored = 0 if kind is RunKind.TENANT else 2 if kind in (RunKind.TOKEN, RunKind.TIMES) else 1
        runs.append(Run(kind, tuple(columns), part if stored else 0, i == len(groups) - 1))
        part += stored
    return tuple(runs)


RUNS = _runs()


# --------------------------------------------------------------------------- rendering one cell


def _mask(v: str) -> str:
    """All but the last four characters as *."""
    return (
        f"CASE WHEN length({v}) > 4 THEN repeat('*', length({v}) - 4) || right({v}, 4) "
        f"ELSE repeat('*', length({v})) END"
    )


def _text(v: str, plain: bool) -> str:
    """Text value -> encoded cell body: control characters removed, quote markers where CSV must quote it,
    an apostrophe marker before a leading = + - @ (CSV injection). Each test runs once per value (CASE
    evaluates only the branch taken); strpos is ~3x cheaper than a regex test."""
    if plain:  # platform-written codes: none of that can occur
        return v
    clean = f"CASE WHEN {v} ~ E'{_CONTROL}' THEN regexp_replace({v}, E'{_CONTROL}', '', 'g') ELSE {v} END"
    formula = f"left({v}, 1) IN ('=', '+', '-', '@') OR (ascii({v}) < 32 AND {v} ~ E'^{_CONTROL}*[=+@-]')"
    inner = f"CASE WHEN {formula} THEN {_lit(APOS)} || {clean} ELSE {clean} END"
    needs_quotes = " + ".join(f"strpos({v}, {c})" for c in ("','", "';'", "'\"'", "E'\\n'", "E'\\r'"))
    return f"CASE WHEN {needs_quotes} > 0 THEN {_lit(QUOTE)} || {inner} || {_lit(QUOTE)} ELSE {inner} END"


def _number(kind: ColumnType, v: str) -> str:
    """A number with a fixed scale as text, the decimal point as its marker."""
    match kind:
        case ColumnType.MONEY:
            text = f"round({v}, 2)::text"
        case ColumnType.KWH:
            text = f"({v} * 0.001)::text"  # Wh times 0.001: exact, three decimals
        case _:  # KW
            text = f"round({v} * 0.001, 1)::text"
    return f"replace({text}, '.', {_lit(DOT)})"


def _local(v: str) -> str:
    """A timestamptz as the tenant's local time, to the second (`tn` is the session's tenant)."""
    return f"date_trunc('second', ({v}) AT TIME ZONE tn.timezone)"


def cell(column: Column, *, masked: bool = False, xlsx: bool = False) -> str:
    """The SQL of one encoded cell (never NULL)."""
    v = f"({column.sql})"
    if masked:
        v = f"({_mask(v)})"
    open_, kind = OPEN[column.type], column.type
    match kind:
        case ColumnType.TEXT:
            body, end = _text(v, column.plain), END_TEXT
        case ColumnType.INT:
            body, end = f"({v})::text", END_NUMBER
        case ColumnType.MONEY | ColumnType.KWH | ColumnType.KW:
            body, end = _number(kind, v), END_NUMBER
        case ColumnType.DATETIME:
            # XLSX: an Excel serial (days since 1899-12-30, local time); CSV: ISO (the renderer sets the DateStyle)
            serial = f"(date_part('epoch', {_local(v)}) / 86400 + 25569)::text"
            body = serial if xlsx else f"({_local(v)})::text"
            end = END_NUMBER
        case ColumnType.DURATION:
            if xlsx:
                body = f"(date_part('epoch', {v}) / 86400)::text"
            else:  # via seconds: to_char of the interval itself drops its days (26 h would print as 02:00:00)
                body = f"to_char(make_interval(secs => date_part('epoch', {v})), 'HH24:MI:SS')"
            end = END_NUMBER
    return f"coalesce({_lit(open_)} || {body} || {_lit(end)}, {_lit(EMPTY)})"


def run_sql(run: Run, *, masked: bool = False, xlsx: bool = False) -> str:
    """One run's encoded text: its cells with a separator after each, but after the line's last cell."""
    parts: list[str] = []
    for i, column in enumerate(run.columns):
        parts.append(cell(column, masked=masked, xlsx=xlsx))
        if not (run.last and i == len(run.columns) - 1):
            parts.append(_lit(SEP))
    return _concat(parts)


def _concat(parts: list[str]) -> str:
    """concat() of any number of parts (a function takes at most 100 arguments)."""
    if len(parts) <= 90:
        return f"concat({', '.join(parts)})"
    return _concat([_concat(parts[i : i + 90]) for i in range(0, len(parts), 90)])


def parts_sql() -> str:
    """ARRAY[...] of every stored variant of every run, in `parts` order, over `s` and its dimensions."""
    items: list[str] = []
    for run in RUNS:
        if run.kind is RunKind.TENANT:
            continue
        items.append(run_sql(run))
        if run.kind is RunKind.TOKEN:
            items.append(run_sql(run, masked=True))
        elif run.kind is RunKind.TIMES:
            items.append(run_sql(run, xlsx=True))
    return "ARRAY[" + ", ".join(items) + "]::text[]"


def _dims() -> Iterator[str]:
    """The dimensions the stored columns read, in declaration order (the tenant always: its time zone)."""
    yield "tn"
    used = {c.dim for c in COLUMNS if c.dim is not None and c.dim != "tn"}
    yield from (dim for dim in DIMENSIONS if dim in used)


def from_sql() -> str:
    """FROM sessions `s` with a LEFT JOIN to each dimension the stored columns read."""
    joins = " ".join(
        f"LEFT JOIN {DIMENSIONS[dim].table} {dim} ON {dim}.id = s.{DIMENSIONS[dim].session_key}" for dim in _dims()
    )
    return f"FROM {SESSIONS_TABLE} s {joins}"


def tenant_sql(run: Run, tenant_id: int) -> str:
    """The tenant run, rendered once per export (a scalar subquery: PostgreSQL evaluates it once)."""
    return f"(SELECT {run_sql(run)} FROM {DIMENSIONS['tn'].table} tn WHERE tn.id = {int(tenant_id)})"  # noqa: S608


def line_sql(parts: str | None, *, personal_data: bool, xlsx: bool, tenant_id: int) -> str:
    """The encoded line of an export for the caller's rights and format: from a stored `parts` array expression,
    or (`parts` None) rendered live over `s` and its dimensions, only the variants the line uses."""
    pieces: list[str] = []
    for run in RUNS:
        masked = run.kind is RunKind.TOKEN and not personal_data
        as_xlsx = run.kind is RunKind.TIMES and xlsx
        if run.kind is RunKind.TENANT:
            pieces.append(tenant_sql(run, tenant_id))
        elif run.kind is RunKind.PERSONAL and not personal_data:
            continue
        elif parts is None:
            pieces.append(run_sql(run, masked=masked, xlsx=as_xlsx))
        else:
            pieces.append(f"{parts}[{run.part + (1 if masked or as_xlsx else 0)}]")
    if not personal_data and RUNS[-1].kind is RunKind.PERSONAL:  # pragma: no cover - the layout ends with plain
        raise AssertionError("the last run must not be personal: its separator would dangle")
    return _concat([*pieces, _lit(ROW_END)])


# --------------------------------------------------------------------------- keeping the lines current


def _watched(dim: str) -> list[str]:
    """The columns of a dimension that stored cells read (found in the columns' SQL: `loc.name` -> name)."""
    if dim == "tn":  # the tenant's name is rendered per export; its time zone is in every stored time
        return ["timezone"]
    pattern = re.compile(rf"\b{re.escape(dim)}\.(\w+)")
    found: dict[str, None] = {}
    for column in COLUMNS:
        if column.dim == dim:
            for name in pattern.findall(column.sql):
                found[name] = None
    return list(found)


LAYOUT_VERSION = hashlib.sha256(
    "\n".join([parts_sql(), from_sql(), *(f"{d}:{','.join(_watched(d))}" for d in _dims())]).encode()
).hexdigest()[:16]

_FINAL = ", ".join(f"'{s}'" for s in FINAL_STATUSES)


def install_sql() -> str:
    """The queueing triggers and the installed layout version (idempotent: replaces what was there)."""
    return f"{triggers_sql()};\n{version_sql()}"


def triggers_sql() -> str:
    """The queueing triggers alone (idempotent)."""
    # every name comes from the code
    statements = [
        f"""CREATE OR REPLACE FUNCTION reports_line_queue_session() RETURNS trigger AS $$
BEGIN
    -- insert-only (no unique key, no foreign key): nothing to wait for in the writer's transaction
    INSERT INTO {PENDING_TABLE} (session_id, tenant_id, queued_at) VALUES (NEW.id, NEW.tenant_id, clock_timestamp());
    RETURN NULL;
END $$ LANGUAGE plpgsql""",  # noqa: S608
        f"""CREATE OR REPLACE FUNCTION reports_line_queue_deleted_session() RETURNS trigger AS $$
BEGIN
    -- a tombstone: exports stop reading the session's stored line at once, the renderer removes it
    INSERT INTO {PENDING_TABLE} (session_id, tenant_id, queued_at) VALUES (OLD.id, OLD.tenant_id, clock_timestamp());
    RETURN NULL;
END $$ LANGUAGE plpgsql""",  # noqa: S608
        f"""CREATE OR REPLACE FUNCTION reports_line_queue_sessions_of() RETURNS trigger AS $$
BEGIN
    -- TG_ARGV[0]: the session's foreign key to the changed row (a name from apps/reports/columns.py)
    EXECUTE format('INSERT INTO {PENDING_TABLE} (session_id, tenant_id, queued_at) '
                   'SELECT id, tenant_id, clock_timestamp() FROM {SESSIONS_TABLE} '
                   'WHERE %I = $1 AND status IN ({_FINAL.replace("'", "''")})', TG_ARGV[0])
    USING NEW.id;
    RETURN NULL;
END $$ LANGUAGE plpgsql""",  # noqa: S608
        f"DROP TRIGGER IF EXISTS reports_line_insert ON {SESSIONS_TABLE}",
        f"DROP TRIGGER IF EXISTS reports_line_update ON {SESSIONS_TABLE}",
        f"DROP TRIGGER IF EXISTS reports_line_delete ON {SESSIONS_TABLE}",
        f"CREATE TRIGGER reports_line_insert AFTER INSERT ON {SESSIONS_TABLE} FOR EACH ROW "
        "EXECUTE FUNCTION reports_line_queue_session()",
        # running sessions are queued anyway (since their insert): only changes of final ones need it
        f"CREATE TRIGGER reports_line_update AFTER UPDATE ON {SESSIONS_TABLE} FOR EACH ROW "
        f"WHEN (NEW.status IN ({_FINAL}) AND OLD.* IS DISTINCT FROM NEW.*) "
        "EXECUTE FUNCTION reports_line_queue_session()",
        f"CREATE TRIGGER reports_line_delete AFTER DELETE ON {SESSIONS_TABLE} FOR EACH ROW "
        "EXECUTE FUNCTION reports_line_queue_deleted_session()",
    ]
    stored = set(_dims())
    for dim, d in DIMENSIONS.items():
        statements.append(f"DROP TRIGGER IF EXISTS reports_line_{dim} ON {d.table}")
        watched = _watched(dim) if dim in stored else []
        if not watched:
            continue
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in watched)
        statements.append(
            f"CREATE TRIGGER reports_line_{dim} AFTER UPDATE OF {', '.join(watched)} ON {d.table} FOR EACH ROW "
            f"WHEN ({changed}) EXECUTE FUNCTION reports_line_queue_sessions_of('{d.session_key}')"
        )
    return ";\n".join(statements)


def version_sql() -> str:
    """Mark the database's lines as following this code's layout."""
    return (
        f"CREATE OR REPLACE FUNCTION reports_line_layout_version() RETURNS text AS $$ SELECT '{LAYOUT_VERSION}' $$ "
        "LANGUAGE sql IMMUTABLE"
    )


def installed_version_sql() -> str:
    """The layout version the database's lines follow (NULL before the first install)."""
    return (
        "SELECT CASE WHEN to_regprocedure('reports_line_layout_version()') IS NULL THEN NULL "
        "ELSE reports_line_layout_version() END"
    )


def queue_all_sql() -> str:
    """Queue every session again (a new layout: every stored line is out of date)."""
    return (
        f"INSERT INTO {PENDING_TABLE} (session_id, tenant_id, queued_at) "  # noqa: S608 - names from the code
        f"SELECT id, tenant_id, clock_timestamp() FROM {SESSIONS_TABLE}"
    )


FILTER_COLUMNS = (
    "tenant_id",
    "started_at",
    "status",
    "location_id",
    "charge_point_id",
    "driver_id",
    "business_customer_id",
    "roaming_partner",
)


def render_batch_sql(batch_size: int) -> str:
    """Render up to `batch_size` queued final sessions into lines and take them off the queue, in one
    statement (the caller's transaction; one snapshot: the queue rows it deletes are the ones it saw, and a
    change committed meanwhile keeps its session queued); returns one row per rendered session."""
    cols = ", ".join(FILTER_COLUMNS)
    return f"""
WITH batch AS (
    SELECT DISTINCT p.session_id FROM {PENDING_TABLE} p JOIN {SESSIONS_TABLE} q ON q.id = p.session_id
    WHERE q.status IN ({_FINAL})
    ORDER BY p.session_id LIMIT {int(batch_size)}
), rendered AS (
    INSERT INTO {LINES_TABLE} (session_id, {cols}, parts, rendered_at)
    SELECT s.id, {", ".join(f"s.{c}" for c in FILTER_COLUMNS)}, {parts_sql()}, clock_timestamp()
    {from_sql()} WHERE s.id = ANY(ARRAY(SELECT session_id FROM batch))  -- an index scan, not a scan of all
    ON CONFLICT (session_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in FILTER_COLUMNS)},
        parts = EXCLUDED.parts, rendered_at = EXCLUDED.rendered_at
    RETURNING session_id
), taken AS (
    DELETE FROM {PENDING_TABLE} p USING rendered r WHERE p.session_id = r.session_id
)
SELECT session_id FROM rendered
"""  # noqa: S608 - every name comes from the code, the batch size is an int


def tombstones_sql(batch_size: int) -> str:
    """Remove the stored lines and queue rows of deleted sessions (queued by the delete trigger)."""
    return f"""
WITH gone AS (
    SELECT DISTINCT p.session_id FROM {PENDING_TABLE} p
    WHERE NOT EXISTS (SELECT 1 FROM {SESSIONS_TABLE} s WHERE s.id = p.session_id)
    LIMIT {int(batch_size)}
), lines AS (
    DELETE FROM {LINES_TABLE} l USING gone g WHERE l.session_id = g.session_id
)
DELETE FROM {PENDING_TABLE} p USING gone g WHERE p.session_id = g.session_id
"""  # noqa: S608 - every name comes from the code, the batch size is an int


def uninstall_sql() -> str:
    statements = [
        f"DROP TRIGGER IF EXISTS reports_line_insert ON {SESSIONS_TABLE}",
        f"DROP TRIGGER IF EXISTS reports_line_update ON {SESSIONS_TABLE}",
        f"DROP TRIGGER IF EXISTS reports_line_delete ON {SESSIONS_TABLE}",
        *(f"DROP TRIGGER IF EXISTS reports_line_{dim} ON {d.table}" for dim, d in DIMENSIONS.items()),
        "DROP FUNCTION IF EXISTS reports_line_queue_session()",
        "DROP FUNCTION IF EXISTS reports_line_queue_deleted_session()",
        "DROP FUNCTION IF EXISTS reports_line_queue_sessions_of()",
        "DROP FUNCTION IF EXISTS reports_line_layout_version()",
    ]
    return ";\n".join(statements)
