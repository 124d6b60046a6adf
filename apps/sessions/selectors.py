"""Reads of charging sessions, CDRs and reservations (querysets with their joins applied)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db.models import F, FloatField, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.customers.models import Driver
from apps.sessions.models import Cdr, ChargingSession, Reservation
from apps.stations.models import ChargePoint, Evse, Location
from apps.tariffs import pricing
from apps.tariffs import selectors as tariff_selectors
from apps.tariffs.models import Tariff, TariffAssignment


def session_list() -> QuerySet[ChargingSession]:
    return ChargingSession.objects.select_related("charge_point", "location", "evse")


def cdr_list() -> QuerySet[Cdr]:
    return Cdr.objects.all()


def reservation_list() -> QuerySet[Reservation]:
    return Reservation.objects.select_related("charge_point")


EARTH_RADIUS_KM = 6371.0088
# haversine in SQL (no extension needed); the params are lat, lat, lon
HAVERSINE_KM = (
    "2 * %s * asin(sqrt(power(sin(radians(latitude - %s) / 2), 2) + cos(radians(%s)) * cos(radians(latitude))"
    " * power(sin(radians(longitude - %s) / 2), 2)))"
)


def stations_near(
    queryset: QuerySet[Location], *, lat: Decimal | None, lon: Decimal | None, radius_km: float | None
) -> QuerySet[Location]:
    """Published locations in service with their EVSEs and connectors in service, nearest first when a point is given
    (decommissioned locations, charge points and EVSEs are not offered to drivers)."""
    queryset = queryset.filter(publish=True, decommissioned_at__isnull=True).prefetch_related(
        Prefetch("charge_points", queryset=ChargePoint.objects.filter(decommissioned_at__isnull=True)),
        Prefetch("charge_points__evses", queryset=Evse.objects.filter(decommissioned_at__isnull=True)),
        "charge_points__evses__connectors",
    )
    if lat is None or lon is None:
        return queryset.order_by("pk")
    distance = RawSQL(  # noqa: S611 (constant SQL, values bound as parameters)
        HAVERSINE_KM, (EARTH_RADIUS_KM, float(lat), float(lat), float(lon)), output_field=FloatField()
    )
    queryset = queryset.filter(latitude__isnull=False, longitude__isnull=False).annotate(distance_km=distance)
    if radius_km is not None:
        queryset = queryset.filter(distance_km__lte=radius_km)
    return queryset.order_by(F("distance_km").asc(), "pk")


def location_summary(location: Location) -> dict[str, Any]:
    evses = [evse for cp in location.charge_points.all() for evse in cp.evses.all()]
    connectors = [c for evse in evses for c in evse.connectors.all()]
    return {
        "evses": len(evses),
        "available": sum(1 for e in evses if e.status == "Available"),
        "connector_types": sorted({c.standard for c in connectors}),
        "max_power_w": max((c.max_electric_power or c.max_voltage * c.max_amperage for c in connectors), default=None),
    }


# --------------------------------------------------------------------------- prices in the station search


MONEY_PLACES = Decimal("0.0001")


def _tariff_valid_at(at: dt.datetime) -> Q:
    """The assignment and its tariff are valid at `at` (the same rule as tariffs.selectors.tariff_for)."""
    return (
        (Q(valid_from__isnull=True) | Q(valid_from__lte=at))
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        & (Q(tariff__start_date_time__isnull=True) | Q(tariff__start_date_time__lte=at))
        & (Q(tariff__end_date_time__isnull=True) | Q(tariff__end_date_time__gt=at))
    )


def _level(evse_id: int | None, charge_point_id: int | None, location_id: int | None) -> int:
    if evse_id is not None:
        return 0
    if charge_point_id is not None:
        return 1
    return 2 if location_id is not None else 3


def _evse_power_w(evse: Evse) -> int | None:
    return max((c.max_electric_power or c.max_voltage * c.max_amperage for c in evse.connectors.all()), default=None)


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
    tariff: pricing.Tariff, *, local: dt.datetime, vat_default: Decimal | None, power_w: int | None
) -> dict[str, Any]:
    """What a session starting now costs, per dimension: per kWh, per minute (charging, parking), per session;
    excl. and incl. VAT (the component's VAT, else the tenant's rate), as decimal strings."""
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
        "per_session": price("FLAT"),
    }
    parts = [
        f"{summary[key]['incl_vat']} {tariff.currency}{unit}"  # type: ignore[index]
        for key, unit in (
            ("per_kwh", "/kWh"),
            ("per_minute", "/min"),
            ("parking_per_minute", "/min parking"),
            ("per_session", " per session"),
        )
        if summary[key] is not None
    ]
    summary["text"] = (" + ".join(parts) + " incl. VAT") if parts else "free"
    return summary


def station_prices(
    locations: Sequence[Location], *, driver: Driver | None, at: dt.datetime
) -> dict[int, dict[str, Any] | None]:
    """EVSE id -> the price summary of the tariff that would price `driver`'s session starting `at` there
    (None: no tariff applies). No driver: an ad hoc (contract-less) caller. The driver's business customer's
    price list, when one is valid, is applied. Three queries, whatever the number of locations."""
    evses = [(loc, cp, evse) for loc in locations for cp in loc.charge_points.all() for evse in cp.evses.all()]
    if not evses:
        return {}
    targets = (
        Q(evse__isnull=True, charge_point__isnull=True, location__isnull=True)
        | Q(evse_id__in=[e.pk for _, _, e in evses])
        | Q(charge_point_id__in={cp.pk for _, cp, _ in evses})
        | Q(location_id__in={loc.pk for loc, _, _ in evses})
    )
    rows = list(
        TariffAssignment.objects.filter(
            _tariff_valid_at(at), targets, tenant_id__in={loc.tenant_id for loc in locations}
        ).values_list(
            "pk", "tariff_id", "ad_hoc", "valid_from", "evse_id", "charge_point_id", "location_id", "tenant_id"
        )
    )
    ad_hoc = driver is None
    chosen: dict[int, int | None] = {}
    for loc, cp, evse in evses:
        candidates = [
            tariff_selectors.Candidate(pk, tariff_id, is_ad_hoc, _level(e, c, lo), valid_from)
            for pk, tariff_id, is_ad_hoc, valid_from, e, c, lo, tenant_id in rows
            if tenant_id == loc.tenant_id
            and (e == evse.pk or c == cp.pk or lo == loc.pk or (e is None and c is None and lo is None))
        ]
        chosen[evse.pk] = tariff_selectors.choose_tariff(candidates, ad_hoc=ad_hoc)
    tariffs = Tariff.objects.in_bulk({t for t in chosen.values() if t is not None})
    price_list = (
        tariff_selectors.price_list_for(business_customer_id=driver.business_customer_id, at=at)
        if driver is not None and driver.business_customer_id is not None
        else None
    )
    engines: dict[int, pricing.Tariff] = {}
    prices: dict[int, dict[str, Any] | None] = {}
    for loc, _, evse in evses:
        tariff = tariffs.get(chosen[evse.pk] or 0)
        if tariff is None:
            prices[evse.pk] = None
            continue
        if tariff.pk not in engines:
            engine = tariff_selectors.pricing_tariff(tariff)
            if price_list is not None and price_list.currency == tariff.currency:
                engine = pricing.tariff_with_contract(engine, tariff_selectors.contract_terms(price_list))
            engines[tariff.pk] = engine
        local = at.astimezone(zoneinfo.ZoneInfo(loc.timezone or loc.tenant.timezone))
        prices[evse.pk] = price_summary(
            engines[tariff.pk], local=local, vat_default=loc.tenant.default_vat_rate, power_w=_evse_power_w(evse)
        )
    return prices
