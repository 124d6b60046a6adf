"""The session export's columns: ONE declarative list.

Each column names an SQL expression and a type; `lines` renders it into each session's stored export line
(CSV and XLSX from one encoding) and leaves out or masks what the caller's role may not see. A new column is
one line here (plus an entry in `DIMENSIONS` when it reads a new table); the stored lines' layout version
changes with it, and beat re-renders every session.

A column reads either the session row (`s`, `dim=None`) or one dimension row the session links to by a
foreign key: `tn` tenant, `cp` charge point, `loc` location, `ev` EVSE, `plug` connector, `tok` token, `drv`
driver, `bc` business customer, `car` vehicle, `tr` tariff. The dimension columns a cell reads (`loc.name`)
are watched by triggers that queue the dimension's sessions again when they change. The CDR's id is stored on
the session, so the 10M-row CDR table is not joined at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from apps.customers.models import BusinessCustomer, Driver, Token, Vehicle
from apps.sessions.models import ChargingSession
from apps.stations.models import ChargePoint, Connector, Evse, Location
from apps.tariffs.models import Tariff
from apps.tenants.models import Tenant


class ColumnType(enum.Enum):
    TEXT = "text"
    INT = "int"
    MONEY = "money"  # expression is a numeric; shown with two decimals
    KWH = "kwh"  # expression is an integer number of Wh; shown in kWh with three decimals
    KW = "kw"  # expression is an integer number of W; shown in kW with one decimal
    DATETIME = "datetime"  # expression is a timestamptz; shown in the tenant's time zone
    DURATION = "duration"  # expression is an interval


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    sql: str
    type: ColumnType
    dim: str | None = None  # the dimension (alias in DIMENSIONS) whose row `sql` reads; None: the session `s`
    personal: bool = False  # left out for roles without access to personal data
    token: bool = False  # masked (all but the last 4 characters) for roles without access to personal data
    # a session text the platform itself writes from a closed set (status, codes, ISO currency): it never holds
    # a separator, quote, line break or XML special character, so it needs no per-row quoting or escaping
    plain: bool = False


def _table(model: type) -> str:
    return str(model._meta.db_table)  # type: ignore[attr-defined]


SESSIONS_TABLE = _table(ChargingSession)


@dataclass(frozen=True)
class Dimension:
    table: str
    session_key: str  # the session's foreign key column


DIMENSIONS: dict[str, Dimension] = {
    "tn": Dimension(_table(Tenant), "tenant_id"),
    "cp": Dimension(_table(ChargePoint), "charge_point_id"),
    "loc": Dimension(_table(Location), "location_id"),
    "ev": Dimension(_table(Evse), "evse_id"),
    "plug": Dimension(_table(Connector), "evse_connector_id"),
    "tok": Dimension(_table(Token), "token_id"),
    "drv": Dimension(_table(Driver), "driver_id"),
    "bc": Dimension(_table(BusinessCustomer), "business_customer_id"),
    "car": Dimension(_table(Vehicle), "vehicle_id"),
    "tr": Dimension(_table(Tariff), "tariff_id"),
}

T = ColumnType

COLUMNS: tuple[Column, ...] = (
    Column("session_id", "Session id", "s.id", T.INT),
    Column("status", "Status", "s.status", T.TEXT, plain=True),
    Column("tenant", "Tenant", "tn.name", T.TEXT, "tn"),
    Column("cdr_id", "CDR id", "nullif(s.cdr_ocpi_id, '')", T.TEXT),
    Column("location", "Location", "loc.name", T.TEXT, "loc"),
    Column(
        "location_address",
        "Location address",
        "concat_ws(', ', nullif(loc.address, ''), nullif(trim(loc.postal_code || ' ' || loc.city), ''), loc.country)",
        T.TEXT,
        "loc",
    ),
    Column("charge_point", "Charge point", "cp.identity", T.TEXT, "cp"),
    Column("evse_id", "EVSE id", "ev.evse_uid", T.TEXT, "ev"),
    Column("connector", "Connector", "s.connector_id", T.INT),
    Column("connector_type", "Connector type", "plug.standard", T.TEXT, "plug"),
    Column("token_uid", "Token", "s.id_tag", T.TEXT, token=True),
    Column("token_type", "Token type", "tok.type", T.TEXT, "tok"),
    Column("contract_id", "Contract id (eMAID)", "nullif(tok.contract_id, '')", T.TEXT, "tok", token=True),
    Column(
        "driver",
        "Driver",
        "nullif(concat_ws(' ', nullif(drv.first_name, ''), drv.last_name), '')",
        T.TEXT,
        "drv",
        personal=True,
    ),
    Column("business_customer", "Business customer", "bc.name", T.TEXT, "bc", personal=True),
    Column(
        "vehicle",
        "Vehicle",
        "nullif(concat_ws(' ', car.make, car.model, nullif(car.licence_plate, '')), '')",
        T.TEXT,
        "car",
        personal=True,  # the licence plate identifies a person
    ),
    Column("start", "Start", "s.started_at", T.DATETIME),
    Column("stop", "Stop", "s.stopped_at", T.DATETIME),
    Column("duration", "Duration", "s.stopped_at - s.started_at", T.DURATION),
    Column("energy_kwh", "Energy (kWh)", "s.energy_wh", T.KWH),
    Column("max_power_kw", "Max power (kW)", "s.max_power_w", T.KW),
    Column("meter_start_wh", "Meter start (Wh)", "s.meter_start_wh", T.INT),
    Column("meter_stop_wh", "Meter stop (Wh)", "s.meter_stop_wh", T.INT),
    Column("tariff", "Tariff", "tr.ocpi_id", T.TEXT, "tr"),
    Column("cost_excl_vat", "Cost excl. VAT", "s.cost_excl_vat", T.MONEY),
    # rounded first, so that excl. + VAT = incl. in every row
    Column("vat", "VAT", "round(s.cost_incl_vat, 2) - round(s.cost_excl_vat, 2)", T.MONEY),
    Column("cost_incl_vat", "Cost incl. VAT", "s.cost_incl_vat", T.MONEY),
    Column("currency", "Currency", "nullif(s.currency, '')", T.TEXT, plain=True),
    Column("stop_reason", "Stop reason", "nullif(s.stop_reason, '')", T.TEXT, plain=True),
    Column("roaming_partner", "Roaming partner", "nullif(s.roaming_partner, '')", T.TEXT),
    Column("suspicious", "Suspicious", "CASE WHEN s.suspicious THEN 'yes' ELSE 'no' END", T.TEXT, plain=True),
    Column(
        "suspicious_reasons",
        "Suspicious reasons",
        "CASE WHEN s.suspicious THEN array_to_string(s.suspicious_reasons, ' ') END",
        T.TEXT,
        plain=True,
    ),
    Column(
        "flags",
        "Flags",
        "CASE WHEN cardinality(s.flags) > 0 THEN array_to_string(s.flags, ' ') END",
        T.TEXT,
        plain=True,
    ),
)

COLUMNS_BY_NAME = {column.name: column for column in COLUMNS}
assert len(COLUMNS_BY_NAME) == len(COLUMNS), "column names must be unique"


def visible_columns(*, personal_data: bool) -> list[Column]:
    """The columns a caller gets: personal columns only with access to personal data."""
    return [column for column in COLUMNS if personal_data or not column.personal]
