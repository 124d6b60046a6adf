"""Streams sessions out of PostgreSQL into CSV, CSV.gz and XLSX files, with flat memory.

How, and why (measured on this 2-core machine, see `benchmarks/export_bench.py` for the figures):
- One dedicated psycopg 3 connection runs one REPEATABLE READ READ ONLY transaction, so the file is one
  consistent snapshot; it takes only ACCESS SHARE locks, so writers are never blocked. Progress goes
  through another connection (the caller's), so it is visible while the export runs.
- The rows are the sessions' stored export lines (`apps.reports.lines`: rendered once per session, in SQL),
  plus the sessions queued for (re)rendering, rendered live by the same SQL in the same snapshot. PostgreSQL
  assembles each line from its stored parts for the caller's rights and format, and `COPY ... TO STDOUT
  (FORMAT binary)` streams it as it is (no escaping).
  Rendering every column at export time instead cost ~6 us per session in PostgreSQL (1M sessions: 6.2 s in
  one process, 4.0 s with two parallel workers); assembling stored lines 0.6-0.9 s.
- The lines are encoded with control-character markers (see `lines`). Python turns a block of 4,096 lines into
  CSV with one `bytes.translate` (separator, decimal point and quotes in place, the rest deleted), or into
  sheet XML with one translate and a few `bytes.replace` after escaping & < > once per block. No per-row
  Python beyond reading COPY's lines (straight from libpq, see `CopyLines`).
- XLSX: `<row><c t="inlineStr"><is><t>..</t></is></c><c s="3"><v>..</v></c>..</row>`, inline strings, numbers
  as numbers, dates as Excel serials with a date format, money with a 0.00 format; written into a deflated zip
  entry (level 1) by a thread of its own (zlib releases the GIL), a new sheet with the header repeated at the
  row limit.
- No ORDER BY: sorting 10M rows spills gigabytes to disk; rows come in storage order (for sessions, which are
  appended, close to start order), and Excel users sort anyway.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import queue
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import psycopg.errors
from psycopg import pq, sql

from apps.reports import lines
from apps.reports.columns import Column, ColumnType, visible_columns

BOM = "\ufeff".encode()
MAX_SHEET_ROWS = 1_048_576  # Excel's limit, header included

FORMAT_CSV = "csv"
FORMAT_CSV_GZ = "csv.gz"
FORMAT_XLSX = "xlsx"

# XLSX cell style ids (cellXfs in styles.xml)
STYLE_DECIMAL2, STYLE_DECIMAL3, STYLE_DATETIME, STYLE_DURATION, STYLE_HEADER, STYLE_DECIMAL1 = 1, 2, 3, 4, 5, 6
_XLSX_WIDTH = {
    ColumnType.TEXT: 22,
    ColumnType.INT: 12,
    ColumnType.MONEY: 12,
    ColumnType.KWH: 12,
    ColumnType.KW: 10,
    ColumnType.DATETIME: 20,
    ColumnType.DURATION: 11,
}
# characters XML 1.0 does not allow (TAB, LF and CR are allowed)
_XML_FORBIDDEN = "".join(chr(c) for c in range(1, 32) if c not in (9, 10, 13))


class ExportCancelled(Exception):
    """The job was cancelled while it ran."""


@dataclass(frozen=True)
class ExportSpec:
    """What to export: one tenant's sessions, filtered, with or without personal data."""

    tenant_id: int
    timezone: str
    personal_data: bool
    date_from: datetime | None = None
    date_to: datetime | None = None
    location_ids: tuple[int, ...] = ()
    charge_point_ids: tuple[int, ...] = ()
    business_customer_ids: tuple[int, ...] = ()
    driver_ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    roaming_partners: tuple[str, ...] = ()
    parallel_workers: int | None = None  # per export; None: the server's max_parallel_workers_per_gather

    @property
    def columns(self) -> list[Column]:
        return visible_columns(personal_data=self.personal_data)


@dataclass
class ExportResult:
    rows: int = 0
    file_size: int = 0
    sheets: int = 0
    total: int | None = None
    total_exact: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[int, int | None], bool]  # (rows done, total) -> keep going?


# --------------------------------------------------------------------------- SQL


def _where(spec: ExportSpec, alias: str) -> sql.Composable:
    """The filters, over the sessions (`s`) or their stored lines (`l`: the same column names)."""
    a = sql.Identifier(alias)
    parts: list[sql.Composable] = [sql.SQL("{}.tenant_id = {}").format(a, sql.Literal(spec.tenant_id))]
    if spec.date_from is not None:
        parts.append(sql.SQL("{}.started_at >= {}").format(a, sql.Literal(spec.date_from)))
    if spec.date_to is not None:
        parts.append(sql.SQL("{}.started_at < {}").format(a, sql.Literal(spec.date_to)))
    for column, values, kind in (
        ("status", spec.statuses, "text"),
        ("charge_point_id", spec.charge_point_ids, "bigint"),
        ("location_id", spec.location_ids, "bigint"),
        ("roaming_partner", spec.roaming_partners, "text"),
    ):
        if values:
            parts.append(
                sql.SQL("{}.{} = ANY({}::{}[])").format(
                    a, sql.Identifier(column), sql.Literal(list(values)), sql.SQL(kind)
                )
            )
    customers: list[sql.Composable] = []
    if spec.driver_ids:
        customers.append(sql.SQL("{}.driver_id = ANY({}::bigint[])").format(a, sql.Literal(list(spec.driver_ids))))
    if spec.business_customer_ids:
        customers.append(
            sql.SQL("{}.business_customer_id = ANY({}::bigint[])").format(
                a, sql.Literal(list(spec.business_customer_ids))
            )
        )
    if customers:
        parts.append(sql.SQL("({})").format(sql.SQL(" OR ").join(customers)))
    return sql.SQL(" AND ").join(parts)


def _branches(spec: ExportSpec, *, stored: bool, select: Callable[[str | None], str]) -> sql.Composed:
    """UNION ALL of `select(parts)` over every exported session: `parts` is the stored `parts` array expression,
    or None where the session is rendered live (over `s` and its dimensions). `stored`: the stored lines of the
    sessions not queued, and the queued ones rendered live; else every session rendered live (the stored lines
    follow another layout than the code's). Each branch computes its own select list, so the workers of a
    parallel scan assemble the lines, not the leader."""

    def live(where: sql.Composable) -> sql.Composed:
        return sql.SQL("SELECT {} {} WHERE {}").format(sql.SQL(select(None)), sql.SQL(lines.from_sql()), where)

    if not stored:
        return live(_where(spec, "s"))
    pending = sql.Identifier(lines.PENDING_TABLE)
    # ANY(ARRAY(...)): the queued sessions by their primary key, not a scan of every session joined to the queue
    queued = sql.SQL("{} AND s.id = ANY(ARRAY(SELECT p.session_id FROM {} p WHERE p.tenant_id = {}))").format(
        _where(spec, "s"), pending, sql.Literal(spec.tenant_id)
    )
    return sql.SQL(
        "SELECT {line} FROM {lines} l WHERE {where} "
        "AND NOT EXISTS (SELECT 1 FROM {pending} p WHERE p.session_id = l.session_id) UNION ALL {live}"
    ).format(
        line=sql.SQL(select("l.parts")),
        lines=sql.Identifier(lines.LINES_TABLE),
        where=_where(spec, "l"),
        pending=pending,
        live=live(queued),
    )


def select_query(spec: ExportSpec, *, fmt: str = FORMAT_CSV, stored: bool = True) -> sql.Composed:
    """The SELECT that yields one encoded line per session (see `lines`)."""

    def line(parts: str | None) -> str:
        return lines.line_sql(
            parts, personal_data=spec.personal_data, xlsx=fmt == FORMAT_XLSX, tenant_id=spec.tenant_id
        )

    return _branches(spec, stored=stored, select=line)


def copy_query(spec: ExportSpec, *, fmt: str = FORMAT_CSV, stored: bool = True) -> sql.Composed:
    """COPY of `select_query`, in the binary format: PostgreSQL sends each line as it is (the text formats scan
    every character for what to escape: measured 1.6 s vs 1.2 s per 1M lines, both ends together)."""
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(select_query(spec, fmt=fmt, stored=stored))


def count_query(spec: ExportSpec, *, stored: bool = True) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM ({}) x").format(_branches(spec, stored=stored, select=lambda _parts: "1"))


def stored_lines_current(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database's stored lines follow this code's layout (else the export renders live)."""
    row = conn.execute(lines.installed_version_sql()).fetchone()
    return row is not None and row[0] == lines.LAYOUT_VERSION


def header(spec: ExportSpec, column: Column) -> str:
    return f"{column.header} ({spec.timezone})" if column.type is ColumnType.DATETIME else column.header


def csv_header(spec: ExportSpec, separator: str = ",") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator="\n").writerow(header(spec, c) for c in spec.columns)
    return buffer.getvalue().encode()


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def snapshot(
    conn: psycopg.Connection[Any], timezone: str = "UTC", *, parallel_workers: int | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """One REPEATABLE READ READ ONLY transaction in `timezone`; its snapshot is taken by the first statement.
    Parallel workers share the leader's snapshot, so a parallel plan reads the same consistent data."""
    conn.autocommit = False
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    try:
        conn.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        conn.execute("SET LOCAL statement_timeout = 0")
        # JIT compiles the ~100 expressions of a live rendering on every run: measured 24.6 s with it vs
        # 12.1 s without (EXPLAIN ANALYZE, 1M sessions rendered live); rows are simple, the interpreter is fast
        conn.execute("SET LOCAL jit = off")
        # the workers assemble the lines and send the leader ONE text column per row; at the default
        # parallel_tuple_cost (0.1 per row) the planner keeps 1M+ rows in a single process
        conn.execute("SET LOCAL parallel_setup_cost = 100")
        conn.execute("SET LOCAL parallel_tuple_cost = 0.001")
        if parallel_workers is not None:
            conn.execute("SELECT set_config('max_parallel_workers_per_gather', %s, true)", [str(parallel_workers)])
        conn.execute("SELECT set_config('TimeZone', %s, true)", [timezone])
        yield conn
    finally:
        conn.rollback()


def estimate_total(
    conn: psycopg.Connection[Any], spec: ExportSpec, *, exact_below: int, stored: bool = True
) -> tuple[int, bool]:
    """The planner's row estimate, replaced by an exact count when it is small enough to be cheap."""
    rows = _branches(spec, stored=stored, select=lambda _parts: "1")
    plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(rows)).fetchone()
    assert plan is not None
    estimate = int(plan[0][0]["Plan"]["Plan Rows"])
    if estimate < exact_below:
        row = conn.execute(count_query(spec, stored=stored)).fetchone()
        assert row is not None
        return int(row[0]), True
    return estimate, False


class _Progress:
    def __init__(self, fn: ProgressFn | None, every: int, total: int | None) -> None:
        self.fn, self.every, self.total = fn, max(1, every), total
        self.next_at = self.every

    def __call__(self, rows: int) -> None:
        if rows >= self.next_at:
            self.next_at = rows - rows % self.every + self.every
            if self.fn is not None and not self.fn(rows, self.total):
                raise ExportCancelled


def export(
    conn: psycopg.Connection[Any],
    spec: ExportSpec,
    *,
    fmt: str,
    path: Path,
    separator: str = ",",
    progress: ProgressFn | None = None,
    progress_every: int = 100_000,
    rows_per_sheet: int = MAX_SHEET_ROWS - 1,
    exact_count_below: int = 200_000,
    after_snapshot: Callable[[], None] | None = None,
) -> ExportResult:
    """Write the export to `path` (replaced atomically: a partial file never has the final name)."""
    partial = path.with_name(path.name + ".partial")
    result = ExportResult()
    try:
        with snapshot(conn, spec.timezone, parallel_workers=spec.parallel_workers):
            stored = stored_lines_current(conn)
            result.extra["stored_lines"] = stored
            result.total, result.total_exact = estimate_total(conn, spec, exact_below=exact_count_below, stored=stored)
            if after_snapshot is not None:
                after_snapshot()
            tick = _Progress(progress, progress_every, result.total)
            if progress is not None:
                progress(0, result.total)
            if fmt == FORMAT_XLSX:
                result.rows, result.sheets = _write_xlsx(
                    conn, copy_query(spec, fmt=fmt, stored=stored), spec, partial, rows_per_sheet, tick
                )
            else:
                result.rows = _write_csv(
                    conn, copy_query(spec, fmt=fmt, stored=stored), spec, partial, separator, fmt == FORMAT_CSV_GZ, tick
                )
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    result.file_size = path.stat().st_size
    return result


COPY_BLOCK_ROWS = 4096  # rows handed on at once (~1.4 MB of encoded lines)


_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BINARY_HEADER = 19  # signature, flags (int32), header extension length (int32, 0)


class CopyLines:
    """The lines of a one-column `COPY ... TO STDOUT (FORMAT binary)`, read in blocks straight from libpq
    (PQgetCopyData, blocking). Each message is one row: a 2-byte field count and a 4-byte length before the
    line (every line ends with ROW_END and is never NULL); the first message starts with the format's header,
    the last is its 2-byte trailer.

    Measured on 1M lines of ~350 bytes: this loop, appending each line to a bytearray, 0.5-0.7 s of client CPU;
    psycopg's `Copy.read()` 0.8-1.1 s; keeping the lines as memoryviews in a list until a block is joined 2.4-3.6 s
    (each holds a libpq buffer). Closed before the end (an exception, a cancelled export), it cancels the
    statement and drains the connection."""

    def __init__(self, conn: psycopg.Connection[Any], query: sql.Composable) -> None:
        self.conn = conn
        pgconn = conn.pgconn
        pgconn.send_query(query.as_bytes(conn))
        first = pgconn.get_result()
        if first is None or first.status != pq.ExecStatus.COPY_OUT:
            _copy_finish(conn, first)
        self._get = pgconn.get_copy_data
        self._streaming, self._done, self._first = True, False, True

    def read(self, max_rows: int = COPY_BLOCK_ROWS) -> tuple[bytearray, int]:
        """Up to `max_rows` whole lines and how many; (empty, 0) at the end."""
        if not self._streaming:
            return bytearray(), 0
        get, block, n = self._get, bytearray(), 0
        if self._first:  # the header (19 bytes) comes in one message with the first row
            self._first = False
            nbytes, data = get(0)
            if nbytes < 0:
                self._streaming, self._done = False, True
                return bytearray(), 0
            if bytes(data[:11]) != _BINARY_SIGNATURE:
                raise psycopg.DataError("COPY did not start with the binary format's header")
            if nbytes > _BINARY_HEADER + 2:
                block += data[_BINARY_HEADER + 6 :]
                n = 1
        while n < max_rows:
            nbytes, data = get(0)
            if nbytes <= 2:  # the trailer (-1 as int16), or the end (-1)
                if nbytes < 0:
                    self._streaming = False
                    self._done = True
                    break
                continue
            block += data[6:]
            n += 1
        return block, n

    def close(self) -> None:
        if self._streaming:
            self._streaming = False
            self.conn.cancel_safe()
            while self._get(0)[0] >= 0:
                pass
        _copy_finish(self.conn, None, quiet=not self._done)

    def __enter__(self) -> CopyLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy_finish(conn: psycopg.Connection[Any], result: pq.abc.PGresult | None, *, quiet: bool = False) -> None:
    """Collect the statement's results; raise the first error (unless `quiet`)."""
    error: Exception | None = None
    while True:
        if result is not None and result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.COPY_OUT):
            error = error or psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
        result = conn.pgconn.get_result()
        if result is None:
            break
    if error is not None and not quiet:
        raise error


# --------------------------------------------------------------------------- from encoded lines to files


def _marker(text: str) -> bytes:
    return text.encode("ascii")


_CELL_MARKERS = b"".join(_marker(m) for m in (lines.EMPTY, lines.END_TEXT, lines.END_NUMBER, *lines.OPEN.values()))


def csv_table(separator: str) -> bytes:
    """bytes.translate table: separator, decimal point (a comma with `;`), quote, apostrophe and line end."""
    decimal = b"," if separator == ";" else b"."
    return bytes.maketrans(
        _marker(lines.SEP + lines.DOT + lines.QUOTE + lines.APOS + lines.ROW_END),
        separator.encode() + decimal + b"\"'\n",
    )


def to_csv(data: bytes | bytearray, table: bytes) -> bytes | bytearray:
    """Encoded lines -> CSV lines: quotes inside values doubled, then one translate (cell markers deleted)."""
    if b'"' in data:
        data = data.replace(b'"', b'""')
    return data.translate(table, _CELL_MARKERS)


_ROW_END = _marker(lines.ROW_END)
_XLSX_TABLE = bytes.maketrans(_marker(lines.DOT), b".")
_XLSX_DELETE = _marker(lines.SEP + lines.QUOTE + lines.APOS)
_XLSX_STYLE = {
    ColumnType.MONEY: STYLE_DECIMAL2,
    ColumnType.KWH: STYLE_DECIMAL3,
    ColumnType.KW: STYLE_DECIMAL1,
    ColumnType.DATETIME: STYLE_DATETIME,
    ColumnType.DURATION: STYLE_DURATION,
}
_XLSX_CELLS: tuple[tuple[bytes, bytes], ...] = (
    (_marker(lines.EMPTY), b"<c/>"),
    (_marker(lines.END_TEXT), b"</t></is></c>"),
    (_marker(lines.END_NUMBER), b"</v></c>"),
    *(
        (
            _marker(marker),
            b'<c t="inlineStr"><is><t>'
            if kind is ColumnType.TEXT
            else b"<c><v>"
            if kind is ColumnType.INT
            else f'<c s="{_XLSX_STYLE[kind]}"><v>'.encode(),
        )
        for kind, marker in lines.OPEN.items()
    ),
)


def to_sheet_rows(data: bytes | bytearray) -> bytes:
    """Encoded lines -> `<row>...</row>` elements: & < > escaped, one translate (decimal point; separators,
    quote and apostrophe markers deleted), a replace per cell marker."""
    if b"&" in data:
        data = data.replace(b"&", b"&amp;")
    if b"<" in data:
        data = data.replace(b"<", b"&lt;")
    if b">" in data:
        data = data.replace(b">", b"&gt;")
    data = data.translate(_XLSX_TABLE, _XLSX_DELETE)
    if b"\n" in data or b"\r" in data:  # line breaks inside values: character references, kept as they are
        data = data.replace(b"\n", b"&#10;").replace(b"\r", b"&#13;")
    for marker, xml in _XLSX_CELLS:
        data = data.replace(marker, xml)
    return b"<row>" + data.replace(_ROW_END, b"</row>\n<row>")[:-5]


class _Background:
    """Calls `handle(item)` for every item put, in order, on a thread of its own, so that compressing and
    writing the file overlap reading and converting the next block (zlib and file writes release the GIL). An
    error on the thread is raised in the caller at its next `put`, or at `close`."""

    _END = object()

    def __init__(self, handle: Callable[[Any], None], depth: int = 3) -> None:
        self._handle = handle
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)  # blocks in flight: bounded memory
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not self._END:
            if self._error is None:
                try:
                    self._handle(item)
                except BaseException as error:  # noqa: BLE001 - handed to the caller
                    self._error = error

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        """Wait until everything is handled; raise the thread's error, if any."""
        self._queue.put(self._END)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _write_csv(
    conn: psycopg.Connection[Any],
    query: sql.Composable,
    spec: ExportSpec,
    path: Path,
    separator: str,
    gzip: bool,
    tick: _Progress,
) -> int:
    rows = 0
    table = csv_table(separator)
    with open(path, "wb") as file:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31) if gzip else None  # level 1; wbits 31: gzip

        def write(data: bytes | bytearray) -> None:
            file.write(data if compressor is None else compressor.compress(data))

        write(BOM + csv_header(spec, separator))
        writer = _Background(write)
        try:
            with CopyLines(conn, query) as copy:
                while True:
                    block, n = copy.read()
                    if not n:
                        break
                    writer.put(to_csv(block, table))
                    rows += n
                    if rows >= tick.next_at:
                        tick(rows)
        finally:
            writer.close()
        if compressor is not None:
            file.write(compressor.flush())
    return rows


# --------------------------------------------------------------------------- XLSX package

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

STYLES_XML = (
    _XML_DECL + f'<styleSheet xmlns="{_NS}">'
    '<numFmts count="4"><numFmt numFmtId="164" formatCode="0.000"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/><numFmt numFmtId="166" formatCode="[h]:mm:ss"/>'
    '<numFmt numFmtId="167" formatCode="0.0"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _escape(text: str) -> str:
    text = text.translate({ord(c): None for c in _XML_FORBIDDEN})
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _sheet_start(spec: ExportSpec) -> bytes:
    columns = spec.columns
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{_XLSX_WIDTH[c.type]}" customWidth="1"/>' for i, c in enumerate(columns, 1)
    )
    head = "".join(
        f'<c t="inlineStr" s="{STYLE_HEADER}"><is><t>{_escape(header(spec, c))}</t></is></c>' for c in columns
    )
    return (
        _XML_DECL + f'<worksheet xmlns="{_NS}" xmlns:r="{_REL_NS}"><sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        f'<sheetFormatPr defaultRowHeight="15"/><cols>{cols}</cols><sheetData><row r="1">{head}</row>\n'
    ).encode()


_SHEET_END = b"</sheetData></worksheet>"


def _package_parts(sheets: int) -> dict[str, str]:
    sheet_overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for i in range(1, sheets + 1)
    )
    names = ["Sessions"] + [f"Sessions {i}" for i in range(2, sheets + 1)]
    return {
        "[Content_Types].xml": _XML_DECL
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{sheet_overrides}</Types>",
        "_rels/.rels": _XML_DECL + f'<Relationships xmlns="{_PKG_REL_NS}">'
        f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": _XML_DECL + f'<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}">'
        "<bookViews><workbookView/></bookViews><sheets>"
        + "".join(f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>' for i, name in enumerate(names, 1))
        + "</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": _XML_DECL
        + f'<Relationships xmlns="{_PKG_REL_NS}">'
        + "".join(
            f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, sheets + 1)
        )
        + f'<Relationship Id="rId{sheets + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>',
        "xl/styles.xml": STYLES_XML,
    }


def _write_xlsx(
    conn: psycopg.Connection[Any],
    query: sql.Composable,
    spec: ExportSpec,
    path: Path,
    rows_per_sheet: int,
    tick: _Progress,
) -> tuple[int, int]:
    rows = sheets = 0
    in_sheet = rows_per_sheet  # forces a first sheet
    start = _sheet_start(spec)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        entry: IO[bytes] | None = None

        def write(item: bytes | int) -> None:  # on the writer thread: rows, or the number of a new sheet
            nonlocal entry
            if isinstance(item, bytes):
                assert entry is not None
                entry.write(item)
                return
            if entry is not None:
                entry.write(_SHEET_END)
                entry.close()
            entry = archive.open(f"xl/worksheets/sheet{item}.xml", "w")
            entry.write(start)

        writer = _Background(write)
        try:
            with CopyLines(conn, query) as copy:
                while True:
                    room = rows_per_sheet - in_sheet if in_sheet < rows_per_sheet else rows_per_sheet
                    block, n = copy.read(min(COPY_BLOCK_ROWS, room))
                    if not n:
                        break
                    if in_sheet >= rows_per_sheet:  # a sheet only when a row needs it: none empty at the end
                        sheets += 1
                        writer.put(sheets)
                        in_sheet = 0
                    writer.put(to_sheet_rows(block))
                    in_sheet += n
                    rows += n
                    if rows >= tick.next_at:
                        tick(rows)
            if sheets == 0:  # no rows: one sheet with the header
                sheets = 1
                writer.put(sheets)
            writer.put(_SHEET_END)
        finally:
            writer.close()
        assert entry is not None
        entry.close()
        for name, content in _package_parts(sheets).items():
            archive.writestr(name, content)
    return rows, sheets
