"""What billing needs to know about a session's price, and the ONE place it gets it: the price stored at completion.

`SessionPrice` is billing's own, small view of a priced session: per dimension (ENERGY, TIME, PARKING_TIME,
FLAT, CONTRACT_FEE, PRICE_LIMIT) and VAT rate the amount excl. VAT and incl. VAT, plus the totals. The invoice
line builder (`apps.billing.lines.invoice_line_from_session`) takes a session and a `SessionPrice`.

`session_final_cost(session)` reads the price the sessions app stored when the session completed
(`apps.sessions.completion`: the tariff the driver was shown, the contract price list of the business customer
who pays, idle time from evidence): `cost_breakdown["lines"]`, one line per tariff element and dimension, rounded
once. Billing never prices a session itself, so a receipt or an invoice line is the session's and its CDR's
cost to the cent. A session that could not be priced (`pricing_error`) is refused here (`session_not_priced`),
never billed as 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
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


def price_from_lines(currency: str, lines: Sequence[Mapping[str, Any]]) -> SessionPrice:
    """Breakdown lines (the engine's, or as stored on the session) as billing's `SessionPrice`: one entry per
    (cost group, VAT rate), in the order the lines come."""
    grouped: dict[tuple[str, Decimal], list[Mapping[str, Any]]] = {}
    for line in lines:
        group = str(getattr(line["group"], "value", line["group"]))
        grouped.setdefault((group, Decimal(str(line["vat"]))), []).append(line)
    dimensions = tuple(
        PricedDimension(
            dimension=group,
            description="; ".join(str(line["description"]) for line in parts),
            excl_vat=sum((Decimal(str(line["excl_vat"])) for line in parts), ZERO),
            vat_rate=rate.quantize(Decimal("0.01")),
            incl_vat=sum((Decimal(str(line["incl_vat"])) for line in parts), ZERO),
        )
        for (group, rate), parts in grouped.items()
    )
    return SessionPrice(currency=currency, dimensions=dimensions)


def price_from_breakdown(breakdown: Any) -> SessionPrice:
    """The pricing engine's `CostBreakdown` (duck-typed) as billing's `SessionPrice` (for quotes and tests)."""
    lines = [
        {
            "group": line.group,
            "vat": line.vat,
            "description": line.description,
            "excl_vat": line.excl_vat,
            "incl_vat": line.incl_vat,
        }
        for line in breakdown.lines
    ]
    return price_from_lines(str(breakdown.currency), lines)


def session_final_cost(session: ChargingSession) -> SessionPrice:
    """The completed session's price, exactly as stored at completion (never priced again).

    Raises ApplicationError `session_running` for a running session and `session_not_priced` for a session that
    could not be priced (its `pricing_error` says why) or whose stored breakdown does not add up to its cost.
    """
    if session.stopped_at is None:
        raise ApplicationError(f"Session {session.pk} is still running.", code="session_running")
    breakdown = session.cost_breakdown or {}
    lines = breakdown.get("lines") if isinstance(breakdown, Mapping) else None
    if session.pricing_error or session.cost_excl_vat is None or session.cost_incl_vat is None or lines is None:
        reason = session.pricing_error or "no price was stored at completion"
        raise ApplicationError(f"Session {session.pk} is not priced: {reason}.", code="session_not_priced")
    price = price_from_lines(session.currency, lines)
    if (price.total_excl_vat, price.total_incl_vat) != (session.cost_excl_vat, session.cost_incl_vat):
        raise ApplicationError(
            f"Session {session.pk}: its stored breakdown ({price.total_excl_vat}/{price.total_incl_vat}) does not add "
            f"up to its cost ({session.cost_excl_vat}/{session.cost_incl_vat}).",
            code="session_not_priced",
        )
    return price


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
