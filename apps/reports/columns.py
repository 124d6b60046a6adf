"""The session export's columns: ONE declarative list.

Each column names an SQL expression over the table aliases below and a type; the exporter renders it per
format (CSV text, XLSX cell XML) and leaves out or masks what the caller's role may not see. A new column is
one line here, plus a join in `JOINS` when it reads a new table.

Aliases: `s` session, `tn` tenant, `cp` charge point, `loc` location, `ev` EVSE, `plug` connector, and the
links the session stored at start: `tok` token, `drv` driver, `bc` business customer, `car` vehicle; `tr` the
tariff that priced it and `cdr` its CDR. Every join follows a foreign key of the session (or the CDR's unique
session key), so each is a plain hash join on an integer.

Not exported: the roaming partner (no session field records it yet).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from apps.customers.models import BusinessCustomer, Driver, Token, Vehicle
from apps.sessions.models import Cdr, ChargingSession
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
    "loc": (f"LEFT JOIN {_table(Location)} loc ON loc.id = s.location_id", ()),
    "ev": (f"LEFT JOIN {_table(Evse)} ev ON ev.id = s.evse_id", ()),
    "plug": (f"LEFT JOIN {_table(Connector)} plug ON plug.id = s.evse_connector_id", ()),
    "tok": (f"LEFT JOIN {_table(Token)} tok ON tok.id = s.token_id", ()),
    "drv": (f"LEFT JOIN {_table(Driver)} drv ON drv.id = s.driver_id", ()),
    "bc": (f"LEFT JOIN {_table(BusinessCustomer)} bc ON bc.id = s.business_customer_id", ()),
    "car": (f"LEFT JOIN {_table(Vehicle)} car ON car.id = s.vehicle_id", ()),
    "tr": (f"LEFT JOIN {_table(Tariff)} tr ON tr.id = s.tariff_id", ()),
    "cdr": (f"LEFT JOIN {_table(Cdr)} cdr ON cdr.session_id = s.id", ()),
}

T = ColumnType

COLUMNS: tuple[Column, ...] = (
    Column("session_id", "Session id", "s.id", T.INT),
    Column("status", "Status", "s.status", T.TEXT),
    Column("tenant", "Tenant", "tn.name", T.TEXT, ("tn",)),
    Column("cdr_id", "CDR id", "cdr.ocpi_id", T.TEXT, ("cdr",)),
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
    Column("connector_type", "Connector type", "plug.standard", T.TEXT, ("plug",)),
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
    Column(
        "vehicle",
        "Vehicle",
        "nullif(concat_ws(' ', car.make, car.model, nullif(car.licence_plate, '')), '')",
        T.TEXT,
        ("car",),
        personal=True,  # the licence plate identifies a person
    ),
    Column("start", "Start", "s.started_at", T.DATETIME),
    Column("stop", "Stop", "s.stopped_at", T.DATETIME),
    Column("duration", "Duration", "s.stopped_at - s.started_at", T.DURATION),
    Column("energy_kwh", "Energy (kWh)", "s.energy_wh", T.KWH),
    Column("max_power_kw", "Max power (kW)", "s.max_power_w", T.KW),
    Column("meter_start_wh", "Meter start (Wh)", "s.meter_start_wh", T.INT),
    Column("meter_stop_wh", "Meter stop (Wh)", "s.meter_stop_wh", T.INT),
    Column("tariff", "Tariff", "tr.ocpi_id", T.TEXT, ("tr",)),
    Column("cost_excl_vat", "Cost excl. VAT", "s.cost_excl_vat", T.MONEY),
    # rounded first, so that excl. + VAT = incl. in every row
    Column("vat", "VAT", "round(s.cost_incl_vat, 2) - round(s.cost_excl_vat, 2)", T.MONEY),
    Column("cost_incl_vat", "Cost incl. VAT", "s.cost_incl_vat", T.MONEY),
    Column("currency", "Currency", "nullif(s.currency, '')", T.TEXT),
    Column("stop_reason", "Stop reason", "nullif(s.stop_reason, '')", T.TEXT),
    Column("suspicious", "Suspicious", "CASE WHEN s.suspicious THEN 'yes' ELSE 'no' END", T.TEXT),
    Column(
        "suspicious_reasons",
        "Suspicious reasons",
        "CASE WHEN s.suspicious THEN array_to_string(s.suspicious_reasons, ' ') END",
        T.TEXT,
    ),
    Column("flags", "Flags", "CASE WHEN cardinality(s.flags) > 0 THEN array_to_string(s.flags, ' ') END", T.TEXT),
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
