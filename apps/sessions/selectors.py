"""Reads of charging sessions, CDRs and reservations (querysets with their joins applied)."""

from __future__ import annotations

import datetime as dt
import json
import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import BooleanField, FloatField, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.customers.models import Driver, TokenType
from apps.sessions.models import Cdr, ChargingSession, MeterValue, Reservation, SessionStatus
from apps.stations.models import (
    Location,
    PartnerEvseStatus,
    PartnerLocation,
)
from apps.tariffs import pricing, retail
from apps.tariffs import selectors as tariff_selectors


def session_list() -> QuerySet[ChargingSession]:
    return ChargingSession.objects.select_related("charge_point", "location", "evse")


def meter_values_in_span(
    *, session_id: int, samples_from: dt.datetime | None, samples_until: dt.datetime | None
) -> QuerySet[MeterValue]:
    """A session's meter values, bounded by its sample span: the table is partitioned by day of the sample's
    timestamp, and these literal bounds let PostgreSQL prune to the days the session's samples are in (a query on
    `session_id` alone probes every day's index). Without a span (nothing stored through the services), unbounded."""
    rows = MeterValue.objects.filter(session_id=session_id)
    if samples_from is not None and samples_until is not None:
        rows = rows.filter(timestamp__gte=samples_from, timestamp__lte=samples_until)
    return rows


def session_meter_values(session: ChargingSession) -> QuerySet[MeterValue]:
    """The meter values of `session` (every reader: the session page's chart, pricing and the CDR, alerts)."""
    return meter_values_in_span(
        session_id=session.pk, samples_from=session.samples_from, samples_until=session.samples_until
    )


def cdr_list() -> QuerySet[Cdr]:
    return Cdr.objects.all()


def session_stored_price(*, session_id: int) -> dict[str, Any]:
    """The session's one price as stored at completion, for webhooks and messages: `cost` is None while it
    runs or when it could not be priced (`pricing_error` says why)."""
    row = (
        ChargingSession.objects.filter(pk=session_id)
        .values_list("currency", "cost_excl_vat", "cost_incl_vat", "pricing_error")
        .first()
    )
    if row is None:
        return {"cost": None, "pricing_error": ""}
    currency, excl, incl, error = row
    if excl is None or incl is None:
        return {"cost": None, "pricing_error": error}
    places = Decimal(1).scaleb(-pricing.minor_units(currency or "EUR"))
    return {
        "cost": {"currency": currency, "excl_vat": str(excl.quantize(places)), "incl_vat": str(incl.quantize(places))},
        "pricing_error": "",
    }


def reservation_list() -> QuerySet[Reservation]:
    return Reservation.objects.select_related("charge_point")


EARTH_RADIUS_KM = 6371.0088
# The spatial index (stations migration 0007): GiST on geo_ecef(latitude, longitude) over published locations in
# service. These expressions must stay exactly the index's.
GEO_COLUMN = "geo_ecef(latitude::float8, longitude::float8)"
GEO_CHORD = GEO_COLUMN + " <-> geo_ecef(%s, %s)"  # straight-line km through the Earth: nearest first on the sphere
GEO_KM = "2 * %s * asin(least(1.0, (" + GEO_CHORD + ") / (2 * %s)))"  # the great-circle km of that chord
GEO_IN_CUBE = GEO_COLUMN + " <@ cube(ARRAY[%s, %s, %s]::float8[], ARRAY[%s, %s, %s]::float8[])"


@dataclass(frozen=True)
class BoundingBox:
    """A map view: west, south, east, north in degrees; west > east crosses the antimeridian."""

    west: float
    south: float
    east: float
    north: float

    def contains_lon(self, lon: float) -> bool:
        return self.west <= lon <= self.east if self.west <= self.east else lon >= self.west or lon <= self.east

    def centre(self) -> tuple[float, float]:
        span = (self.east - self.west) % 360 if self.west != self.east else 0.0
        lon = self.west + span / 2
        return (self.south + self.north) / 2, lon - 360 if lon > 180 else lon


def _ecef(lat: float, lon: float) -> tuple[float, float, float]:
    la, lo = math.radians(lat), math.radians(lon)
    return (
        EARTH_RADIUS_KM * math.cos(la) * math.cos(lo),
        EARTH_RADIUS_KM * math.cos(la) * math.sin(lo),
        EARTH_RADIUS_KM * math.sin(la),
    )


def radius_chord_km(radius_km: float) -> float:
    """The straight-line distance of points `radius_km` apart on the sphere (the KNN distance of the index)."""
    return 2 * EARTH_RADIUS_KM * math.sin(min(radius_km / (2 * EARTH_RADIUS_KM), math.pi / 2))


def _radius_cube(lat: float, lon: float, radius_km: float) -> tuple[float, ...]:
    chord = radius_chord_km(radius_km) * (1 + 1e-9) + 1e-6  # float slack: the exact check follows
    centre = _ecef(lat, lon)
    return (*(c - chord for c in centre), *(c + chord for c in centre))


def _box_cube(box: BoundingBox) -> tuple[float, ...]:
    """The smallest 3-D box around a latitude/longitude rectangle on the sphere. x = R cos(lat) cos(lon) is a
    product of a factor of latitude (>= 0) and one of longitude, so its extremes are among the extremes of each
    factor: the rectangle's corners, the equator, and the meridians 0, 90, 180, 270 inside the longitude span."""
    lats = [box.south, box.north] + ([0.0] if box.south <= 0 <= box.north else [])
    lons = [box.west, box.east] + [m for m in (-180.0, -90.0, 0.0, 90.0, 180.0) if box.contains_lon(m)]
    points = [_ecef(la, lo) for la in lats for lo in lons]
    slack = 1e-6
    low = tuple(min(p[i] for p in points) - slack for i in range(3))
    high = tuple(max(p[i] for p in points) + slack for i in range(3))
    return (*low, *high)


def _geo_filtered_ordered(
    queryset: QuerySet[Any], *, lat: Any, lon: Any, radius_km: float | None, bbox: BoundingBox | None
) -> QuerySet[Any]:
    """A locations queryset (ours or partners', both with the `geo_ecef` GiST index) kept to `radius_km` or `bbox`
    and ordered nearest first from `lat`/`lon` (or the box's centre), `distance_km` annotated; by id without a
    point."""
    if bbox is not None:
        queryset = queryset.filter(
            RawSQL(GEO_IN_CUBE, _box_cube(bbox), output_field=BooleanField()),  # noqa: S611 (constant SQL)
            latitude__gte=bbox.south,
            latitude__lte=bbox.north,
        )
        if bbox.west <= bbox.east:
            queryset = queryset.filter(longitude__gte=bbox.west, longitude__lte=bbox.east)
        else:
            queryset = queryset.filter(Q(longitude__gte=bbox.west) | Q(longitude__lte=bbox.east))
        if lat is None or lon is None:
            lat, lon = bbox.centre()
    if lat is None or lon is None:
        return queryset.order_by("pk")
    plat, plon = float(lat), float(lon)
    chord = RawSQL(GEO_CHORD, (plat, plon), output_field=FloatField())  # noqa: S611 (constant SQL, bound values)
    km = RawSQL(  # noqa: S611 (constant SQL, values bound as parameters)
        GEO_KM, (EARTH_RADIUS_KM, plat, plon, EARTH_RADIUS_KM), output_field=FloatField()
    )
    queryset = queryset.annotate(geo_chord=chord, distance_km=km)
    if radius_km is not None:
        queryset = queryset.filter(
            RawSQL(GEO_IN_CUBE, _radius_cube(plat, plon, radius_km), output_field=BooleanField()),  # noqa: S611
            geo_chord__lte=radius_chord_km(radius_km),
        )
    if radius_km is None and bbox is None:
        # Nearest first over the whole network: the index hands out rows in KNN order and the scan stops after the
        # page. By the distance alone: PostgreSQL 15 cannot put a tie-breaker on top of KNN order (no incremental
        # sort there), and with `, id` it would read and sort every location. Equal distances (the same coordinates)
        # come in the index's order, stable while the rows do not change; the cursor's offset pages through them.
        return queryset.order_by("geo_chord")
    # Within a radius or a map box the index finds the rows (`<@`, bitmap scan); those are sorted, ties by id.
    return queryset.order_by("geo_chord", "pk")


# The plug, power and availability filters of the station search: one EXISTS over the location's usable EVSEs (and
# their connectors), in SQL. Built with the ORM (Exists over OuterRef querysets) they took 4.6 ms (ours) and 5.6 ms
# (partners') of building and compiling a search's statement, as long as executing it; with these the whole
# statement builds and compiles in 1.8 / 1.7 ms instead of 6.2 / 8.2 ms (radius 25 km + CCS >= 50 kW available,
# benchmarks/partner_search_bench.py database, 2026-12-06). The location is the statement's base table.
# Power in W: the connector's `max_electric_power`, else voltage x amperage (x 3 for a partner's AC_3_PHASE, whose
# OCPI `max_voltage` is line to neutral), as `station_rows` / `partner_station_rows` show it.
_OWN_EVSES = (
    "SELECT 1 FROM stations_chargepoint cp JOIN stations_evse e ON e.charge_point_id = cp.id"
    " WHERE cp.location_id = stations_location.id AND cp.decommissioned_at IS NULL AND e.decommissioned_at IS NULL"
)
_OWN_CONNECTORS = "stations_connector"
_OWN_CONNECTOR_POWER = "coalesce(nullif(c.max_electric_power, 0), c.max_voltage::bigint * c.max_amperage)"
_PARTNER_EVSES = (
    "SELECT 1 FROM stations_partnerevse e WHERE e.location_id = stations_partnerlocation.id AND e.status <> 'REMOVED'"
)
_PARTNER_CONNECTORS = "stations_partnerconnector"
_PARTNER_CONNECTOR_POWER = (
    "coalesce(nullif(c.max_electric_power, 0),"
    " c.max_voltage::bigint * c.max_amperage * CASE WHEN c.power_type = 'AC_3_PHASE' THEN 3 ELSE 1 END)"
)


def _evses_exist(
    evses: str, connectors: str, power: str, status: str | None, connector_type: str | None, min_power_w: int | None
) -> RawSQL:
    """EXISTS an EVSE of `evses` (with `status`) with a connector of `connector_type` and at least `min_power_w`."""
    sql, params = evses, list[str | int]()
    if status is not None:
        sql += " AND e.status = %s"
        params.append(status)
    if connector_type is not None or min_power_w is not None:
        sql += f" AND EXISTS (SELECT 1 FROM {connectors} c WHERE c.evse_id = e.id"  # noqa: S608 (a constant table)
        if connector_type is not None:
            sql += " AND c.standard = %s"
            params.append(connector_type)
        if min_power_w is not None:
            sql += f" AND {power} >= %s"
            params.append(min_power_w)
        sql += ")"
    return RawSQL(f"EXISTS ({sql})", params, output_field=BooleanField())  # noqa: S611 (constant SQL, bound values)


def _with_evses(
    queryset: QuerySet[Any],
    network: tuple[str, str, str],
    *,
    available: str,
    connector_type: str | None,
    min_power_w: int | None,
    only_available: bool | None,
) -> QuerySet[Any]:
    """Locations with an EVSE (of `network`: its EVSEs, connectors and power SQL) that has the plug and power asked
    for; `only_available` True: such an EVSE with the status `available`; False: none of them with it."""
    status = available if only_available else None
    queryset = queryset.filter(_evses_exist(*network, status, connector_type, min_power_w))
    if only_available is False:
        queryset = queryset.exclude(_evses_exist(*network, available, connector_type, min_power_w))
    return queryset


_OWN = (_OWN_EVSES, _OWN_CONNECTORS, _OWN_CONNECTOR_POWER)
_PARTNER = (_PARTNER_EVSES, _PARTNER_CONNECTORS, _PARTNER_CONNECTOR_POWER)


def stations_near(
    queryset: QuerySet[Location],
    *,
    lat: Decimal | float | None,
    lon: Decimal | float | None,
    radius_km: float | None,
    bbox: BoundingBox | None = None,
    connector_type: str | None = None,
    min_power_w: int | None = None,
    available: bool | None = None,
) -> QuerySet[Location]:
    """Published locations in service with their EVSEs and connectors in service (decommissioned locations, charge
    points and EVSEs are not offered to drivers), nearest first on the sphere from `lat`/`lon`, or from the centre
    of `bbox` when only a map view is given; without either, by id.

    `radius_km` and `bbox` keep what lies within (great-circle distance; the box in degrees, crossing the
    antimeridian when west > east). The filters keep locations with an EVSE in service that has a connector of
    `connector_type` and of at least `min_power_w`, and, with `available`, whose status is Available (`False`:
    locations without such an EVSE). The spatial index (GiST, stations migration 0007) answers the ordering (KNN)
    and the radius or box; distances are exact great-circle kilometres on a sphere of the mean Earth radius."""
    queryset = queryset.filter(publish=True, decommissioned_at__isnull=True)
    if connector_type is not None or min_power_w is not None or available is not None:
        queryset = _with_evses(
            queryset,
            _OWN,
            available="Available",
            connector_type=connector_type,
            min_power_w=min_power_w,
            only_available=available,
        )
    return _geo_filtered_ordered(queryset, lat=lat, lon=lon, radius_km=radius_km, bbox=bbox)


@dataclass(frozen=True, slots=True)
class StationEvse:
    """An EVSE as the driver station search shows and prices it."""

    id: int
    evse_id: str  # ours: evse_uid; a partner's: its eMI3 EVSE id, else its uid
    uid: str  # a partner's EVSE uid ("" for ours)
    status: str
    connector_types: tuple[str, ...]  # sorted, distinct
    max_power_w: int | None
    charge_point_id: int | None = None  # ours
    tariff_ids: tuple[str, ...] = ()  # a partner's: its connectors' tariff ids, in connector order


@dataclass(frozen=True, slots=True)
class Station:
    """A location of the driver station search, ours (`network` "own") or a roaming partner's ("partner"), with the
    EVSEs a driver can use (`station_rows`, `partner_station_rows`)."""

    id: int
    network: str
    tenant_id: int
    name: str
    address: str
    city: str
    country: str
    latitude: Decimal
    longitude: Decimal
    time_zone: str  # ours: the location's, else the tenant's; a partner's: as the CPO sent it ("" if not)
    operator_name: str
    operator_party: str  # OCPI party "DE*ABC", "" when unknown
    evses: tuple[StationEvse, ...]
    partner_id: int | None = None
    country_code: str = ""  # a partner location's CPO party
    party_id: str = ""
    vat_default: Decimal | None = None  # ours: the tenant's VAT rate
    distance_km: float | None = None

    def summary(self) -> dict[str, Any]:
        available = "Available" if self.network == OWN_NETWORK else PartnerEvseStatus.AVAILABLE
        return {
            "evses": len(self.evses),
            "available": sum(1 for e in self.evses if e.status == available),
            "connector_types": sorted({t for e in self.evses for t in e.connector_types}),
            "max_power_w": max((e.max_power_w for e in self.evses if e.max_power_w is not None), default=None),
        }


# A page's locations with their EVSEs and connectors in one statement per network, built by PostgreSQL as JSON:
# loading them as model instances (four prefetch queries, ~300 instances and ~850 related managers a page) cost
# 115 of the 245 ms of an uncached page under cProfile (benchmarks/partner_search_bench.py, 2026-12-06). Power in W
# as the filters compute it (`stations_near`, `_partner_power_w`), in bigint.
_OWN_ROWS = """
SELECT l.id, l.tenant_id, l.name, l.address, l.city, l.country, l.latitude, l.longitude,
    coalesce(nullif(l.timezone, ''), t.timezone), t.name, t.ocpi_country_code, t.ocpi_party_id, t.default_vat_rate,
    (SELECT coalesce(json_agg(json_build_array(e.id, e.charge_point_id, e.evse_uid, e.status,
            (SELECT coalesce(json_agg(json_build_array(c.standard,
                    coalesce(nullif(c.max_electric_power, 0), c.max_voltage::bigint * c.max_amperage))
                    ORDER BY c.id), '[]')
             FROM stations_connector c WHERE c.evse_id = e.id))
         ORDER BY cp.identity, e.connector_id, e.id), '[]')::text
     FROM stations_chargepoint cp JOIN stations_evse e ON e.charge_point_id = cp.id
     WHERE cp.location_id = l.id AND cp.decommissioned_at IS NULL AND e.decommissioned_at IS NULL)
FROM stations_location l JOIN tenants_tenant t ON t.id = l.tenant_id
WHERE l.id = ANY(%s)"""

_PARTNER_ROWS = """
SELECT l.id, l.tenant_id, l.name, l.address, l.city, l.country, l.latitude, l.longitude, l.time_zone,
    coalesce(nullif(l.operator_name, ''), p.name), l.country_code, l.party_id, l.partner_id,
    (SELECT coalesce(json_agg(json_build_array(e.id, e.evse_id, e.uid, e.status,
            (SELECT coalesce(json_agg(json_build_array(c.standard,
                    coalesce(nullif(c.max_electric_power, 0), c.max_voltage::bigint * c.max_amperage
                        * CASE WHEN c.power_type = 'AC_3_PHASE' THEN 3 ELSE 1 END), c.tariff_ids)
                    ORDER BY c.connector_id), '[]')
             FROM stations_partnerconnector c WHERE c.evse_id = e.id))
         ORDER BY e.uid), '[]')::text
     FROM stations_partnerevse e WHERE e.location_id = l.id AND e.status <> 'REMOVED')
FROM stations_partnerlocation l JOIN roaming_roamingpartner p ON p.id = l.partner_id
WHERE l.id = ANY(%s)"""


def _places(sql: str, ids: Sequence[int]) -> list[tuple[dict[str, Any], str, str, Any, list[list[Any]]]]:
    """The rows of `_OWN_ROWS` / `_PARTNER_ROWS` for `ids`: the place's own fields (as `Station` names them), the
    party's country code and id, the network's extra column, the EVSEs (decoded JSON)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ids)])
        found = cursor.fetchall()
    names = ("id", "tenant_id", "name", "address", "city", "country", "latitude", "longitude", "time_zone")
    return [
        (
            {**dict(zip(names, row[:9], strict=True)), "operator_name": row[9]},
            row[10],
            row[11],
            row[12],
            json.loads(row[13]),
        )
        for row in found
    ]


def _plugs(connectors: list[list[Any]]) -> dict[str, Any]:
    """An EVSE's connector types and power from its connectors ([standard, power in W, ...])."""
    return {
        "connector_types": tuple(sorted({c[0] for c in connectors})),
        "max_power_w": max((c[1] for c in connectors if c[1] is not None), default=None),
    }


def station_rows(ids: Sequence[int]) -> dict[int, Station]:
    """Our locations `ids` (those that still exist) with their EVSEs in service (charge point and EVSE not
    decommissioned; by charge point identity, then connector id) and connectors. One query."""
    return {
        place["id"]: Station(
            **place,
            network=OWN_NETWORK,
            operator_party=f"{cc}*{party}" if party else "",
            vat_default=vat,
            evses=tuple(
                StationEvse(id=pk, charge_point_id=cp, evse_id=uid, uid="", status=status, **_plugs(connectors))
                for pk, cp, uid, status, connectors in evses
            ),
        )
        for place, cc, party, vat, evses in _places(_OWN_ROWS, ids)
    }


# --------------------------------------------------------------------------- prices in the station search


MONEY_PLACES = Decimal("0.0001")


def driver_pricing_party(driver: Driver | None) -> tariff_selectors.PricingParty:
    """The price a driver app shows: a known driver is identified (regular tariffs, the employer's contract price
    list); no driver is an ad hoc caller. Same rule as `session_pricing_party`."""
    if driver is None:
        return tariff_selectors.AD_HOC
    return tariff_selectors.PricingParty(identified=True, business_customer_id=driver.business_customer_id)


def session_pricing_party(session: ChargingSession) -> tariff_selectors.PricingParty:
    """The price a session gets, from its links set at start: a business customer pays, or the id tag was a token
    of ours that is not a one-time ad hoc token (OCPI AD_HOC_USER: a card terminal's or a payment page's), or a
    known driver (a reservation's): identified. Otherwise (no token, an AD_HOC_USER token) ad hoc. Same rule as
    `driver_pricing_party`, which the driver API's station prices use."""
    if session.business_customer_id is not None:
        identified = True
    elif session.token_id is not None:
        identified = session.token is not None and session.token.type != TokenType.AD_HOC_USER
    else:
        identified = session.driver_id is not None
    return tariff_selectors.PricingParty(identified=identified, business_customer_id=session.business_customer_id)


def session_pricing_site(session: ChargingSession) -> tariff_selectors.PricingSite:
    location_id = session.location_id
    if location_id is None and session.charge_point_id is not None:
        location_id = session.charge_point.location_id
    return tariff_selectors.PricingSite(
        tenant_id=session.tenant_id,
        evse_id=session.evse_id,
        charge_point_id=session.charge_point_id,
        location_id=location_id,
    )


def _applies_now(restrictions: pricing.TariffRestrictions | None, local: dt.datetime, power_kw: Decimal | None) -> bool:
    """May this element price a session starting now on this EVSE? Time, date and weekday are checked at
    `local`; energy and duration at zero (the start); power against the EVSE's rating; never reservation."""
    if restrictions is None:
        return True
    r = restrictions
    if r.reservation is not None:
        return False
    t = local.time().replace(tzinfo=None)
    if r.start_time is not None and r.end_time is not None and r.end_time <= r.start_time:
        in_window = t >= r.start_time or t < r.end_time
    else:
        in_window = (r.start_time is None or t >= r.start_time) and (
            r.end_time is None or r.end_time == dt.time(0) or t < r.end_time
        )
    day = local.date()
    if not in_window or (r.start_date and day < r.start_date) or (r.end_date and day >= r.end_date):
        return False
    if r.day_of_week and pricing.WEEKDAYS[day.weekday()] not in r.day_of_week:
        return False
    if (r.min_kwh or 0) > 0 or (r.min_duration or 0) > 0 or r.max_kwh == 0 or r.max_duration == 0:
        return False
    if power_kw is None:
        return True
    return (r.min_power is None or power_kw >= r.min_power) and (r.max_power is None or power_kw < r.max_power)


def _money(value: Decimal) -> str:
    return str(value.quantize(MONEY_PLACES))


def price_summary(
    tariff: pricing.Tariff,
    *,
    local: dt.datetime,
    vat_default: Decimal | None,
    power_w: int | None,
    parking_grace_minutes: int = 0,
) -> dict[str, Any]:
    """What a session starting now costs, per dimension: per kWh, per minute (charging, parking), per session;
    excl. and incl. VAT (the component's VAT, else the tenant's rate), as decimal strings; parking after the
    grace period of every idle stretch."""
    power_kw = Decimal(power_w) / 1000 if power_w else None
    found: dict[str, pricing.PriceComponent] = {}
    for element in tariff.elements:
        if not _applies_now(element.restrictions, local, power_kw):
            continue
        for component in element.price_components:
            found.setdefault(str(component.type), component)

    def price(dimension: str, divisor: int = 1) -> dict[str, str] | None:
        component = found.get(dimension)
        if component is None:
            return None
        vat = component.vat if component.vat is not None else (vat_default or Decimal(0))
        excl = component.price / divisor
        return {"excl_vat": _money(excl), "incl_vat": _money(excl * (1 + vat / 100))}

    summary = {
        "tariff_id": tariff.id,
        "currency": tariff.currency,
        "per_kwh": price("ENERGY"),
        "per_minute": price("TIME", 60),  # OCPI TIME is priced per hour
        "parking_per_minute": price("PARKING_TIME", 60),
        "parking_grace_minutes": parking_grace_minutes,
        "per_session": price("FLAT"),
    }
    parking = " parking" + (f" after {parking_grace_minutes} min idle" if parking_grace_minutes else "")
    parts = [
        f"{summary[key]['incl_vat']} {tariff.currency}{unit}"  # type: ignore[index]
        for key, unit in (
            ("per_kwh", "/kWh"),
            ("per_minute", "/min"),
            ("parking_per_minute", "/min" + parking),
            ("per_session", " per session"),
        )
        if summary[key] is not None
    ]
    summary["text"] = (" + ".join(parts) + " incl. VAT") if parts else "free"
    return summary


def station_prices(
    stations: Sequence[Station], *, driver: Driver | None, at: dt.datetime
) -> dict[int, dict[str, Any] | None]:
    """EVSE id -> the price summary of what would price `driver`'s session starting `at` there: the same
    selection as at completion (`tariffs.selectors.pricing_selections` with `driver_pricing_party`). None: no
    session there can be priced for this caller (no tariff applies, or the contract price list is in another
    currency than the tariff). Four queries, whatever the number of locations."""
    evses = [(station, evse) for station in stations for evse in station.evses]
    if not evses:
        return {}
    sites = {
        evse.id: tariff_selectors.PricingSite(station.tenant_id, evse.id, evse.charge_point_id, station.id)
        for station, evse in evses
    }
    selections = tariff_selectors.pricing_selections(
        sites=list(sites.values()), at=at, party=driver_pricing_party(driver)
    )
    engines: dict[int, pricing.Tariff] = {}
    summaries: dict[tuple[Any, ...], dict[str, Any]] = {}
    prices: dict[int, dict[str, Any] | None] = {}
    for station, evse in evses:
        selection = selections[sites[evse.id]]
        if not selection.priceable or selection.tariff is None:
            prices[evse.id] = None
            continue
        if selection.tariff.pk not in engines:
            engines[selection.tariff.pk] = selection.engine_tariff()
        # EVSEs with the same tariff, zone, VAT and power cost the same: computed once a page
        key = (selection.tariff.pk, station.time_zone, station.vat_default, evse.max_power_w)
        if key not in summaries:
            summaries[key] = price_summary(
                engines[selection.tariff.pk],
                local=at.astimezone(zoneinfo.ZoneInfo(station.time_zone)),
                vat_default=station.vat_default,
                power_w=evse.max_power_w,
                parking_grace_minutes=selection.parking_grace_minutes,
            )
        prices[evse.id] = summaries[key]
    return prices


LIVE_SESSION_STATUSES = (SessionStatus.PENDING, SessionStatus.ACTIVE, SessionStatus.SUSPENDED, SessionStatus.FINISHING)


def live_connectors_subquery() -> ArraySubquery:
    """An annotation for a ChargePoint queryset: the connector ids with a session running on them."""
    return ArraySubquery(
        ChargingSession.objects.filter(charge_point=OuterRef("pk"), status__in=LIVE_SESSION_STATUSES)
        .order_by()
        .values("connector_id")
    )


def session_count_for_roaming_partner(*, tenant_id: int, party: str) -> int:
    """Sessions of a tenant's network marked with a roaming partner ("DE*ABC"): what keeps the partner's row."""
    return ChargingSession.objects.filter(tenant_id=tenant_id, roaming_partner=party).count()


# --------------------------------------------------------------------------- partner stations in the search (eMSP)

# The partner locations' spatial index (stations migration 0011): the same expression as ours, over published rows.
OWN_NETWORK = "own"
PARTNER_NETWORKS = "partners"


def partner_stations_near(
    queryset: QuerySet[PartnerLocation],
    *,
    lat: Decimal | float | None,
    lon: Decimal | float | None,
    radius_km: float | None,
    bbox: BoundingBox | None = None,
    connector_type: str | None = None,
    min_power_w: int | None = None,
    available: bool | None = None,
    operator: str | None = None,
) -> QuerySet[PartnerLocation]:
    """Published partner locations with an EVSE that is not REMOVED, their EVSEs (not REMOVED) and connectors, with
    the filters and the order of `stations_near` (same radius, box, plug, power and availability rules; available is
    the OCPI status AVAILABLE). `operator`: the location's operator name, the CPO's party (`DE*ABC`) or the roaming
    partner's name, case-insensitive. Answered by the partner locations' own spatial index (stations migration
    0011), so the partner network's size does not slow our own search down."""
    queryset = _with_evses(
        queryset.filter(publish=True),
        _PARTNER,
        available=PartnerEvseStatus.AVAILABLE,
        connector_type=connector_type,
        min_power_w=min_power_w,
        only_available=available,
    )
    if operator:
        party = Q()
        if len(operator) == 6 and operator[2] == "*":
            party = Q(country_code__iexact=operator[:2], party_id__iexact=operator[3:])
        queryset = queryset.filter(Q(operator_name__iexact=operator) | Q(partner__name__iexact=operator) | party)
    return _geo_filtered_ordered(queryset, lat=lat, lon=lon, radius_km=radius_km, bbox=bbox)


def partner_station_rows(ids: Sequence[int]) -> dict[int, Station]:
    """Partner locations `ids` (those that still exist) with their EVSEs that are not REMOVED (by uid) and their
    connectors (by connector id). One query."""
    return {
        place["id"]: Station(
            **place,
            network="partner",
            operator_party=f"{cc}*{party}",
            partner_id=partner,
            country_code=cc,
            party_id=party,
            evses=tuple(
                StationEvse(
                    id=pk,
                    evse_id=evse_id or uid,
                    uid=uid,
                    status=status,
                    tariff_ids=tuple(t for c in connectors for t in c[2]),
                    **_plugs(connectors),
                )
                for pk, evse_id, uid, status, connectors in evses
            ),
        )
        for place, cc, party, partner, evses in _places(_PARTNER_ROWS, ids)
    }


def _unit_price(terms: retail.RetailTerms, component: pricing.PriceComponent | None, *, per_kwh: bool) -> Any:
    """One unit price through the retail rule (`retail.retail_excl_vat`: a kWh for ENERGY, nothing for the other
    dimensions, so a fixed price per kWh replaces them with 0), our VAT on top; decimal strings."""
    if component is None:
        return None
    excl = retail.retail_excl_vat(terms, cpo_excl_vat=component.price, kwh=Decimal(1) if per_kwh else Decimal(0))
    return {"excl_vat": _money(excl), "incl_vat": _money(excl * (1 + terms.vat_rate / 100))}


def partner_station_prices(stations: Sequence[Station], *, at: dt.datetime) -> dict[int, dict[str, Any] | None]:
    """PartnerEvse id -> what our driver would pay there per unit: the CPO's tariff (the first connector's
    `tariff_ids` naming a `tariffs.PartnerTariff` of that partner and party), the components that apply to a
    session starting `at` (time, day, the EVSE's power), each through the tenant's retail rule for that partner.
    None: no tariff known (price unknown, never 0), unless the rule is a fixed price per kWh with a currency.
    Two queries (the tariffs, the rules), whatever the number of locations."""
    evses = [(loc, loc.partner_id, evse) for loc in stations if loc.partner_id is not None for evse in loc.evses]
    if not evses:
        return {}
    tariffs = tariff_selectors.partner_tariffs_matching(
        (partner, loc.country_code, loc.party_id, tariff_id)
        for loc, partner, evse in evses
        for tariff_id in evse.tariff_ids
    )
    rules = tariff_selectors.retail_rules(partner_ids={partner for _, partner, _ in evses})
    engines: dict[int, pricing.Tariff | None] = {}
    summaries: dict[tuple[Any, ...], dict[str, Any] | None] = {}
    prices: dict[int, dict[str, Any] | None] = {}
    for loc, partner, evse in evses:
        terms, rule_currency = rules.get(partner, (retail.RetailTerms(), ""))
        tariff = next(
            (
                tariffs[key]
                for tariff_id in evse.tariff_ids
                if (key := (partner, loc.country_code, loc.party_id, tariff_id)) in tariffs
            ),
            None,
        )
        engine = None
        if tariff is not None:
            if tariff.pk not in engines:
                try:
                    engines[tariff.pk] = pricing.tariff_from_ocpi(tariff.data)
                except (pricing.TariffFormatError, ValueError, TypeError, KeyError):
                    engines[tariff.pk] = None  # a tariff we cannot read: price unknown
            engine = engines[tariff.pk]
        # EVSEs of one partner with the same tariff, zone and power cost the same: computed once a page
        same = (tariff.pk if tariff is not None else None, partner, loc.time_zone, evse.max_power_w)
        if same not in summaries:
            summaries[same] = _partner_price(loc, evse, engine, terms, rule_currency, at=at)
        prices[evse.id] = summaries[same]
    return prices


def _partner_price(
    loc: Station,
    evse: StationEvse,
    engine: pricing.Tariff | None,
    terms: retail.RetailTerms,
    rule_currency: str,
    *,
    at: dt.datetime,
) -> dict[str, Any] | None:
    fixed = terms.mode == retail.FIXED_KWH
    if engine is None and not (fixed and rule_currency):
        return None
    found: dict[str, pricing.PriceComponent] = {}
    if engine is not None:
        try:
            zone = zoneinfo.ZoneInfo(loc.time_zone) if loc.time_zone else dt.UTC
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = dt.UTC
        power_kw = Decimal(evse.max_power_w) / 1000 if evse.max_power_w else None
        for element in engine.elements:
            if _applies_now(element.restrictions, at.astimezone(zone), power_kw):
                for component in element.price_components:
                    found.setdefault(str(component.type), component)
    currency = (rule_currency if fixed and rule_currency else None) or (engine.currency if engine else rule_currency)
    if fixed:  # the rule's price per kWh replaces every CPO price (`retail.retail_excl_vat`)
        found = {"ENERGY": pricing.PriceComponent(type=pricing.TariffDimensionType.ENERGY, price=Decimal(0))}
    summary: dict[str, Any] = {
        "tariff_id": engine.id if engine is not None else None,
        "currency": currency,
        "retail_mode": terms.mode,
        "vat_rate": str(terms.vat_rate),
        "per_kwh": _unit_price(terms, found.get("ENERGY"), per_kwh=True),
        "per_hour": _unit_price(terms, found.get("TIME"), per_kwh=False),
        "parking_per_hour": _unit_price(terms, found.get("PARKING_TIME"), per_kwh=False),
        "per_session": _unit_price(terms, found.get("FLAT"), per_kwh=False),
    }
    parts = [
        f"{summary[key]['incl_vat']} {currency}{unit}"
        for key, unit in (
            ("per_kwh", "/kWh"),
            ("per_hour", "/h"),
            ("parking_per_hour", "/h parking"),
            ("per_session", " per session"),
        )
        if summary[key] is not None and Decimal(summary[key]["incl_vat"]) != 0
    ]
    summary["text"] = (" + ".join(parts) + " incl. VAT") if parts else "free"
    return summary
