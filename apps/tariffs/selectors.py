"""Reads: querysets for the API and admin, which tariff applies where, and pricing a session with a stored tariff.

Other apps (sessions for the live cost and the CDR, billing for invoices, roaming for OCPI) come here:
`tariff_for` picks the tariff, `session_cost` prices meter values with it, `tariff_document` is the OCPI
Tariff object to publish.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from apps.tariffs import pricing
from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment


def tariff_list() -> QuerySet[Tariff]:
    return Tariff.objects.select_related("tenant").order_by("pk")


def tariff_assignment_list() -> QuerySet[TariffAssignment]:
    return TariffAssignment.objects.select_related("tenant", "tariff", "location", "charge_point", "evse").order_by(
        "pk"
    )


def contract_price_list_list() -> QuerySet[ContractPriceList]:
    return ContractPriceList.objects.select_related("tenant", "business_customer").order_by("pk")


# --------------------------------------------------------------------------- the OCPI view of a tariff


def _price(excl: Decimal | None, incl: Decimal | None) -> dict[str, Decimal] | None:
    if excl is None:
        return None
    return {"excl_vat": excl} if incl is None else {"excl_vat": excl, "incl_vat": incl}


def tariff_document(tariff: Tariff) -> dict[str, Any]:
    """The OCPI 2.2.1 Tariff object (numbers as Decimal; render with a JSON encoder that writes them as numbers)."""
    doc: dict[str, Any] = {
        "country_code": tariff.tenant.ocpi_country_code,
        "party_id": tariff.tenant.ocpi_party_id,
        "id": tariff.ocpi_id,
        "currency": tariff.currency,
    }
    if tariff.type:
        doc["type"] = tariff.type
    if tariff.tariff_alt_text:
        doc["tariff_alt_text"] = tariff.tariff_alt_text
    if tariff.tariff_alt_url:
        doc["tariff_alt_url"] = tariff.tariff_alt_url
    for name in ("min_price", "max_price"):
        price = _price(getattr(tariff, f"{name}_excl_vat"), getattr(tariff, f"{name}_incl_vat"))
        if price is not None:
            doc[name] = price
    doc["elements"] = _numbers(tariff.elements)
    if tariff.start_date_time:
        doc["start_date_time"] = tariff.start_date_time
    if tariff.end_date_time:
        doc["end_date_time"] = tariff.end_date_time
    if tariff.energy_mix:
        doc["energy_mix"] = _numbers(tariff.energy_mix)
    doc["last_updated"] = tariff.updated_at
    return doc


_NUMERIC_KEYS = {
    "price",
    "vat",
    "min_kwh",
    "max_kwh",
    "min_current",
    "max_current",
    "min_power",
    "max_power",
    "percentage",
    "amount",
}


def _numbers(value: Any, key: str = "") -> Any:
    """Stored decimal strings back to Decimal numbers."""
    if isinstance(value, dict):
        return {k: _numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v, key) for v in value]
    if key in _NUMERIC_KEYS and isinstance(value, str):
        return Decimal(value)
    return value


def pricing_tariff(tariff: Tariff) -> pricing.Tariff:
    """The pricing engine's view of a stored tariff."""
    return pricing.Tariff(
        currency=tariff.currency,
        elements=pricing.elements_from_ocpi(tariff.elements),
        min_price=_engine_price(tariff.min_price_excl_vat, tariff.min_price_incl_vat),
        max_price=_engine_price(tariff.max_price_excl_vat, tariff.max_price_incl_vat),
        id=tariff.ocpi_id,
    )


def _engine_price(excl: Decimal | None, incl: Decimal | None) -> pricing.Price | None:
    return None if excl is None else pricing.Price(excl, incl)


def contract_terms(price_list: ContractPriceList) -> pricing.ContractTerms:
    return pricing.ContractTerms(
        discount_percent=price_list.discount_percent,
        energy_price_per_kwh=price_list.energy_price_per_kwh,
        session_fee=price_list.session_fee,
        session_fee_vat=price_list.vat_rate,
        currency=price_list.currency,
    )


# --------------------------------------------------------------------------- which tariff applies


@dataclass(frozen=True)
class Candidate:
    """One assignment as the precedence rule sees it."""

    pk: int
    tariff_id: int
    ad_hoc: bool
    level: int  # 0 EVSE, 1 charge point, 2 location, 3 tenant default
    valid_from: dt.datetime | None


LEVEL_NAMES = ("evse", "charge point", "location", "tenant default")


def choose_tariff(candidates: Iterable[Candidate], *, ad_hoc: bool) -> int | None:
    """The tariff id that applies. Precedence: EVSE > charge point > location > tenant default.

    Drivers without a contract (`ad_hoc=True`) get the most specific ad hoc assignment, and only when
    there is none anywhere, the regular chain. Contract drivers never get an ad hoc tariff. Several
    assignments on one level: the one that became valid last wins (then the newest row).
    """
    chosen = list(candidates)
    chains = (
        [[c for c in chosen if c.ad_hoc], [c for c in chosen if not c.ad_hoc]]
        if ad_hoc
        else [[c for c in chosen if not c.ad_hoc]]
    )
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    for chain in chains:
        if chain:
            best = min(chain, key=lambda c: (c.level, -(c.valid_from or floor).timestamp(), -c.pk))
            return best.tariff_id
    return None


def _valid_at(at: dt.datetime) -> Q:
    return (
        (Q(valid_from__isnull=True) | Q(valid_from__lte=at))
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        & (Q(tariff__start_date_time__isnull=True) | Q(tariff__start_date_time__lte=at))
        & (Q(tariff__end_date_time__isnull=True) | Q(tariff__end_date_time__gt=at))
    )


def tariff_for(
    *,
    tenant_id: int,
    at: dt.datetime,
    ad_hoc: bool = False,
    evse_id: int | None = None,
    charge_point_id: int | None = None,
    location_id: int | None = None,
) -> Tariff | None:
    """The tariff that prices a session starting `at` on this EVSE / charge point / location (two queries).

    Pass every id you know (the EVSE's charge point and that charge point's location); the most specific
    valid assignment wins, then the tenant default. Assignment and tariff validity are both checked at `at`.
    """
    targets = Q(evse__isnull=True, charge_point__isnull=True, location__isnull=True)
    if evse_id is not None:
        targets |= Q(evse_id=evse_id)
    if charge_point_id is not None:
        targets |= Q(charge_point_id=charge_point_id)
    if location_id is not None:
        targets |= Q(location_id=location_id)
    rows = TariffAssignment.objects.filter(_valid_at(at), targets, tenant_id=tenant_id).values_list(
        "pk", "tariff_id", "ad_hoc", "valid_from", "evse_id", "charge_point_id", "location_id"
    )
    candidates = [
        Candidate(pk, tariff_id, is_ad_hoc, _level(evse, cp, loc), valid_from)
        for pk, tariff_id, is_ad_hoc, valid_from, evse, cp, loc in rows
    ]
    tariff_id = choose_tariff(candidates, ad_hoc=ad_hoc)
    return None if tariff_id is None else Tariff.objects.select_related("tenant").get(pk=tariff_id)


def _level(evse_id: int | None, charge_point_id: int | None, location_id: int | None) -> int:
    if evse_id is not None:
        return 0
    if charge_point_id is not None:
        return 1
    return 2 if location_id is not None else 3


def price_list_for(*, business_customer_id: int, at: dt.datetime) -> ContractPriceList | None:
    """The business customer's price list valid at `at` (the latest one that started)."""
    return (
        ContractPriceList.objects.filter(business_customer_id=business_customer_id, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by("-valid_from")
        .first()
    )


# --------------------------------------------------------------------------- pricing with a stored tariff


def session_cost(
    *,
    tariff: Tariff,
    samples: Sequence[pricing.MeterSample],
    start: dt.datetime,
    stop: dt.datetime,
    time_zone: str,
    vat_rate: Decimal | None,
    price_list: ContractPriceList | None = None,
    reserved_from: dt.datetime | None = None,
    reservation_expired: bool = False,
) -> tuple[list[pricing.ChargingPeriod], pricing.CostBreakdown]:
    """A session's OCPI charging periods and cost from its meter values. Open session: `stop=now`."""
    engine_tariff = pricing_tariff(tariff)
    periods = pricing.charging_periods_from_samples(
        tariff=engine_tariff,
        samples=samples,
        start=start,
        stop=stop,
        time_zone=time_zone,
        reserved_from=reserved_from,
        reservation_expired=reservation_expired,
    )
    breakdown = pricing.price_session(
        engine_tariff,
        periods,
        end=stop,
        time_zone=time_zone,
        vat_rate=vat_rate,
        reservation_expired=reservation_expired,
        contract=contract_terms(price_list) if price_list is not None else None,
    )
    return periods, breakdown
