"""Reads: querysets for the API and admin, which tariff applies where, and pricing a session with a stored tariff.

Other apps (sessions for the live cost and the CDR, billing for invoices, roaming for OCPI) come here:
`tariff_for` picks the tariff, `session_cost` prices meter values with it, `tariff_document` is the OCPI
Tariff object to publish.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from apps.tariffs import pricing, retail
from apps.tariffs.models import ContractPriceList, PartnerTariff, RoamingRetailRule, Tariff, TariffAssignment


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


# The assignments that may price a session at `at` on some of the sites: valid (assignment and tariff) and at one of
# the sites or a tenant default. Written in SQL with arrays: the same filter built with the ORM (Q objects, IN lists
# of the sites' ids) took 7.3 ms for a page of 25 stations, 41 EVSEs (4.4 ms of it compiling), this 0.9 ms
# (driver station search, benchmarks/partner_search_bench.py database, 2026-12-06).
_ASSIGNMENTS = """
SELECT a.id, a.tariff_id, a.ad_hoc, a.valid_from, a.evse_id, a.charge_point_id, a.location_id, a.tenant_id
FROM tariffs_tariffassignment a JOIN tariffs_tariff t ON t.id = a.tariff_id
WHERE a.tenant_id = ANY(%(tenants)s::bigint[])
    AND (a.valid_from IS NULL OR a.valid_from <= %(at)s) AND (a.valid_until IS NULL OR a.valid_until > %(at)s)
    AND (t.start_date_time IS NULL OR t.start_date_time <= %(at)s)
    AND (t.end_date_time IS NULL OR t.end_date_time > %(at)s)
    AND ((a.evse_id IS NULL AND a.charge_point_id IS NULL AND a.location_id IS NULL)
        OR a.evse_id = ANY(%(evses)s::bigint[]) OR a.charge_point_id = ANY(%(charge_points)s::bigint[])
        OR a.location_id = ANY(%(locations)s::bigint[]))"""


@dataclass(frozen=True)
class PricingParty:
    """Who a price is for: the ONE rule that picks ad hoc or regular tariffs and the contract price list, used for
    the price a driver is shown (driver API stations) and for the price applied when the session completes.

    * identified (`identified=True`): the session's id tag is a token we know (a driver's card or app token, a
      business customer's card, a roaming partner's token), or the driver app asks for a known driver: the
      regular (non ad hoc) tariffs, and the contract price list of the business customer who pays, if any;
    * not identified: an id tag without a token (card terminal, QR payment), or a driver app without a driver:
      the ad hoc tariffs first (AD_HOC assignments), the regular ones where there is none.
    """

    identified: bool
    business_customer_id: int | None = None

    @property
    def ad_hoc(self) -> bool:
        return not self.identified


AD_HOC = PricingParty(identified=False)


@dataclass(frozen=True)
class PricingSite:
    """Where a session is (or would be): pass every id known (the EVSE's charge point and its location)."""

    tenant_id: int
    evse_id: int | None = None
    charge_point_id: int | None = None
    location_id: int | None = None


@dataclass(frozen=True)
class PricingSelection:
    """The tariff and contract price list that price a session, or why none can (`problem`)."""

    tariff: Tariff | None
    price_list: ContractPriceList | None = None
    problem: str = ""

    @property
    def priceable(self) -> bool:
        return self.tariff is not None and not self.problem

    def contract(self) -> pricing.ContractTerms | None:
        return contract_terms(self.price_list) if self.price_list is not None else None

    def engine_tariff(self) -> pricing.Tariff:
        """The engine's tariff with the contract's prices applied (what the driver is shown)."""
        assert self.tariff is not None
        engine = pricing_tariff(self.tariff)
        terms = self.contract()
        return pricing.tariff_with_contract(engine, terms) if terms is not None else engine

    @property
    def parking_grace_minutes(self) -> int:
        return parking_grace_minutes(self.tariff) if self.tariff is not None else 0


def parking_grace_minutes(tariff: Tariff) -> int:
    """Idle minutes before parking is billed: the tariff's own, else its tenant's default."""
    if tariff.parking_grace_minutes is not None:
        return int(tariff.parking_grace_minutes)
    return int(tariff.tenant.parking_grace_minutes)


def pricing_selections(
    *, sites: Sequence[PricingSite], at: dt.datetime, party: PricingParty
) -> dict[PricingSite, PricingSelection]:
    """For each site, what prices `party`'s session starting `at` there (three queries, whatever the count).

    The tariff: the most specific valid assignment (EVSE > charge point > location > tenant default; ad hoc or
    regular by `party`, see `choose_tariff`), assignment and tariff validity both checked at `at`. The price
    list: the paying business customer's, valid at `at`. A price list in another currency than the tariff
    cannot apply: the selection says so (`problem`) rather than silently pricing without it.
    """
    if not sites:
        return {}
    params: dict[str, Any] = {"at": at, "tenants": sorted({s.tenant_id for s in sites})}
    for name in ("evse", "charge_point", "location"):
        params[f"{name}s"] = sorted({getattr(site, f"{name}_id") for site in sites} - {None})
    with connection.cursor() as cursor:
        cursor.execute(_ASSIGNMENTS, params)
        rows = cursor.fetchall()
    chosen: dict[PricingSite, int | None] = {}
    for site in sites:
        candidates = [
            Candidate(pk, tariff_id, is_ad_hoc, _level(evse, cp, loc), valid_from)
            for pk, tariff_id, is_ad_hoc, valid_from, evse, cp, loc, tenant_id in rows
            if tenant_id == site.tenant_id
            and (
                (evse is not None and evse == site.evse_id)
                or (cp is not None and cp == site.charge_point_id)
                or (loc is not None and loc == site.location_id)
                or (evse is None and cp is None and loc is None)
            )
        ]
        chosen[site] = choose_tariff(candidates, ad_hoc=party.ad_hoc)
    tariffs = Tariff.objects.select_related("tenant").in_bulk({t for t in chosen.values() if t is not None})
    price_list = (
        price_list_for(business_customer_id=party.business_customer_id, at=at)
        if party.business_customer_id is not None
        else None
    )
    result: dict[PricingSite, PricingSelection] = {}
    for site in sites:
        tariff = tariffs.get(chosen[site] or 0)
        if tariff is None:
            result[site] = PricingSelection(None, None, "no tariff applies")
        elif price_list is not None and price_list.currency.upper() != tariff.currency.upper():
            result[site] = PricingSelection(
                tariff,
                price_list,
                f"the contract price list {price_list.name!r} is in {price_list.currency}, "
                f"the tariff {tariff.ocpi_id} in {tariff.currency}",
            )
        else:
            result[site] = PricingSelection(tariff, price_list)
    return result


def pricing_selection(*, site: PricingSite, at: dt.datetime, party: PricingParty) -> PricingSelection:
    return pricing_selections(sites=[site], at=at, party=party)[site]


def tariff_for(
    *,
    tenant_id: int,
    at: dt.datetime,
    ad_hoc: bool = False,
    evse_id: int | None = None,
    charge_point_id: int | None = None,
    location_id: int | None = None,
) -> Tariff | None:
    """The tariff that prices a session starting `at` on this EVSE / charge point / location (`pricing_selection`
    without a price list)."""
    site = PricingSite(tenant_id, evse_id, charge_point_id, location_id)
    return pricing_selection(site=site, at=at, party=PricingParty(identified=not ad_hoc)).tariff


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
    idle: Sequence[pricing.IdleSpan] = (),
    reserved_from: dt.datetime | None = None,
    reservation_expired: bool = False,
) -> tuple[list[pricing.ChargingPeriod], pricing.CostBreakdown]:
    """A session's OCPI charging periods and cost from its meter values and its idle evidence
    (`pricing.idle_spans`), with the tariff's parking grace period. Open session: `stop=now`."""
    engine_tariff = pricing_tariff(tariff)
    periods = pricing.charging_periods_from_samples(
        tariff=engine_tariff,
        samples=samples,
        start=start,
        stop=stop,
        time_zone=time_zone,
        idle=idle,
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
        parking_grace_seconds=parking_grace_minutes(tariff) * 60,
    )
    return periods, breakdown


def roaming_retail_rule_list() -> QuerySet[RoamingRetailRule]:
    return RoamingRetailRule.objects.select_related("tenant", "partner").order_by("pk")


def retail_terms(*, partner_id: int) -> retail.RetailTerms:
    """The tenant's retail rule for sessions on a roaming partner's EVSEs; none configured: pass-through, no VAT."""
    return retail_rules(partner_ids=[partner_id]).get(partner_id, (retail.RetailTerms(), ""))[0]


# The driver station search prices a page's partner EVSEs with these two reads; built as ORM querysets (an OR of
# one Q per CPO party, compiled per page) they took 2.4 and 1.2 ms of an uncached page, in SQL ~0.3 ms each
# (benchmarks/partner_search_bench.py database, 2026-12-06).
_RETAIL_RULES = """
SELECT partner_id, mode, markup_percent, price_per_kwh_excl_vat, vat_rate, currency
FROM tariffs_roamingretailrule WHERE partner_id = ANY(%s::bigint[])"""

_PARTNER_TARIFFS = """
SELECT t.id, t.partner_id, t.country_code, t.party_id, t.ocpi_id, t.data::text
FROM tariffs_partnertariff t
JOIN unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS w(partner_id, country_code, party_id, ocpi_id)
    ON t.partner_id = w.partner_id AND t.country_code = w.country_code AND t.party_id = w.party_id
    AND t.ocpi_id = w.ocpi_id"""


def retail_rules(*, partner_ids: Iterable[int]) -> dict[int, tuple[retail.RetailTerms, str]]:
    """Partner id -> (its retail terms, the rule's currency or ""), for the partners that have a rule (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(_RETAIL_RULES, [sorted(set(partner_ids))])
        rows = cursor.fetchall()
    return {
        partner_id: (
            retail.RetailTerms(mode=mode, markup_percent=markup, price_per_kwh_excl_vat=per_kwh, vat_rate=vat_rate),
            currency,
        )
        for partner_id, mode, markup, per_kwh, vat_rate, currency in rows
    }


@dataclass(frozen=True)
class PartnerTariffData:
    """A stored partner tariff as the station search prices it: its id and the OCPI Tariff object."""

    pk: int
    data: dict[str, Any]


def partner_tariffs_matching(
    keys: Iterable[tuple[int, str, str, str]],
) -> dict[tuple[int, str, str, str], PartnerTariffData]:
    """(partner id, country code, party id, tariff id) -> the partner's stored tariff, for those of `keys` that
    exist (one query)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    columns = [list(column) for column in zip(*wanted, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_PARTNER_TARIFFS, columns)
        rows = cursor.fetchall()
    return {
        (partner, cc, party, ocpi_id): PartnerTariffData(pk, json.loads(data))
        for pk, partner, cc, party, ocpi_id, data in rows
    }


def partner_tariff(*, partner_id: int, country_code: str, party_id: str, ocpi_id: str) -> PartnerTariff | None:
    return PartnerTariff.objects.filter(
        partner_id=partner_id, country_code=country_code, party_id=party_id, ocpi_id=ocpi_id
    ).first()
