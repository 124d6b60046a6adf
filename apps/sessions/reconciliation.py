"""Reconciliation of received CDRs (eMSP): does the CPO's total match what its own tariff gives for the CDR's own
volumes? `partner_cdr_reconcile` prices the CDR's `charging_periods` with the partner tariff the CDR names
(`tariffs.PartnerTariff`, as received; `apps/tariffs/pricing.py`, the engine that prices our own sessions) and
stores the verdict on the CDR (`review`: ok, mismatch, no_tariff; `review_detail` says why, with both figures).
Compared to the cent (the currency's minor units), excl. VAT: the CPO bills our tenant excl. VAT."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.dateparse import parse_datetime

from apps.sessions.models import PartnerCdr
from apps.stations.models import PartnerLocation
from apps.tariffs import pricing
from apps.tariffs import selectors as tariff_selectors

Review = PartnerCdr.Review


class _Unreadable(ValueError):
    pass


def _periods(data: dict[str, Any]) -> list[pricing.ChargingPeriod]:
    raw = data.get("charging_periods")
    if not isinstance(raw, list) or not raw:
        raise _Unreadable("the CDR has no charging periods")
    periods = []
    for index, item in enumerate(raw):
        where = f"charging_periods[{index}]"
        if not isinstance(item, dict):
            raise _Unreadable(f"{where} is not an object")
        start = parse_datetime(str(item.get("start_date_time") or ""))
        if start is None or start.tzinfo is None:
            raise _Unreadable(f"{where}.start_date_time is not a date-time with a zone")
        dimensions = []
        for dimension in item.get("dimensions") or []:
            try:
                kind = pricing.CdrDimensionType(str(dimension["type"]))
                volume = Decimal(str(dimension["volume"]))
            except (KeyError, TypeError, ValueError, ArithmeticError):
                raise _Unreadable(f"{where}.dimensions: {dimension!r} is not a CdrDimension") from None
            dimensions.append(pricing.CdrDimension(kind, volume))
        periods.append(pricing.ChargingPeriod(start.astimezone(dt.UTC), tuple(dimensions)))
    return periods


def _tariff_ids(data: dict[str, Any]) -> list[str]:
    ids = [
        str(p["tariff_id"]) for p in data.get("charging_periods") or [] if isinstance(p, dict) and p.get("tariff_id")
    ]
    ids += [str(t["id"]) for t in data.get("tariffs") or [] if isinstance(t, dict) and t.get("id")]
    return list(dict.fromkeys(ids))


def _time_zone(cdr: PartnerCdr) -> str:
    """The location's zone (tariff times are local): the partner location the CDR names, else UTC."""
    place = cdr.data.get("cdr_location") if isinstance(cdr.data, dict) else None
    location_id = place.get("id") if isinstance(place, dict) else None
    zone = (
        PartnerLocation.objects.filter(partner_id=cdr.partner_id, ocpi_id=str(location_id))
        .values_list("time_zone", flat=True)
        .first()
        if location_id
        else None
    )
    try:
        return str(zoneinfo.ZoneInfo(zone)) if zone else "UTC"
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "UTC"


def partner_cdr_check(cdr: PartnerCdr) -> tuple[str, str]:
    """(review, detail) for the CDR, without storing it."""
    data = cdr.data if isinstance(cdr.data, dict) else {}
    ids = _tariff_ids(data)
    if not ids:
        return Review.NO_TARIFF, "The CDR names no tariff."
    found = [
        t
        for t in (
            tariff_selectors.partner_tariff(
                partner_id=cdr.partner_id, country_code=cdr.country_code, party_id=cdr.party_id, ocpi_id=i
            )
            for i in ids
        )
        if t is not None
    ]
    if not found:
        return Review.NO_TARIFF, f"Tariff {', '.join(ids)} of {cdr.country_code}*{cdr.party_id} was never received."
    tariff = found[0]
    currency = cdr.currency.upper()
    try:
        engine = pricing.tariff_from_ocpi(tariff.data)
        if engine.currency != currency:
            return Review.MISMATCH, f"Tariff {tariff.ocpi_id} is in {engine.currency}, the CDR in {currency}."
        breakdown = pricing.price_session(
            engine, _periods(data), end=cdr.end_date_time, time_zone=_time_zone(cdr), vat_rate=None
        )
    except (_Unreadable, pricing.TariffFormatError, pricing.PricingError) as exc:
        return Review.MISMATCH, f"Cannot price the CDR with tariff {tariff.ocpi_id}: {exc}"
    expected = pricing.round_money(breakdown.total_excl_vat, currency)
    billed = pricing.round_money(Decimal(cdr.total_cost_excl_vat), currency)
    if expected == billed:
        return Review.OK, f"{billed} {currency} excl. VAT, as tariff {tariff.ocpi_id} gives for the CDR's volumes."
    return (
        Review.MISMATCH,
        f"The CDR bills {billed} {currency} excl. VAT; tariff {tariff.ocpi_id} gives {expected} {currency} for the "
        f"CDR's volumes (difference {billed - expected} {currency}).",
    )


@transaction.atomic
def partner_cdr_reconcile(*, cdr: PartnerCdr) -> PartnerCdr:
    """Check the CDR against the CPO's tariff and store the verdict (`review`, `review_detail`)."""
    review, detail = partner_cdr_check(cdr)
    PartnerCdr.objects.filter(pk=cdr.pk).update(review=review, review_detail=detail[:500])
    cdr.review, cdr.review_detail = review, detail[:500]
    return cdr


def partner_cdr_flag(*, cdr_id: int, detail: str) -> None:
    """A CDR found not to match another copy of it (Hubject's, for a CDR it forwarded): mismatch, with why."""
    PartnerCdr.objects.filter(pk=cdr_id).update(review=Review.MISMATCH, review_detail=detail[:500])
