"""The pricing engine: OCPI 2.2.1 tariffs applied to a session's charging periods. Pure: no database, no Django.

In: a `Tariff` (a dataclass tree, built from a stored tariff or from an OCPI Tariff object with
`tariff_from_ocpi`), the session's `ChargingPeriod`s (OCPI CDR shape: a start timestamp and dimensions in OCPI
units: ENERGY kWh; TIME, PARKING_TIME, RESERVATION_TIME hours; MIN/MAX_CURRENT A; MIN/MAX_POWER kW), the
session end, the charger's IANA time zone and the VAT rate. `charging_periods_from_samples` builds the periods
from meter values (timestamp, energy register Wh, power W). Out: a `CostBreakdown`.

The rules, as mod_tariffs.asciidoc and mod_cdrs.asciidoc (step_size) state them:

* Restrictions are evaluated per period, at the period's start, in the charger's local time (so DST is
  handled by the time zone database; the 02:00-03:00 hour that does not exist in spring is simply never
  seen, the one that happens twice in autumn is seen twice). A period must therefore not straddle a
  tariff boundary; `charging_periods_from_samples` splits at every one (restriction times of day on every
  local date, local midnights, DST transitions, min/max duration and min/max kWh thresholds, charging <->
  parking changes).
* Per period and per dimension, the first element (in list order) that has a component of that dimension
  and whose restrictions all match is used; no match means that dimension is free in that period.
* kWh/duration restrictions compare the energy / time consumed before the period (min inclusive, max
  exclusive). Current and power restrictions use the period's MIN_x for `min_x` (>=) and MAX_x for
  `max_x` (<); when only one of them is known it stands for both; power falls back to the period's average
  (energy / duration). A restriction on an unknown quantity does not match.
* Reservation: a period with a RESERVATION_TIME dimension is a reservation period; only elements with a
  `reservation` restriction apply to it, its time is priced by their TIME component, and their FLAT is
  counted once. Elements with a `reservation` restriction never apply to charging periods. For an expired
  reservation (`reservation_expired=True`) RESERVATION_EXPIRES elements come first, then RESERVATION ones
  (the spec's note: the expiry element wins for TIME when both have one).
* FLAT is counted once for the charging part (the first period in which some FLAT element matches) and once
  for the reservation part.
* step_size is applied once per session per group: ENERGY; TIME and PARKING_TIME combined; reservation time.
  The last period of the group with a billable (priced, non-zero) volume decides which dimension is rounded
  and with whose step_size: the session total of that dimension is rounded up to a multiple of it, and the
  extra is added to that last period (so it is billed at the last period's price). With TIME followed by
  PARKING_TIME only the parking total is rounded. step_size 0 means no rounding.
* min_price / max_price clamp the session total, excl. and incl. VAT independently. When a limit gives no
  incl_vat, its incl. VAT bound is derived from the excl. bound at the session's effective VAT ratio.
* VAT: a component's `vat`; where a component has none, the caller's `vat_rate` (our own tariffs use the
  tenant's rate); pass `vat_rate=None` for the spec's meaning ("omitted: no VAT").
* Tariff validity (`start_date_time`/`end_date_time`) is the selector's business, not the engine's.

Rounding, in exactly one place: every breakdown line (one per tariff element and dimension) is computed
exactly (billed volume x price, one division by the unit) and then rounded ONCE, half-up, to the currency's
minor units (2 for EUR), excl. VAT and incl. VAT each from the exact amount. Every total is the sum of the
rounded lines, so a breakdown always adds up to the cent; the min/max price adjustment is its own line.
(The spec leaves rounding to the parties; its complex example sums unrounded amounts: 10.30 where rounding
each line gives 10.31. Tests document this.)

Live "cost so far" is this same function on an open session with `end=now`.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import itertools
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from typing import Any

UTC = dt.UTC
ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
WH_PER_KWH = Decimal(1000)
SECONDS_PER_HOUR = Decimal(3600)
MICRO = Decimal("0.000001")
MILLI_WH = Decimal("0.001")

# ISO 4217 minor units where they are not 2
_MINOR_UNITS = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    "UGX": 0,
    "VND": 0,
    "XAF": 0,
    "XOF": 0,
}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The one rounding: half-up to the currency's minor units."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


class TariffDimensionType(enum.StrEnum):
    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class CdrDimensionType(enum.StrEnum):
    ENERGY = "ENERGY"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    RESERVATION_TIME = "RESERVATION_TIME"
    TIME = "TIME"


class DayOfWeek(enum.StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


WEEKDAYS = tuple(DayOfWeek)  # index = date.weekday()


class ReservationRestrictionType(enum.StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffFormatError(ValueError):
    """A tariff document that does not follow the OCPI Tariff structure."""


# --------------------------------------------------------------------------- the tariff


@dataclass(frozen=True)
class Price:
    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True)
class PriceComponent:
    type: TariffDimensionType
    price: Decimal  # per kWh, per hour, or per session (FLAT); excl. VAT
    vat: Decimal | None = None  # percent; None: not given
    step_size: int = 1  # Wh or seconds; ignored for FLAT


@dataclass(frozen=True)
class TariffRestrictions:
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: frozenset[DayOfWeek] = frozenset()
    reservation: ReservationRestrictionType | None = None


@dataclass(frozen=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None

    def component(self, dimension: TariffDimensionType) -> PriceComponent | None:
        for component in self.price_components:
            if component.type == dimension:
                return component
        return None

    @property
    def reservation(self) -> ReservationRestrictionType | None:
        return self.restrictions.reservation if self.restrictions else None


@dataclass(frozen=True)
class Tariff:
    currency: str
    elements: tuple[TariffElement, ...]
    min_price: Price | None = None
    max_price: Price | None = None
    id: str = ""


def _dec(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise TariffFormatError(f"{where}: expected a number, got {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise TariffFormatError(f"{where}: expected a number, got {value!r}") from exc


def _opt_dec(data: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = data.get(key)
    return None if value is None else _dec(value, f"{where}.{key}")


def _hhmm(value: Any, where: str) -> dt.time:
    try:
        hours, minutes = str(value).split(":")
        if len(hours) != 2 or len(minutes) != 2:
            raise ValueError(value)
        return dt.time(int(hours), int(minutes))
    except ValueError as exc:
        raise TariffFormatError(f"{where}: expected HH:MM, got {value!r}") from exc


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise TariffFormatError(f"{where}: expected YYYY-MM-DD, got {value!r}") from exc


def _price(data: Any, where: str) -> Price | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TariffFormatError(f"{where}: expected an object")
    return Price(_dec(data.get("excl_vat"), f"{where}.excl_vat"), _opt_dec(data, "incl_vat", where))


def restrictions_from_ocpi(data: Mapping[str, Any], where: str = "restrictions") -> TariffRestrictions:
    def opt_int(key: str) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TariffFormatError(f"{where}.{key}: expected an integer")
        return value

    try:
        days = frozenset(DayOfWeek(day) for day in data.get("day_of_week") or ())
        reservation = data.get("reservation")
        return TariffRestrictions(
            start_time=_hhmm(data["start_time"], f"{where}.start_time") if data.get("start_time") else None,
            end_time=_hhmm(data["end_time"], f"{where}.end_time") if data.get("end_time") else None,
            start_date=_date(data["start_date"], f"{where}.start_date") if data.get("start_date") else None,
            end_date=_date(data["end_date"], f"{where}.end_date") if data.get("end_date") else None,
            min_kwh=_opt_dec(data, "min_kwh", where),
            max_kwh=_opt_dec(data, "max_kwh", where),
            min_current=_opt_dec(data, "min_current", where),
            max_current=_opt_dec(data, "max_current", where),
            min_power=_opt_dec(data, "min_power", where),
            max_power=_opt_dec(data, "max_power", where),
            min_duration=opt_int("min_duration"),
            max_duration=opt_int("max_duration"),
            day_of_week=days,
            reservation=ReservationRestrictionType(reservation) if reservation else None,
        )
    except ValueError as exc:
        if isinstance(exc, TariffFormatError):
            raise
        raise TariffFormatError(f"{where}: {exc}") from exc


def elements_from_ocpi(elements: Any) -> tuple[TariffElement, ...]:
    if not isinstance(elements, Sequence) or isinstance(elements, str) or not elements:
        raise TariffFormatError("elements: expected a non-empty list")
    result = []
    for i, element in enumerate(elements):
        where = f"elements[{i}]"
        if not isinstance(element, Mapping) or not element.get("price_components"):
            raise TariffFormatError(f"{where}: expected an object with price_components")
        components = []
        for j, comp in enumerate(element["price_components"]):
            cwhere = f"{where}.price_components[{j}]"
            try:
                kind = TariffDimensionType(comp["type"])
            except (KeyError, ValueError, TypeError) as exc:
                raise TariffFormatError(f"{cwhere}.type: unknown dimension") from exc
            step = comp.get("step_size", 1)
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise TariffFormatError(f"{cwhere}.step_size: expected an integer >= 0")
            components.append(
                PriceComponent(kind, _dec(comp.get("price"), f"{cwhere}.price"), _opt_dec(comp, "vat", cwhere), step)
            )
        restrictions = element.get("restrictions")
        result.append(
            TariffElement(
                tuple(components),
                restrictions_from_ocpi(restrictions, f"{where}.restrictions") if restrictions else None,
            )
        )
    return tuple(result)


def tariff_from_ocpi(doc: Mapping[str, Any]) -> Tariff:
    """A Tariff from an OCPI 2.2.1 Tariff object (or our stored form of it, where numbers are strings)."""
    currency = doc.get("currency")
    if not isinstance(currency, str) or len(currency) != 3:
        raise TariffFormatError("currency: expected an ISO 4217 code")
    return Tariff(
        currency=currency.upper(),
        elements=elements_from_ocpi(doc.get("elements")),
        min_price=_price(doc.get("min_price"), "min_price"),
        max_price=_price(doc.get("max_price"), "max_price"),
        id=str(doc.get("id") or ""),
    )


# --------------------------------------------------------------------------- contract terms


@dataclass(frozen=True)
class ContractTerms:
    """A business customer's price list on top of the site's tariff.

    `energy_price_per_kwh` replaces the price of every ENERGY component; `discount_percent` lowers every
    other price (and the tariff's min/max price); `session_fee` is an extra line after the tariff's own
    min/max price (it is the contract's fee, not the site's). Monthly fees are billed by the invoice run.
    """

    discount_percent: Decimal = ZERO
    energy_price_per_kwh: Decimal | None = None
    session_fee: Decimal = ZERO
    session_fee_vat: Decimal | None = None
    currency: str | None = None  # when given, must be the tariff's


class PricingError(ValueError):
    """The inputs cannot be priced together (e.g. a price list in another currency than the tariff)."""


def tariff_with_contract(tariff: Tariff, terms: ContractTerms) -> Tariff:
    factor = ONE - terms.discount_percent / HUNDRED

    def component(c: PriceComponent) -> PriceComponent:
        if c.type == TariffDimensionType.ENERGY and terms.energy_price_per_kwh is not None:
            return replace(c, price=terms.energy_price_per_kwh)
        return replace(c, price=c.price * factor)

    def limit(p: Price | None) -> Price | None:
        if p is None:
            return None
        return Price(p.excl_vat * factor, None if p.incl_vat is None else p.incl_vat * factor)

    elements = tuple(
        replace(e, price_components=tuple(component(c) for c in e.price_components)) for e in tariff.elements
    )
    return replace(tariff, elements=elements, min_price=limit(tariff.min_price), max_price=limit(tariff.max_price))


# --------------------------------------------------------------------------- charging periods


@dataclass(frozen=True)
class CdrDimension:
    type: CdrDimensionType
    volume: Decimal


@dataclass(frozen=True)
class ChargingPeriod:
    start_date_time: dt.datetime  # aware
    dimensions: tuple[CdrDimension, ...]

    def volume(self, kind: CdrDimensionType) -> Decimal | None:
        for dimension in self.dimensions:
            if dimension.type == kind:
                return dimension.volume
        return None

    @property
    def is_reservation(self) -> bool:
        return self.volume(CdrDimensionType.RESERVATION_TIME) is not None


def period(start: dt.datetime, **volumes: Decimal | int | float | str) -> ChargingPeriod:
    """Shorthand: period(start, ENERGY="12.5", TIME="0.75", MAX_CURRENT=16)."""
    return ChargingPeriod(
        start, tuple(CdrDimension(CdrDimensionType(name), Decimal(str(value))) for name, value in volumes.items())
    )


def hours_to_seconds(hours: Decimal) -> Decimal:
    """OCPI time volumes are hours; the engine counts (micro)seconds so step sizes and sums stay exact."""
    return (hours * SECONDS_PER_HOUR).quantize(MICRO, rounding=ROUND_HALF_UP)


def seconds_between(a: dt.datetime, b: dt.datetime) -> Decimal:
    delta = b - a
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) * MICRO


def _seconds_to_hours(seconds: Decimal) -> Decimal:
    return seconds / SECONDS_PER_HOUR


HOURS_PLACES = Decimal("0.000001")


def _report_hours(seconds: Decimal) -> Decimal:
    """Session totals in hours for reports and CDRs, to 6 decimals (3.6 ms)."""
    return (seconds / SECONDS_PER_HOUR).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class _Context:
    """What restrictions are evaluated against, for one period."""

    local: dt.datetime
    energy_before_kwh: Decimal
    duration_before_s: Decimal
    min_current: Decimal | None
    max_current: Decimal | None
    min_power: Decimal | None
    max_power: Decimal | None
    reservation: bool
    reservation_expired: bool


MIDNIGHT = dt.time(0, 0)


def _in_time_window(t: dt.time, start: dt.time | None, end: dt.time | None) -> bool:
    """start inclusive, end exclusive; end before start wraps past midnight; end 00:00 is the end of the day."""
    if start is not None and end is not None and end <= start:
        return t >= start or t < end
    if start is not None and t < start:
        return False
    return end is None or end == MIDNIGHT or t < end


def restrictions_match(r: TariffRestrictions | None, ctx: _Context) -> bool:
    if r is None:
        return not ctx.reservation
    if r.reservation is None and ctx.reservation:
        return False
    if r.reservation is not None:
        if not ctx.reservation:
            return False
        if r.reservation == ReservationRestrictionType.RESERVATION_EXPIRES and not ctx.reservation_expired:
            return False
    local_time = ctx.local.time().replace(tzinfo=None)
    if not _in_time_window(local_time, r.start_time, r.end_time):
        return False
    day = ctx.local.date()
    if (r.start_date and day < r.start_date) or (r.end_date and day >= r.end_date):
        return False
    if r.day_of_week and WEEKDAYS[day.weekday()] not in r.day_of_week:
        return False
    if (r.min_kwh is not None and ctx.energy_before_kwh < r.min_kwh) or (
        r.max_kwh is not None and ctx.energy_before_kwh >= r.max_kwh
    ):
        return False
    if (r.min_duration is not None and ctx.duration_before_s < r.min_duration) or (
        r.max_duration is not None and ctx.duration_before_s >= r.max_duration
    ):
        return False
    if not _quantity_matches(r.min_current, r.max_current, ctx.min_current, ctx.max_current):
        return False
    return _quantity_matches(r.min_power, r.max_power, ctx.min_power, ctx.max_power)


def _quantity_matches(
    minimum: Decimal | None, maximum: Decimal | None, low: Decimal | None, high: Decimal | None
) -> bool:
    low = low if low is not None else high
    high = high if high is not None else low
    if minimum is not None and (low is None or low < minimum):
        return False
    return not (maximum is not None and (high is None or high >= maximum))


def _find(tariff: Tariff, dimension: TariffDimensionType, ctx: _Context) -> tuple[int, PriceComponent] | None:
    """The first element with a component of `dimension` whose restrictions match (expiry elements first)."""
    order: Iterable[int] = range(len(tariff.elements))
    if ctx.reservation and ctx.reservation_expired:
        expires = [
            i for i, e in enumerate(tariff.elements) if e.reservation == ReservationRestrictionType.RESERVATION_EXPIRES
        ]
        order = [*expires, *(i for i in range(len(tariff.elements)) if i not in expires)]
    for index in order:
        element = tariff.elements[index]
        component = element.component(dimension)
        if component is not None and restrictions_match(element.restrictions, ctx):
            return index, component
    return None


def _contexts(
    periods: Sequence[ChargingPeriod], end: dt.datetime, zone: zoneinfo.ZoneInfo, reservation_expired: bool
) -> list[tuple[ChargingPeriod, _Context, Decimal]]:
    """Each period with its restriction context and its duration in seconds."""
    ordered = sorted(periods, key=lambda p: p.start_date_time)
    charging_start = next((p.start_date_time for p in ordered if not p.is_reservation), None)
    energy_before = ZERO
    result = []
    for i, p in enumerate(ordered):
        p_end = ordered[i + 1].start_date_time if i + 1 < len(ordered) else end
        seconds = max(seconds_between(p.start_date_time, p_end), ZERO)
        energy = p.volume(CdrDimensionType.ENERGY) or ZERO
        min_power = p.volume(CdrDimensionType.MIN_POWER)
        max_power = p.volume(CdrDimensionType.MAX_POWER)
        if min_power is None and max_power is None and not p.is_reservation:
            if seconds > 0:
                min_power = max_power = energy / _seconds_to_hours(seconds)
            elif p.volume(CdrDimensionType.ENERGY) is None:
                min_power = max_power = ZERO
        ctx = _Context(
            local=p.start_date_time.astimezone(zone),
            energy_before_kwh=energy_before,
            duration_before_s=(
                seconds_between(charging_start, p.start_date_time) if charging_start and not p.is_reservation else ZERO
            ),
            min_current=p.volume(CdrDimensionType.MIN_CURRENT),
            max_current=p.volume(CdrDimensionType.MAX_CURRENT),
            min_power=min_power,
            max_power=max_power,
            reservation=p.is_reservation,
            reservation_expired=reservation_expired,
        )
        if not p.is_reservation:
            energy_before += energy
        result.append((p, ctx, seconds))
    return result


# --------------------------------------------------------------------------- the result


class CostGroup(enum.StrEnum):
    """The OCPI CDR cost fields: total_energy_cost, total_fixed_cost, total_time_cost, ..."""

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    TIME = "TIME"
    PARKING_TIME = "PARKING_TIME"
    RESERVATION = "RESERVATION"
    CONTRACT_FEE = "CONTRACT_FEE"
    PRICE_LIMIT = "PRICE_LIMIT"


@dataclass(frozen=True)
class CostLine:
    """One tariff element's price for one dimension over the session, rounded once."""

    group: CostGroup
    dimension: TariffDimensionType | None  # None for the price-limit adjustment
    element_index: int | None  # position in tariff.elements; None for contract fee and price limit
    price: Decimal  # per unit excl. VAT (per kWh, per hour, per session)
    vat: Decimal  # percent applied
    step_size: int
    volume: Decimal  # consumed: Wh (ENERGY), seconds (times), 1 (FLAT)
    billed_volume: Decimal  # after step_size
    excl_vat: Decimal
    incl_vat: Decimal

    @property
    def unit(self) -> str:
        if self.dimension == TariffDimensionType.ENERGY:
            return "Wh"
        if self.dimension in (TariffDimensionType.TIME, TariffDimensionType.PARKING_TIME):
            return "s"
        return ""

    @property
    def quantity(self) -> Decimal:
        """The billed volume in the unit the price is per: kWh, hours, or sessions."""
        if self.unit == "Wh":
            return self.billed_volume / WH_PER_KWH
        if self.unit == "s":
            return self.billed_volume / SECONDS_PER_HOUR
        return self.billed_volume

    @property
    def description(self) -> str:
        if self.group == CostGroup.PRICE_LIMIT:
            return "minimum/maximum price adjustment"
        if self.unit == "Wh":
            return f"{_kwh_text(self.billed_volume)} kWh at {_price_text(self.price)}/kWh"
        if self.unit == "s":
            return f"{_duration(self.billed_volume)} at {_price_text(self.price)}/h"
        return f"fee {_price_text(self.price)}"


def _trim(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _kwh_text(wh: Decimal) -> str:
    """kWh as people read a meter: to the Wh (3 decimals) at most, trailing zeros dropped (the engine's volumes
    are exact to 0.001 Wh; those digits are not printed)."""
    kwh = (wh / WH_PER_KWH).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    return _trim(kwh) if kwh else "0"


def _price_text(value: Decimal) -> str:
    """A unit price with at least two decimals: 0.50, 0.255."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return format(normal if isinstance(exponent, int) and exponent < -2 else value.quantize(Decimal("0.01")), "f")


def _duration(seconds: Decimal) -> str:
    whole = int(seconds.to_integral_value(rounding=ROUND_CEILING))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes or not parts:
        parts.append(f"{minutes} min")
    if secs:
        parts.append(f"{secs} s")
    return " ".join(parts)


@dataclass(frozen=True)
class AppliedPeriod:
    """Which element priced which dimension in a period (for CDR charging periods and for explaining)."""

    start_date_time: dt.datetime
    seconds: Decimal
    elements: Mapping[str, int]  # dimension -> element index


@dataclass(frozen=True)
class CostBreakdown:
    currency: str
    lines: tuple[CostLine, ...]
    total_excl_vat: Decimal
    total_incl_vat: Decimal
    total_energy: Decimal  # kWh
    total_time: Decimal  # hours (6 decimals), charging and parking (OCPI CDR total_time)
    total_charging_time: Decimal  # hours (6 decimals)
    total_parking_time: Decimal  # hours (6 decimals)
    total_reservation_time: Decimal  # hours (6 decimals)
    periods: tuple[AppliedPeriod, ...] = field(default=())

    def group_total(self, group: CostGroup) -> tuple[Decimal, Decimal]:
        lines = [line for line in self.lines if line.group == group]
        return sum((x.excl_vat for x in lines), ZERO), sum((x.incl_vat for x in lines), ZERO)

    @property
    def by_dimension(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            group.value: self.group_total(group) for group in CostGroup if any(x.group == group for x in self.lines)
        }

    def by_element(self) -> dict[int, tuple[Decimal, Decimal]]:
        result: dict[int, tuple[Decimal, Decimal]] = {}
        for line in self.lines:
            if line.element_index is not None:
                excl, incl = result.get(line.element_index, (ZERO, ZERO))
                result[line.element_index] = (excl + line.excl_vat, incl + line.incl_vat)
        return result


# --------------------------------------------------------------------------- pricing


@dataclass
class _Entry:
    period_index: int
    element_index: int
    component: PriceComponent
    group: CostGroup
    volume: Decimal  # Wh or seconds
    extra: Decimal = ZERO  # added by step_size rounding


def _ceil_to(value: Decimal, step: int) -> Decimal:
    if step <= 0 or value <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def _apply_step(entries: list[_Entry]) -> None:
    """Round the session total of the last billable entry's dimension up to that entry's step_size."""
    billable = [e for e in entries if e.volume > 0]
    if not billable:
        return
    last = billable[-1]
    same = [e for e in billable if e.component.type == last.component.type]
    total = sum((e.volume for e in same), ZERO)
    last.extra = _ceil_to(total, last.component.step_size) - total


def price_session(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    *,
    end: dt.datetime,
    time_zone: str,
    vat_rate: Decimal | None = None,
    reservation_expired: bool = False,
    contract: ContractTerms | None = None,
    parking_grace_seconds: int = 0,
) -> CostBreakdown:
    """Price a session (open or closed: pass `end=now` for the live cost so far).

    `parking_grace_seconds`: the first so many seconds of every idle stretch (consecutive PARKING_TIME periods)
    are not billed; they still count as parking time in the totals."""
    if contract is not None:
        if contract.currency is not None and contract.currency.upper() != tariff.currency:
            raise PricingError(f"The price list is in {contract.currency}, the tariff in {tariff.currency}.")
        tariff = tariff_with_contract(tariff, contract)
    if parking_grace_seconds < 0:
        raise PricingError("The parking grace period must not be negative.")
    zone = zoneinfo.ZoneInfo(time_zone)
    with localcontext() as context:
        context.prec = 40
        return _compute(
            tariff, periods, end, zone, vat_rate, reservation_expired, contract, Decimal(parking_grace_seconds)
        )


def _compute(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    end: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    vat_rate: Decimal | None,
    reservation_expired: bool,
    contract: ContractTerms | None,
    grace: Decimal,
) -> CostBreakdown:
    contexts = _contexts(periods, end, zone, reservation_expired)
    grace_left = grace  # of the current idle stretch; a charging period starts a new one
    energy_entries: list[_Entry] = []
    time_entries: list[_Entry] = []
    reservation_entries: list[_Entry] = []
    flats: dict[bool, _Entry] = {}
    applied = []
    totals = {"energy": ZERO, "time": ZERO, "parking": ZERO, "reservation": ZERO}

    for index, (p, ctx, _seconds) in enumerate(contexts):
        used: dict[str, int] = {}
        if ctx.reservation:
            seconds = hours_to_seconds(p.volume(CdrDimensionType.RESERVATION_TIME) or ZERO)
            totals["reservation"] += seconds
            found = _find(tariff, TariffDimensionType.TIME, ctx)
            if found:
                reservation_entries.append(_Entry(index, found[0], found[1], CostGroup.RESERVATION, seconds))
                used[CdrDimensionType.RESERVATION_TIME] = found[0]
        else:
            energy_wh = (p.volume(CdrDimensionType.ENERGY) or ZERO) * WH_PER_KWH
            totals["energy"] += energy_wh
            found = _find(tariff, TariffDimensionType.ENERGY, ctx)
            if found:
                energy_entries.append(_Entry(index, found[0], found[1], CostGroup.ENERGY, energy_wh))
                used[CdrDimensionType.ENERGY] = found[0]
            if p.volume(CdrDimensionType.PARKING_TIME) is None:
                grace_left = grace  # charging: the next idle stretch has its own grace period
            for kind, dimension, key in (
                (CdrDimensionType.TIME, TariffDimensionType.TIME, "time"),
                (CdrDimensionType.PARKING_TIME, TariffDimensionType.PARKING_TIME, "parking"),
            ):
                hours = p.volume(kind)
                if hours is None:
                    continue
                seconds = hours_to_seconds(hours)
                totals[key] += seconds
                billed = seconds
                if kind == CdrDimensionType.PARKING_TIME:
                    free = min(seconds, grace_left)
                    grace_left -= free
                    billed = seconds - free
                    if billed <= 0:
                        continue  # inside the grace period: parking time, not billed
                found = _find(tariff, dimension, ctx)
                if found:
                    time_entries.append(_Entry(index, found[0], found[1], CostGroup(dimension.value), billed))
                    used[kind] = found[0]
        if ctx.reservation not in flats:
            found = _find(tariff, TariffDimensionType.FLAT, ctx)
            if found:
                group = CostGroup.RESERVATION if ctx.reservation else CostGroup.FLAT
                flats[ctx.reservation] = _Entry(index, found[0], found[1], group, ONE)
                used[TariffDimensionType.FLAT] = found[0]
        applied.append(AppliedPeriod(p.start_date_time, _seconds, used))

    for group_entries in (energy_entries, time_entries, reservation_entries):
        _apply_step(group_entries)

    # one line per (group, element, dimension); volumes summed first, priced once, rounded once
    grouped: dict[tuple[CostGroup, int, TariffDimensionType], list[_Entry]] = {}
    for entry in [*flats.values(), *energy_entries, *time_entries, *reservation_entries]:
        grouped.setdefault((entry.group, entry.element_index, entry.component.type), []).append(entry)
    lines = []
    for (group, element_index, dimension), entries in sorted(grouped.items(), key=lambda kv: _line_order(kv[0])):
        component = entries[0].component
        volume = sum((e.volume for e in entries), ZERO)
        billed = volume + sum((e.extra for e in entries), ZERO)
        divisor = {TariffDimensionType.ENERGY: WH_PER_KWH, TariffDimensionType.FLAT: ONE}.get(
            dimension, SECONDS_PER_HOUR
        )
        exact = billed * component.price / divisor
        vat = _vat(component.vat, vat_rate)
        lines.append(
            CostLine(
                group=group,
                dimension=dimension,
                element_index=element_index,
                price=component.price,
                vat=vat,
                step_size=component.step_size,
                volume=volume,
                billed_volume=billed,
                excl_vat=round_money(exact, tariff.currency),
                incl_vat=round_money(exact * (ONE + vat / HUNDRED), tariff.currency),
            )
        )

    limit = _price_limit(tariff, lines, vat_rate)
    if limit is not None:
        lines.append(limit)
    if contract is not None and contract.session_fee:
        vat = _vat(contract.session_fee_vat, vat_rate)
        lines.append(
            CostLine(
                group=CostGroup.CONTRACT_FEE,
                dimension=TariffDimensionType.FLAT,
                element_index=None,
                price=contract.session_fee,
                vat=vat,
                step_size=0,
                volume=ONE,
                billed_volume=ONE,
                excl_vat=round_money(contract.session_fee, tariff.currency),
                incl_vat=round_money(contract.session_fee * (ONE + vat / HUNDRED), tariff.currency),
            )
        )

    return CostBreakdown(
        currency=tariff.currency,
        lines=tuple(lines),
        total_excl_vat=sum((x.excl_vat for x in lines), ZERO),
        total_incl_vat=sum((x.incl_vat for x in lines), ZERO),
        total_energy=totals["energy"] / WH_PER_KWH,
        total_time=_report_hours(totals["time"] + totals["parking"]),
        total_charging_time=_report_hours(totals["time"]),
        total_parking_time=_report_hours(totals["parking"]),
        total_reservation_time=_report_hours(totals["reservation"]),
        periods=tuple(applied),
    )


_GROUP_ORDER = {
    g: i
    for i, g in enumerate(
        [CostGroup.RESERVATION, CostGroup.FLAT, CostGroup.ENERGY, CostGroup.TIME, CostGroup.PARKING_TIME]
    )
}


def _line_order(key: tuple[CostGroup, int, TariffDimensionType]) -> tuple[int, int, str]:
    group, element_index, dimension = key
    return _GROUP_ORDER[group], element_index, dimension.value


def _vat(component_vat: Decimal | None, default: Decimal | None) -> Decimal:
    if component_vat is not None:
        return component_vat
    return default if default is not None else ZERO


def _clamp(value: Decimal, low: Decimal | None, high: Decimal | None) -> Decimal:
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value


def _price_limit(tariff: Tariff, lines: list[CostLine], vat_rate: Decimal | None) -> CostLine | None:
    if tariff.min_price is None and tariff.max_price is None:
        return None
    currency = tariff.currency
    excl = sum((x.excl_vat for x in lines), ZERO)
    incl = sum((x.incl_vat for x in lines), ZERO)
    ratio = incl / excl if excl else ONE + _vat(None, vat_rate) / HUNDRED

    def bounds(p: Price | None) -> tuple[Decimal | None, Decimal | None]:
        if p is None:
            return None, None
        incl_bound = p.incl_vat if p.incl_vat is not None else p.excl_vat * ratio
        return round_money(p.excl_vat, currency), round_money(incl_bound, currency)

    min_excl, min_incl = bounds(tariff.min_price)
    max_excl, max_incl = bounds(tariff.max_price)
    new_excl = _clamp(excl, min_excl, max_excl)
    new_incl = _clamp(incl, min_incl, max_incl)
    if new_excl == excl and new_incl == incl:
        return None
    return CostLine(
        group=CostGroup.PRICE_LIMIT,
        dimension=None,
        element_index=None,
        price=ZERO,
        vat=ZERO,
        step_size=0,
        volume=ZERO,
        billed_volume=ZERO,
        excl_vat=new_excl - excl,
        incl_vat=new_incl - incl,
    )


# --------------------------------------------------------------------------- periods from meter values


@dataclass(frozen=True)
class MeterSample:
    timestamp: dt.datetime  # aware
    energy_wh: Decimal | int  # the meter's energy register
    power_w: Decimal | int | None = None  # active power at that moment, if measured


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC)


# --------------------------------------------------------------------------- idle time from evidence

# OCPP 1.6 connector statuses that say the car is connected but not drawing: SuspendedEV (the car does not take
# energy) and Finishing (the transaction stopped, the car is still there). SuspendedEVSE is the charger's own
# pause (smart charging, a 0 A profile): not the driver's idle time.
IDLE_STATUSES = frozenset({"SuspendedEV", "Finishing"})
# "measured power ~ 0": the register rose by less than this average power over a metering interval ...
IDLE_POWER_W = Decimal(50)
# ... and the register stood (nearly) still for at least this long, between readings the charger sent
IDLE_MIN_SECONDS = 60


@dataclass(frozen=True)
class StatusChange:
    """A connector status the charger reported (StatusNotification), at the charger's timestamp."""

    timestamp: dt.datetime  # aware
    status: str  # OCPP 1.6 ChargePointStatus: Charging, SuspendedEV, SuspendedEVSE, Finishing, ...


@dataclass(frozen=True)
class IdleSpan:
    """A stretch of the session in which the car was connected but not drawing, and what says so."""

    start: dt.datetime
    end: dt.datetime
    evidence: str  # "status:SuspendedEV", "status:Finishing", "meter", or several joined by "+"

    @property
    def seconds(self) -> Decimal:
        return seconds_between(self.start, self.end)


def idle_spans(
    *, samples: Sequence[MeterSample], statuses: Sequence[StatusChange], start: dt.datetime, stop: dt.datetime
) -> list[IdleSpan]:
    """When the car was idle during [start, stop), from what the charger said, never from a guess.

    Evidence (either is enough):
    * status: from a StatusNotification SuspendedEV or Finishing (at or after `start`) until the next other
      status (Charging, SuspendedEVSE, ...) or `stop`;
    * meter: readings (`samples`: the StartTransaction register and the MeterValues readings, with the power
      measured at the same instant where the charger sent it) between which the register rose by less than
      IDLE_POWER_W on average, with no measured power above it, for at least IDLE_MIN_SECONDS in a row. When the
      last reading before `stop` ends such a stretch, the car stays idle until `stop`.
    The time between the last reading and `stop` is never evidence by itself: a register that did not move in
    the 0.05 s before a StopTransaction says nothing about the car. No evidence: no idle time.
    """
    start, stop = _utc(start), _utc(stop)
    found: list[IdleSpan] = []

    since: dt.datetime | None = None
    reason = ""
    for change in sorted(statuses, key=lambda c: _utc(c.timestamp)):
        at = _utc(change.timestamp)
        if at < start or at >= stop:
            continue
        if change.status in IDLE_STATUSES:
            if since is None:
                since, reason = at, f"status:{change.status}"
        elif since is not None:
            found.append(IdleSpan(since, at, reason))
            since = None
    if since is not None:
        found.append(IdleSpan(since, stop, reason))

    readings: dict[dt.datetime, tuple[Decimal, Decimal | None]] = {}
    for sample in samples:
        at = _utc(sample.timestamp)
        if start <= at < stop:
            energy = Decimal(sample.energy_wh)
            power = None if sample.power_w is None else Decimal(sample.power_w)
            old = readings.get(at)
            if old is not None:  # two readings of one instant (contexts): the higher register, the higher power
                energy = max(energy, old[0])
                power = old[1] if power is None else power if old[1] is None else max(power, old[1])
            readings[at] = (energy, power)
    points = sorted(readings.items())
    flat_from: dt.datetime | None = None
    flat_to: dt.datetime | None = None

    def close_flat() -> None:
        if flat_from is not None and flat_to is not None and seconds_between(flat_from, flat_to) >= IDLE_MIN_SECONDS:
            end = stop if flat_to == points[-1][0] else flat_to
            found.append(IdleSpan(flat_from, end, "meter"))

    for (t0, (e0, p0)), (t1, (e1, p1)) in itertools.pairwise(points):
        seconds = seconds_between(t0, t1)
        drawn = (e1 - e0) * SECONDS_PER_HOUR >= IDLE_POWER_W * seconds or any(
            p is not None and p >= IDLE_POWER_W for p in (p0, p1)
        )
        if drawn:
            close_flat()
            flat_from = flat_to = None
        else:
            flat_from = flat_from or t0
            flat_to = t1
    close_flat()
    return _merge_spans(found)


def _merge_spans(spans: Iterable[IdleSpan]) -> list[IdleSpan]:
    merged: list[IdleSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if span.end <= span.start:
            continue
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            evidence = last.evidence.split("+")
            evidence += [e for e in span.evidence.split("+") if e not in evidence]
            merged[-1] = IdleSpan(last.start, max(last.end, span.end), "+".join(evidence))
        else:
            merged.append(span)
    return merged


def dst_transitions(start: dt.datetime, stop: dt.datetime, zone: zoneinfo.ZoneInfo) -> list[dt.datetime]:
    """UTC instants in (start, stop) where the zone's offset changes (to the second)."""
    found = []
    step = dt.timedelta(hours=1)
    a = start
    while a < stop:
        b = min(a + step, stop)
        if a.astimezone(zone).utcoffset() != b.astimezone(zone).utcoffset():
            lo, hi = a, b  # offset(lo) != offset(hi): bisect to the first instant with the new offset
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid <= lo:
                    mid = lo + dt.timedelta(seconds=1)
                if mid.astimezone(zone).utcoffset() == a.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            if start < hi < stop:
                found.append(hi)
        a = b
    return found


def _local_boundaries(
    tariff: Tariff, start: dt.datetime, stop: dt.datetime, zone: zoneinfo.ZoneInfo
) -> set[dt.datetime]:
    """Every UTC instant in (start, stop) where a restriction's time of day or a local day begins."""
    times = {dt.time(0, 0)}
    for element in tariff.elements:
        r = element.restrictions
        if r is not None:
            times.update(t for t in (r.start_time, r.end_time) if t is not None)
    first = start.astimezone(zone).date() - dt.timedelta(days=1)
    last = stop.astimezone(zone).date() + dt.timedelta(days=1)
    found = set()
    day = first
    while day <= last:
        for t in times:
            for fold in (0, 1):
                instant = dt.datetime.combine(day, t, tzinfo=zone).replace(fold=fold).astimezone(UTC)
                if start < instant < stop:
                    found.add(instant)
        day += dt.timedelta(days=1)
    found.update(dst_transitions(start, stop, zone))
    return found


class _Curve:
    """The energy register as a piecewise-linear function of time, with the power measured per segment."""

    def __init__(self, samples: Sequence[MeterSample], start: dt.datetime, stop: dt.datetime) -> None:
        points = sorted(((_utc(s.timestamp), Decimal(s.energy_wh), s.power_w) for s in samples), key=lambda x: x[0])
        if not points:
            points = [(start, ZERO, None)]
        self.points = points
        # before the first and after the last sample the register is taken as flat
        self.times = [t for t, _, _ in points]

    def energy_at(self, t: dt.datetime) -> Decimal:
        points = self.points
        if t <= points[0][0]:
            return points[0][1]
        if t >= points[-1][0]:
            return points[-1][1]
        i = bisect.bisect_right(self.times, t)  # points[i - 1] <= t < points[i]
        (t0, e0, _), (t1, e1, _) = points[i - 1], points[i]
        if t == t0 or t1 == t0:
            return e0
        value = e0 + (e1 - e0) * seconds_between(t0, t) / seconds_between(t0, t1)
        return value.quantize(MILLI_WH, rounding=ROUND_HALF_UP)

    def power_at(self, t: dt.datetime) -> Decimal | None:
        """Measured power (W) of the segment that starts at or before t, if the sample carried one."""
        i = bisect.bisect_right(self.times, t)
        power = self.points[i - 1][2] if i else None
        return None if power is None else Decimal(power)

    def average_power_at(self, t: dt.datetime) -> Decimal | None:
        """Average power (W) of the segment between the two samples around t (at a sample: the segment it starts);
        None before the first sample and from the last on. The same for every piece a cut makes of a segment: from
        the pieces' interpolated (milli-Wh rounded) energies a 10 kW segment cut at local midnight gave
        9.9999974 and 10.0000004 kW."""
        i = bisect.bisect_right(self.times, t)
        if i == 0 or i >= len(self.points):
            return None
        (t0, e0, _), (t1, e1, _) = self.points[i - 1], self.points[i]
        seconds = seconds_between(t0, t1)
        return (e1 - e0) / _seconds_to_hours(seconds) if seconds > 0 else None

    def crossing(self, base: Decimal, amount_wh: Decimal) -> dt.datetime | None:
        """First instant the register reaches base + amount_wh."""
        target = base + amount_wh
        for (t0, e0, _), (t1, e1, _) in zip(self.points, self.points[1:], strict=False):
            if e0 < target <= e1 and e1 > e0:
                fraction = (target - e0) / (e1 - e0)
                offset = seconds_between(t0, t1) * fraction
                micro = int(offset.quantize(MICRO, rounding=ROUND_CEILING) / MICRO)
                return t0 + dt.timedelta(microseconds=micro)
        return None


def charging_periods_from_samples(
    *,
    tariff: Tariff,
    samples: Sequence[MeterSample],
    start: dt.datetime,
    stop: dt.datetime,
    time_zone: str,
    idle: Sequence[IdleSpan] = (),
    reserved_from: dt.datetime | None = None,
    reservation_expired: bool = False,
) -> list[ChargingPeriod]:
    """OCPI charging periods from meter values, split at every tariff-relevant boundary.

    Time inside an `idle` span (see `idle_spans`: what the charger said) is parking (PARKING_TIME), the rest is
    charging time (TIME): without evidence of idling there is no parking. Energy between samples is
    interpolated linearly (to 0.001 Wh, so period energies add up exactly to the register difference). Power
    is the sample's power (W) where given (0 while idle), else the stretch's average. Adjacent stretches that
    the tariff prices identically are merged into one period. `reserved_from` adds a reservation period
    (RESERVATION_TIME) from then until `start`.
    """
    start, stop = _utc(start), _utc(stop)
    zone = zoneinfo.ZoneInfo(time_zone)
    periods: list[ChargingPeriod] = []
    with localcontext() as context:
        context.prec = 40
        if reserved_from is not None and _utc(reserved_from) < start:
            periods += _reservation_periods(tariff, _utc(reserved_from), start, zone, reservation_expired)
        if stop > start or not periods:
            periods += _session_periods(tariff, samples, start, max(stop, start), zone, idle)
    return periods


def _reservation_periods(
    tariff: Tariff, start: dt.datetime, stop: dt.datetime, zone: zoneinfo.ZoneInfo, expired: bool
) -> list[ChargingPeriod]:
    cuts = sorted({start, stop, *_local_boundaries(tariff, start, stop, zone)})
    result: list[tuple[dt.datetime, Decimal, tuple[Any, ...]]] = []
    for a, b in itertools.pairwise(cuts):
        ctx = _Context(a.astimezone(zone), ZERO, ZERO, None, None, None, None, True, expired)
        signature = tuple(_index(_find(tariff, d, ctx)) for d in (TariffDimensionType.TIME, TariffDimensionType.FLAT))
        if result and result[-1][2] == signature:
            prev = result[-1]
            result[-1] = (prev[0], prev[1] + seconds_between(a, b), signature)
        else:
            result.append((a, seconds_between(a, b), signature))
    return [
        ChargingPeriod(t, (CdrDimension(CdrDimensionType.RESERVATION_TIME, _seconds_to_hours(s)),))
        for t, s, _ in result
    ]


def _index(found: tuple[int, PriceComponent] | None) -> int | None:
    return None if found is None else found[0]


@dataclass
class _Stretch:
    start: dt.datetime
    seconds: Decimal
    energy_wh: Decimal
    charging: bool
    min_power_w: Decimal | None
    max_power_w: Decimal | None
    signature: tuple[Any, ...]


def _session_periods(
    tariff: Tariff,
    samples: Sequence[MeterSample],
    start: dt.datetime,
    stop: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    idle: Sequence[IdleSpan],
) -> list[ChargingPeriod]:
    curve = _Curve(samples, start, stop)
    base = curve.energy_at(start)
    cuts = {start, stop, *_local_boundaries(tariff, start, stop, zone)}
    cuts.update(t for t in curve.times if start < t < stop)
    spans = [(max(_utc(s.start), start), min(_utc(s.end), stop)) for s in idle]
    spans = [(a, b) for a, b in spans if a < b]
    cuts.update(t for span in spans for t in span)
    for element in tariff.elements:
        r = element.restrictions
        if r is None:
            continue
        for limit in (r.min_duration, r.max_duration):
            if limit is not None and start < start + dt.timedelta(seconds=limit) < stop:
                cuts.add(start + dt.timedelta(seconds=limit))
        for kwh in (r.min_kwh, r.max_kwh):
            if kwh is not None and kwh > 0:
                instant = curve.crossing(base, kwh * WH_PER_KWH)
                if instant is not None and start < instant < stop:
                    cuts.add(instant)
    ordered = sorted(cuts)

    stretches: list[_Stretch] = []
    energy_before = ZERO
    for a, b in itertools.pairwise(ordered):
        seconds = seconds_between(a, b)
        energy = curve.energy_at(b) - curve.energy_at(a)
        charging = not any(low <= a and b <= high for low, high in spans)
        measured = curve.power_at(a)
        if measured is not None:
            power = measured if charging else ZERO
        elif (average := curve.average_power_at(a)) is not None:
            power = average
        else:
            power = energy / _seconds_to_hours(seconds) if seconds > 0 else ZERO
        kw = power / WH_PER_KWH
        ctx = _Context(
            local=a.astimezone(zone),
            energy_before_kwh=energy_before / WH_PER_KWH,
            duration_before_s=seconds_between(start, a),
            min_current=None,
            max_current=None,
            min_power=kw,
            max_power=kw,
            reservation=False,
            reservation_expired=False,
        )
        dims = (TariffDimensionType.ENERGY, TariffDimensionType.TIME, TariffDimensionType.PARKING_TIME)
        signature = (charging, *(_index(_find(tariff, d, ctx)) for d in dims))
        energy_before += energy
        if stretches and stretches[-1].signature == signature:
            last = stretches[-1]
            last.seconds += seconds
            last.energy_wh += energy
            last.min_power_w = _min(last.min_power_w, power)
            last.max_power_w = _max(last.max_power_w, power)
        else:
            stretches.append(_Stretch(a, seconds, energy, charging, power, power, signature))
    if not stretches:  # a session of zero length still gets its one (empty) period, so FLAT applies
        stretches.append(_Stretch(start, ZERO, ZERO, False, None, None, ()))

    periods = []
    for s in stretches:
        dims_out = []
        if s.energy_wh:
            dims_out.append(CdrDimension(CdrDimensionType.ENERGY, s.energy_wh / WH_PER_KWH))
        kind = CdrDimensionType.TIME if s.charging else CdrDimensionType.PARKING_TIME
        dims_out.append(CdrDimension(kind, _seconds_to_hours(s.seconds)))
        if s.min_power_w is not None and s.max_power_w is not None:
            dims_out.append(CdrDimension(CdrDimensionType.MIN_POWER, s.min_power_w / WH_PER_KWH))
            dims_out.append(CdrDimension(CdrDimensionType.MAX_POWER, s.max_power_w / WH_PER_KWH))
        periods.append(ChargingPeriod(s.start, tuple(dims_out)))
    return periods


def _min(a: Decimal | None, b: Decimal) -> Decimal:
    return b if a is None else min(a, b)


def _max(a: Decimal | None, b: Decimal) -> Decimal:
    return b if a is None else max(a, b)


# --------------------------------------------------------------------------- quotes


@dataclass(frozen=True)
class QuoteRequest:
    """A hypothetical session: `energy_kwh` delivered from `start`, at `max_power_kw` if given (then charging
    ends when the energy is in and the rest until `stop` is parking), else spread evenly until
    `stop - parking`."""

    start: dt.datetime
    stop: dt.datetime
    energy_kwh: Decimal
    max_power_kw: Decimal | None = None
    parking_seconds: int = 0


class QuoteError(ValueError):
    pass


def quote_samples(request: QuoteRequest) -> list[MeterSample]:
    start, stop = _utc(request.start), _utc(request.stop)
    if stop < start:
        raise QuoteError("stop must not be before start")
    charging_end = stop - dt.timedelta(seconds=request.parking_seconds)
    if charging_end < start:
        raise QuoteError("parking time is longer than the session")
    energy_wh = request.energy_kwh * WH_PER_KWH
    power_w: Decimal | None = None
    if request.max_power_kw is not None and energy_wh > 0:
        power_w = request.max_power_kw * WH_PER_KWH
        if power_w <= 0:
            raise QuoteError("max power must be positive")
        needed = energy_wh / power_w * SECONDS_PER_HOUR
        available = seconds_between(start, charging_end)
        if needed > available:
            raise QuoteError("this much energy cannot be charged at this power in this time")
        charging_end = start + dt.timedelta(microseconds=int((needed / MICRO).to_integral_value(ROUND_CEILING)))
    if energy_wh > 0 and charging_end <= start:
        raise QuoteError("energy needs charging time")
    samples = [MeterSample(start, ZERO, power_w)]
    if charging_end > start:
        samples.append(MeterSample(charging_end, energy_wh, ZERO))
    if stop > charging_end:
        samples.append(MeterSample(stop, energy_wh, ZERO))
    return samples


def quote_idle(request: QuoteRequest, samples: Sequence[MeterSample]) -> list[IdleSpan]:
    """The hypothetical session's idle time: from the end of charging (the register's last rise, or
    `stop - parking` without energy) to `stop`."""
    stop = _utc(request.stop)
    stamps = sorted(_utc(s.timestamp) for s in samples)
    # quote_samples: start, then the end of charging (when after start), then stop (when after that)
    charging_end = stamps[1] if len(stamps) > 2 else stop - dt.timedelta(seconds=request.parking_seconds)
    return [IdleSpan(charging_end, stop, "quote")] if charging_end < stop else []


def quote(
    tariff: Tariff,
    request: QuoteRequest,
    *,
    time_zone: str,
    vat_rate: Decimal | None = None,
    contract: ContractTerms | None = None,
    parking_grace_seconds: int = 0,
) -> tuple[list[ChargingPeriod], CostBreakdown]:
    samples = quote_samples(request)
    periods = charging_periods_from_samples(
        tariff=tariff,
        samples=samples,
        start=request.start,
        stop=request.stop,
        time_zone=time_zone,
        idle=quote_idle(request, samples),
    )
    breakdown = price_session(
        tariff,
        periods,
        end=_utc(request.stop),
        time_zone=time_zone,
        vat_rate=vat_rate,
        contract=contract,
        parking_grace_seconds=parking_grace_seconds,
    )
    return periods, breakdown
