"""The retail price of a roaming session: what our driver pays for a session on another CPO's EVSE (eMSP role).

The CPO's cost (its tariff applied to the session, or the CDR's total) is what the CPO bills our tenant. The
tenant's rule for that partner (`models.RoamingRetailRule`; none: pass-through) turns it into the driver's price:

- pass-through: the CPO's price excluding VAT;
- mark-up: the CPO's price excluding VAT plus `markup_percent` of it;
- fixed per kWh: `price_per_kwh_excl_vat` times the session's kWh, whatever the CPO charges.

Our tenant sells to its driver, so the driver's VAT is the rule's `vat_rate` on the retail price excluding VAT (not
the CPO's VAT, which is between the CPO and our tenant). Amounts are rounded once, half-up to the currency's minor
units (`pricing.round_money`). Pure: no database access, the search, the live session view and billing share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from apps.tariffs.pricing import round_money

PASS_THROUGH = "pass_through"
MARKUP = "markup"
FIXED_KWH = "fixed_kwh"
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RetailTerms:
    mode: str = PASS_THROUGH
    markup_percent: Decimal = Decimal(0)
    price_per_kwh_excl_vat: Decimal | None = None
    vat_rate: Decimal = Decimal(0)


@dataclass(frozen=True)
class RetailPrice:
    excl_vat: Decimal
    vat: Decimal
    incl_vat: Decimal
    currency: str


def retail_excl_vat(terms: RetailTerms, *, cpo_excl_vat: Decimal, kwh: Decimal) -> Decimal:
    """The driver's price excluding VAT, unrounded (for unit prices shown with more decimals)."""
    if terms.mode == FIXED_KWH:
        if terms.price_per_kwh_excl_vat is None:
            raise ValueError("a fixed price per kWh needs the price")
        return terms.price_per_kwh_excl_vat * kwh
    if terms.mode == MARKUP:
        return cpo_excl_vat * (HUNDRED + terms.markup_percent) / HUNDRED
    if terms.mode == PASS_THROUGH:
        return cpo_excl_vat
    raise ValueError(f"unknown retail mode {terms.mode!r}")


def retail_price(terms: RetailTerms, *, cpo_excl_vat: Decimal, kwh: Decimal, currency: str) -> RetailPrice:
    """The driver's price of a session whose CPO cost excluding VAT is `cpo_excl_vat` for `kwh`."""
    excl = round_money(retail_excl_vat(terms, cpo_excl_vat=cpo_excl_vat, kwh=kwh), currency)
    vat = round_money(excl * terms.vat_rate / HUNDRED, currency)
    return RetailPrice(excl_vat=excl, vat=vat, incl_vat=excl + vat, currency=currency)
