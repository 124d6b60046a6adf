"""CSV import of tokens: streams the file, imports the good rows, reports every bad row with its line.

Format (UTF-8, a header line, comma-separated, RFC 4180 quoting). Only `uid` is required; column names
are matched ignoring case and surrounding blanks; an unknown column rejects the whole file (a typo would
otherwise drop data silently)::

    uid,type,contract_id,visual_number,issuer,group_id,valid,whitelist,language,default_profile_type,
    energy_contract_supplier_name,energy_contract_id,expires_at,blocked,driver_email,contract_number

- `type`, `whitelist`, `default_profile_type`: the OCPI enum values (any letter case); defaults RFID/ALLOWED.
- `valid`, `blocked`: true/false, yes/no, 1/0; defaults true/false.
- `expires_at`: ISO 8601 with a UTC offset, e.g. 2027-01-31T23:59:59+01:00 or ...Z.
- `driver_email`: links the token to the tenant's driver with that e-mail (ignoring case).
- `contract_number`: links the token to that contract and the contract's business customer.

Transactions: all good rows go in ONE transaction, inserted in chunks with COPY. Bad rows never
stop good ones (they are checked before insertion); but a file that cannot be read to the end (not
UTF-8, broken CSV) or a uid inserted concurrently by someone else rolls the whole import back, so the
outcome is always "the report is exactly what happened" and a corrected file can simply be re-run.
Duplicates (within the file, or against tokens already stored) are reported, never overwritten: a second
run of the same file imports nothing.

Memory: the file is read row by row; what is kept is the set of uids seen (to find duplicates within
the file: ~100 bytes per row) and the report. 100k rows are fine.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower

from apps.core import events
from apps.core.errors import ApplicationError, Conflict
from apps.customers.models import Contract, Driver, ProfileType, Token, TokenType, WhitelistType, wire_id_for
from apps.tenants.models import Tenant

COLUMNS = (
    "uid",
    "type",
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "valid",
    "whitelist",
    "language",
    "default_profile_type",
    "energy_contract_supplier_name",
    "energy_contract_id",
    "expires_at",
    "blocked",
    "driver_email",
    "contract_number",
)
REQUIRED_COLUMNS = ("uid",)
CHUNK_SIZE = 1000
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}
_ENUMS: dict[str, tuple[set[str], str]] = {
    "type": ({c.value for c in TokenType}, TokenType.RFID),
    "whitelist": ({c.value for c in WhitelistType}, WhitelistType.ALLOWED),
    "default_profile_type": ({c.value for c in ProfileType}, ""),
}
_PLAIN = (
    "contract_id",
    "visual_number",
    "issuer",
    "group_id",
    "energy_contract_supplier_name",
    "energy_contract_id",
)
_CLEANED = {"uid", "language", *_PLAIN}
_NOT_CLEANED = [f.name for f in Token._meta.concrete_fields if f.name not in _CLEANED]
_INSERTED = [f for f in Token._meta.concrete_fields if not f.primary_key and not f.generated]


@dataclass(frozen=True)
class RowError:
    line: int  # physical line of the file where the row starts (the header is line 1)
    uid: str
    reasons: tuple[str, ...]


@dataclass
class ImportReport:
    rows: int = 0  # data rows read (blank lines are not rows)
    created: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.errors)


@dataclass
class _Row:
    line: int
    uid: str
    token: Token | None
    reasons: list[str]
    driver_email: str = ""
    contract_number: str = ""


def import_tokens(*, tenant: Tenant, file: IO[Any] | Iterable[str], chunk_size: int = CHUNK_SIZE) -> ImportReport:
    report = ImportReport()
    seen: dict[str, int] = {}  # lower-case uid -> line of its first appearance
    drivers: dict[str, Driver | None] = {}
    contracts: dict[str, Contract | None] = {}
    try:
        with transaction.atomic():
            rows = _read(tenant, _text_lines(file), report)
            for chunk in _chunks(rows, chunk_size):
                _resolve_links(tenant, chunk, drivers, contracts)
                _check_duplicates(tenant, chunk, seen)
                good = []
                for row in chunk:
                    if row.reasons or row.token is None:
                        report.errors.append(RowError(row.line, row.uid, tuple(row.reasons)))
                    else:
                        good.append(row.token)
                _copy_in(good)
                _published(tenant, good)
                report.created += len(good)
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            "The file is not UTF-8 text; nothing was imported.", code="bad_file", fields={"file": [str(exc)]}
        ) from exc
    except csv.Error as exc:
        raise ApplicationError(
            f"The CSV cannot be read: {exc}; nothing was imported.", code="bad_file", fields={"file": [str(exc)]}
        ) from exc
    except IntegrityError as exc:
        raise Conflict(
            "Some of these uids were stored by someone else during the import; nothing was imported. Run it again."
        ) from exc
    return report


class _RawReader(io.RawIOBase):
    """Adapts anything with `read(n) -> bytes` (Django uploads, temp files) for `io.TextIOWrapper`."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text_lines(file: IO[Any] | Iterable[str]) -> Iterator[str]:
    """Text lines of an uploaded (binary) file or of a text stream, decoded as they are read (BOM tolerated)."""
    raw = getattr(file, "file", file)  # Django's UploadedFile wraps the real stream
    if isinstance(raw, io.TextIOBase) or not hasattr(raw, "read"):
        yield from raw  # type: ignore[misc]
        return
    buffered = io.BufferedReader(_RawReader(raw), buffer_size=64 * 1024)
    yield from io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")


def _read(tenant: Tenant, lines: Iterator[str], report: ImportReport) -> Iterator[_Row]:
    reader = csv.reader(lines, strict=True)
    header = next(reader, None)
    if header is None:
        raise ApplicationError("The file is empty.", code="bad_file", fields={"file": ["The file is empty."]})
    names = [name.strip().lower() for name in header]
    unknown = [name for name in names if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    problems = (
        [f"Unknown column {name!r}." for name in unknown]
        + [f"Missing column {name!r}." for name in missing]
        + [f"Column {name!r} appears twice." for name in duplicated]
    )
    if problems:
        raise ApplicationError(
            f"{' '.join(problems)} Expected columns: {', '.join(COLUMNS)}.",
            code="bad_header",
            fields={"file": problems},
        )
    while True:
        start = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return
        if not values or all(not v.strip() for v in values):
            continue  # blank line
        report.rows += 1
        if len(values) != len(names):
            uid = values[names.index("uid")].strip() if len(values) > names.index("uid") else ""
            yield _Row(start, uid, None, [f"Expected {len(names)} fields, found {len(values)}."])
            continue
        yield _parse(tenant, start, dict(zip(names, values, strict=True)))


def _parse(tenant: Tenant, line: int, data: dict[str, str]) -> _Row:
    reasons: list[str] = []
    value = {name: data.get(name, "").strip() for name in COLUMNS}
    uid = value["uid"]
    if not uid:
        reasons.append("uid: required.")
    fields: dict[str, Any] = {name: value[name] for name in _PLAIN}
    for name, (allowed, default) in _ENUMS.items():
        raw = value[name].upper()
        if not raw:
            fields[name] = default
        elif raw in allowed:
            fields[name] = raw
        else:
            reasons.append(f"{name}: {value[name]!r} is not one of {', '.join(sorted(allowed))}.")
    for name, default_flag in (("valid", True), ("blocked", False)):
        flag = value[name].lower()
        if not flag:
            fields[name] = default_flag
        elif flag in _TRUE or flag in _FALSE:
            fields[name] = flag in _TRUE
        else:
            reasons.append(f"{name}: {value[name]!r} is not true or false.")
    fields["language"] = value["language"].lower()
    fields["expires_at"] = None
    if value["expires_at"]:
        try:
            expires = dt.datetime.fromisoformat(value["expires_at"])
        except ValueError:
            reasons.append(f"expires_at: {value['expires_at']!r} is not an ISO 8601 date-time.")
        else:
            if expires.tzinfo is None:
                reasons.append("expires_at: needs a UTC offset, e.g. 2027-01-31T23:59:59+01:00 or ...Z.")
            else:
                fields["expires_at"] = expires.astimezone(dt.UTC)
    token = Token(tenant=tenant, uid=uid, **fields)
    if uid:
        try:
            # the model's own rules for the free-text fields (length, patterns); the enums, flags and dates are
            # parsed above, links are resolved per chunk and duplicates checked per chunk
            token.clean_fields(exclude=_NOT_CLEANED)
        except ValidationError as exc:
            reported = {r.split(":", 1)[0] for r in reasons}
            for name, messages in exc.message_dict.items():
                if name not in reported:
                    reasons.extend(f"{name}: {message}" for message in messages)
    return _Row(line, uid, token, reasons, value["driver_email"], value["contract_number"])


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _resolve_links(
    tenant: Tenant, chunk: list[_Row], drivers: dict[str, Driver | None], contracts: dict[str, Contract | None]
) -> None:
    """Look up the drivers and contracts the chunk names (one query each, remembered across chunks)."""
    emails = {row.driver_email.lower() for row in chunk if row.driver_email} - set(drivers)
    if emails:
        found = Driver.objects.filter(tenant=tenant).alias(email_ci=Lower("email")).filter(email_ci__in=emails)
        by_email = {d.email.lower(): d for d in found}
        drivers.update({email: by_email.get(email) for email in emails})
    numbers = {row.contract_number for row in chunk if row.contract_number} - set(contracts)
    if numbers:
        by_number = {c.number: c for c in Contract.objects.filter(tenant=tenant, number__in=numbers)}
        contracts.update({number: by_number.get(number) for number in numbers})
    for row in chunk:
        if row.token is None:
            continue
        if row.driver_email:
            driver = drivers[row.driver_email.lower()]
            if driver is None:
                row.reasons.append(f"driver_email: no driver with e-mail {row.driver_email!r}.")
            row.token.driver = driver
        if row.contract_number:
            contract = contracts[row.contract_number]
            if contract is None:
                row.reasons.append(f"contract_number: no contract {row.contract_number!r}.")
            else:
                row.token.business_contract = contract
                row.token.business_customer_id = contract.business_customer_id


def _copy_in(tokens: list[Token]) -> None:
    """Insert with COPY (several times faster than INSERT for large files); values are prepared by the model
    fields exactly as `save()` would, and PostgreSQL still enforces every constraint."""
    if not tokens:
        return
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in _INSERTED)
    table = connection.ops.quote_name(Token._meta.db_table)
    sql = f"COPY {table} ({columns}) FROM STDIN"
    # the raw psycopg cursor: wrap its errors so a unique violation arrives as Django's IntegrityError
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for token in tokens:
            copy.write_row([f.get_db_prep_save(f.pre_save(token, add=True), connection=connection) for f in _INSERTED])


def _published(tenant: Tenant, tokens: list[Token]) -> None:
    """The chunk's new tokens as one `TokensChanged` (roaming pushes them to CPO partners after the commit)."""
    if tokens:
        ids = Token.objects.filter(tenant=tenant, uid__in=[t.uid for t in tokens]).values_list("pk", flat=True)
        events.publish(events.TokensChanged(tenant_id=tenant.pk, token_ids=sorted(ids)))


def _check_duplicates(tenant: Tenant, chunk: list[_Row], seen: dict[str, int]) -> None:
    """A uid may not repeat (ignoring case), nor its OCPP idTag (`wire_id_for`: the uid itself when it fits in 20
    characters), in the file or against the stored tokens."""
    keys = {row.uid.lower() for row in chunk if row.uid}
    wires = {wire_id_for(row.uid).lower() for row in chunk if row.uid}
    stored = Token.objects.filter(tenant=tenant).annotate(uid_ci=Lower("uid"), wire_ci=Lower("wire_id"))
    stored_uids: set[str] = set()
    stored_wires: set[str] = set()
    for uid_ci, wire_ci in stored.filter(Q(uid_ci__in=keys) | Q(wire_ci__in=wires)).values_list("uid_ci", "wire_ci"):
        stored_uids.add(uid_ci)
        stored_wires.add(wire_ci)
    for row in chunk:
        if not row.uid:
            continue
        key, wire = row.uid.lower(), wire_id_for(row.uid).lower()
        first = seen.setdefault(key, row.line)
        first_wire = seen.setdefault(f" {wire}", row.line)  # a space: never part of a uid
        if first != row.line:
            row.reasons.append(f"uid: duplicate of line {first} in this file.")
        elif key in stored_uids:
            row.reasons.append("uid: a token with this uid exists already.")
        elif first_wire != row.line:
            row.reasons.append(f"uid: its OCPP idTag {wire_id_for(row.uid)} is that of line {first_wire} in this file.")
        elif wire in stored_wires:
            row.reasons.append(f"uid: its OCPP idTag {wire_id_for(row.uid)} is that of another token.")
