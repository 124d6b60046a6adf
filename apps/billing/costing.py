"""What billing needs to know about a session's price, and the ONE place it gets it.

`SessionPrice` is billing's own, small view of a priced session: per dimension (ENERGY, TIME, PARKING_TIME,
FLAT, ...) the amount excl. VAT, the VAT rate and the amount incl. VAT, plus the totals. The invoice line
builder (`apps.billing.lines.invoice_line_from_session`) takes a session and a `SessionPrice`.

`session_final_cost(session)` is the adapter between billing and the pricing engine of the `tariffs`
app (`apps/tariffs/pricing.py`, `apps.tariffs.selectors.tariff_for` / `session_cost`). The session has no
stored final cost (no CDR cost field) yet, so the adapter prices the session from its meter values with
the tariff that applied at its start. When sessions store their final cost (a CDR), point this one
function at it; nothing else in billing changes. `price_from_breakdown` converts the engine's
`CostBreakdown` (duck-typed, so billing does not depend on its internals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from apps.core.errors import ApplicationError

if TYPE_CHECKING:
    from apps.sessions.models import ChargingSession

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class PricedDimension:
    dimension: str  # ENERGY, TIME, PARKING_TIME, FLAT, RESERVATION, CONTRACT_FEE, PRICE_LIMIT
    description: str
    excl_vat: Decimal
    vat_rate: Decimal  # percent
    incl_vat: Decimal

    @property
    def vat(self) -> Decimal:
        return self.incl_vat - self.excl_vat


@dataclass(frozen=True)
class SessionPrice:
    currency: str
    dimensions: tuple[PricedDimension, ...]

    @property
    def total_excl_vat(self) -> Decimal:
        return sum((d.excl_vat for d in self.dimensions), ZERO)

    @property
    def total_incl_vat(self) -> Decimal:
        return sum((d.incl_vat for d in self.dimensions), ZERO)

    @property
    def total_vat(self) -> Decimal:
        return self.total_incl_vat - self.total_excl_vat

    @property
    def vat_rate(self) -> Decimal:
        """The session's VAT rate (the rate of the largest part when components differ)."""
        if not self.dimensions:
            return ZERO
        return max(self.dimensions, key=lambda d: (abs(d.excl_vat), d.vat_rate)).vat_rate


def price_from_breakdown(breakdown: Any) -> SessionPrice:
    """The pricing engine's `CostBreakdown` as billing's `SessionPrice`: one entry per (cost group, VAT rate)."""
    grouped: dict[tuple[str, Decimal], list[Any]] = {}
    for line in breakdown.lines:
        group = str(getattr(line.group, "value", line.group))
        grouped.setdefault((group, Decimal(line.vat)), []).append(line)
    dimensions = tuple(
        PricedDimension(
            dimension=group,
            description="; ".join(str(line.description) for line in lines),
            excl_vat=sum((Decimal(line.excl_vat) for line in lines), ZERO),
            vat_rate=rate.quantize(Decimal("0.01")),
            incl_vat=sum((Decimal(line.incl_vat) for line in lines), ZERO),
        )
        for (group, rate), lines in grouped.items()
    )
    return SessionPrice(currency=str(breakdown.currency), dimensions=dimensions)


def _energy_samples(session: ChargingSession) -> list[Any]:
    from apps.tariffs.pricing import MeterSample

    samples = [MeterSample(session.started_at, session.meter_start_wh)]
    for value in session.meter_values.filter(measurand="Energy.Active.Import.Register").order_by("timestamp"):
        wh = value.value * 1000 if value.unit.lower() == "kwh" else value.value
        samples.append(MeterSample(value.timestamp, wh))
    if session.stopped_at is not None and session.meter_stop_wh is not None:
        samples.append(MeterSample(session.stopped_at, session.meter_stop_wh))
    return samples


def session_final_cost(
    session: ChargingSession, *, ad_hoc: bool = False, business_customer_id: int | None = None
) -> SessionPrice:
    """ADAPTER: a completed session's final cost. The one place billing asks the pricing engine.

    Today it prices the session from its meter values with the tariff that applied at its start
    (`apps.tariffs.selectors.tariff_for` + `session_cost`), with the business customer's contract price list
    valid at the start when there is one. Replace the body with a read of the stored CDR cost once sessions
    keep one.
    """
    from apps.tariffs import selectors as tariff_selectors

    if session.stopped_at is None:
        raise ApplicationError(f"Session {session.pk} is still running.", code="session_running")
    charge_point = session.charge_point
    location = charge_point.location
    tariff = tariff_selectors.tariff_for(
        tenant_id=session.tenant_id,
        at=session.started_at,
        ad_hoc=ad_hoc,
        evse_id=session.evse_id,
        charge_point_id=charge_point.pk,
        location_id=location.pk if location is not None else None,
    )
    if tariff is None:
        raise ApplicationError(f"No tariff applies to session {session.pk}.", code="session_not_priced")
    price_list = (
        tariff_selectors.price_list_for(business_customer_id=business_customer_id, at=session.started_at)
        if business_customer_id is not None
        else None
    )
    try:
        _periods, breakdown = tariff_selectors.session_cost(
            tariff=tariff,
            samples=_energy_samples(session),
            start=session.started_at,
            stop=session.stopped_at,
            time_zone=location.timezone if location is not None else session.tenant.timezone,
            vat_rate=session.tenant.default_vat_rate,
            price_list=price_list,
        )
    except ValueError as exc:  # the engine's PricingError / TariffFormatError
        raise ApplicationError(f"Session {session.pk} cannot be priced: {exc}", code="session_not_priced") from exc
    return price_from_breakdown(breakdown)


def contract_monthly_fee(
    *, business_customer_id: int, tenant_vat_rate: Decimal, at: dt.datetime
) -> tuple[str, PricedDimension] | None:
    """ADAPTER: the monthly fee of the business customer's contract price list valid at `at` (the period's
    start), as an invoice line's price. The pricing engine leaves monthly fees to the invoice run."""
    from apps.tariffs import selectors as tariff_selectors
    from apps.tariffs.pricing import round_money

    price_list = tariff_selectors.price_list_for(business_customer_id=business_customer_id, at=at)
    if price_list is None or not price_list.monthly_fee:
        return None
    rate = price_list.vat_rate if price_list.vat_rate is not None else tenant_vat_rate
    fee = Decimal(price_list.monthly_fee)
    excl = round_money(fee, price_list.currency)
    incl = round_money(fee * (1 + Decimal(rate) / 100), price_list.currency)
    return (
        f"Monthly fee ({price_list.name})",
        PricedDimension(
            dimension="MONTHLY_FEE",
            description=f"monthly fee {excl}",
            excl_vat=excl,
            vat_rate=Decimal(rate).quantize(Decimal("0.01")),
            incl_vat=incl,
        ),
    )


def vat_summary(prices: Iterable[tuple[Decimal, Decimal, Decimal]]) -> list[dict[str, str]]:
    """(rate, net, vat) triples summed per rate, as stored on the invoice and printed."""
    totals: dict[Decimal, tuple[Decimal, Decimal]] = {}
    for rate, net, vat in prices:
        old_net, old_vat = totals.get(rate, (ZERO, ZERO))
        totals[rate] = (old_net + net, old_vat + vat)
    return [
        {"rate": f"{rate:.2f}", "net": f"{net:.2f}", "vat": f"{vat:.2f}", "gross": f"{net + vat:.2f}"}
        for rate, (net, vat) in sorted(totals.items())
    ]


def utc_day_bounds(start: dt.date, end: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00, end+1 00:00) in `zone`, as aware datetimes (sessions are assigned by their stop time)."""
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=zone),
    )
