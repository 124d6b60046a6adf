"""The session export's columns: ONE declarative list.

Each column names an SQL expression over the table aliases below and a type; the exporter renders it per
format (CSV text, XLSX cell XML) and leaves out or masks what the caller's role may not see. A column the
sessions or tariffs work adds later (tariff, cost excl./incl. VAT, currency, vehicle, roaming partner,
CDR id) is one line here, plus a join in `JOINS` when it reads a new table.

Aliases: `s` session, `tn` tenant, `cp` charge point, `loc` location, `ev` EVSE, `tok` token (matched on the
session's idTag, case-insensitively, as the token authorization does), `drv` driver, `bc` business customer
(the token's, else the driver's).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from apps.customers.models import BusinessCustomer, Driver, Token
from apps.sessions.models import ChargingSession
from apps.stations.models import ChargePoint, Evse, Location
from apps.tenants.models import Tenant


class ColumnType(enum.Enum):
    TEXT = "text"
    INT = "int"
    DECIMAL2 = "decimal2"  # money: two decimals
    DECIMAL3 = "decimal3"  # energy in kWh: Wh precision
    DATETIME = "datetime"  # expression is a timestamptz; shown in the tenant's time zone
    DURATION = "duration"  # expression is a number of seconds


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    sql: str
    type: ColumnType
    joins: tuple[str, ...] = ()
    personal: bool = False  # left out for roles without access to personal data
    token: bool = False  # masked (all but the last 4 characters) for roles without access to personal data


def _table(model: type) -> str:
    return str(model._meta.db_table)  # type: ignore[attr-defined]


SESSIONS_TABLE = _table(ChargingSession)

# alias -> (join clause, aliases it needs first); emitted in this order
JOINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tn": (f"JOIN {_table(Tenant)} tn ON tn.id = s.tenant_id", ()),
    "cp": (f"JOIN {_table(ChargePoint)} cp ON cp.id = s.charge_point_id", ()),
    "loc": (f"LEFT JOIN {_table(Location)} loc ON loc.id = cp.location_id", ("cp",)),
    "ev": (f"LEFT JOIN {_table(Evse)} ev ON ev.id = s.evse_id", ()),
    "tok": (
        f"LEFT JOIN {_table(Token)} tok ON tok.tenant_id = s.tenant_id AND lower(tok.uid) = lower(s.id_tag)",
        (),
    ),
    "drv": (f"LEFT JOIN {_table(Driver)} drv ON drv.id = tok.driver_id", ("tok",)),
    "bc": (
        f"LEFT JOIN {_table(BusinessCustomer)} bc"
        " ON bc.id = coalesce(tok.business_customer_id, drv.business_customer_id)",
        ("tok", "drv"),
    ),
}

T = ColumnType

COLUMNS: tuple[Column, ...] = (
    Column("session_id", "Session id", "s.id", T.INT),
    Column("status", "Status", "s.status", T.TEXT),
    Column("tenant", "Tenant", "tn.name", T.TEXT, ("tn",)),
    Column("location", "Location", "loc.name", T.TEXT, ("loc",)),
    Column(
        "location_address",
        "Location address",
        "concat_ws(', ', nullif(loc.address, ''), nullif(trim(loc.postal_code || ' ' || loc.city), ''), loc.country)",
        T.TEXT,
        ("loc",),
    ),
    Column("charge_point", "Charge point", "cp.identity", T.TEXT, ("cp",)),
    Column("evse_id", "EVSE id", "ev.evse_uid", T.TEXT, ("ev",)),
    Column("connector", "Connector", "s.connector_id", T.INT),
    Column("token_uid", "Token", "s.id_tag", T.TEXT, token=True),
    Column("token_type", "Token type", "tok.type", T.TEXT, ("tok",)),
    Column("contract_id", "Contract id (eMAID)", "nullif(tok.contract_id, '')", T.TEXT, ("tok",), token=True),
    Column(
        "driver",
        "Driver",
        "nullif(concat_ws(' ', nullif(drv.first_name, ''), drv.last_name), '')",
        T.TEXT,
        ("drv",),
        personal=True,
    ),
    Column("business_customer", "Business customer", "bc.name", T.TEXT, ("bc",), personal=True),
    Column("start", "Start", "s.started_at", T.DATETIME),
    Column("stop", "Stop", "s.stopped_at", T.DATETIME),
    Column("duration", "Duration", "date_part('epoch', s.stopped_at - s.started_at)::bigint", T.DURATION),
    Column("energy_kwh", "Energy (kWh)", "s.energy_wh / 1000.0", T.DECIMAL3),
    Column("meter_start_wh", "Meter start (Wh)", "s.meter_start_wh", T.INT),
    Column("meter_stop_wh", "Meter stop (Wh)", "s.meter_stop_wh", T.INT),
    Column("stop_reason", "Stop reason", "nullif(s.stop_reason, '')", T.TEXT),
    Column("suspicious", "Suspicious", "CASE WHEN cardinality(s.flags) > 0 THEN 'yes' ELSE 'no' END", T.TEXT),
    Column("flags", "Flags", "nullif(array_to_string(s.flags, ' '), '')", T.TEXT),
)

COLUMNS_BY_NAME = {column.name: column for column in COLUMNS}
assert len(COLUMNS_BY_NAME) == len(COLUMNS), "column names must be unique"


def visible_columns(*, personal_data: bool) -> list[Column]:
    """The columns a caller gets: personal columns only with access to personal data."""
    return [column for column in COLUMNS if personal_data or not column.personal]


def joins_for(aliases: set[str]) -> list[str]:
    """The join clauses for these aliases and what they depend on, in a valid order."""
    wanted: set[str] = set()

    def add(alias: str) -> None:
        if alias not in wanted:
            wanted.add(alias)
            for dependency in JOINS[alias][1]:
                add(dependency)

    for alias in aliases:
        add(alias)
    return [clause for alias, (clause, _) in JOINS.items() if alias in wanted]
