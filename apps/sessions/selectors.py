"""Reads of charging sessions, CDRs and reservations (querysets with their joins applied)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import F, FloatField, OuterRef, Prefetch, QuerySet
from django.db.models.expressions import RawSQL

from apps.customers.models import Driver, TokenType
from apps.sessions.models import Cdr, ChargingSession, Reservation, SessionStatus
from apps.stations.models import ChargePoint, Evse, Location
from apps.tariffs import pricing
from apps.tariffs import selectors as tariff_selectors


def session_list() -> QuerySet[ChargingSession]:
    return ChargingSession.objects.select_related("charge_point", "location", "evse")


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
    locations: Sequence[Location], *, driver: Driver | None, at: dt.datetime
) -> dict[int, dict[str, Any] | None]:
    """EVSE id -> the price summary of what would price `driver`'s session starting `at` there: the same
    selection as at completion (`tariffs.selectors.pricing_selections` with `driver_pricing_party`). None: no
    session there can be priced for this caller (no tariff applies, or the contract price list is in another
    currency than the tariff). Four queries, whatever the number of locations."""
    evses = [(loc, cp, evse) for loc in locations for cp in loc.charge_points.all() for evse in cp.evses.all()]
    if not evses:
        return {}
    sites = {evse.pk: tariff_selectors.PricingSite(loc.tenant_id, evse.pk, cp.pk, loc.pk) for loc, cp, evse in evses}
    selections = tariff_selectors.pricing_selections(
        sites=list(sites.values()), at=at, party=driver_pricing_party(driver)
    )
    engines: dict[int, pricing.Tariff] = {}
    prices: dict[int, dict[str, Any] | None] = {}
    for loc, _, evse in evses:
        selection = selections[sites[evse.pk]]
        if not selection.priceable or selection.tariff is None:
            prices[evse.pk] = None
            continue
        if selection.tariff.pk not in engines:
            engines[selection.tariff.pk] = selection.engine_tariff()
        local = at.astimezone(zoneinfo.ZoneInfo(loc.timezone or loc.tenant.timezone))
        prices[evse.pk] = price_summary(
            engines[selection.tariff.pk],
            local=local,
            vat_default=loc.tenant.default_vat_rate,
            power_w=_evse_power_w(evse),
            parking_grace_minutes=selection.parking_grace_minutes,
        )
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
