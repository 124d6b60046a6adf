"""Dynamic pricing (OICP 2.3 CPO file, eRoamingDynamicPricing 1.0): our tariffs as Hubject pricing products
(PushPricingProductData) and the products that apply at each of our EVSEs Hubject holds (PushEVSEPricing), for every
EMP (ProviderID "*").

The tariff at an EVSE is the one our pricing chooses for an identified roaming driver (as OCPI's connector
`tariff_ids`: `tariffs.selectors.pricing_selections`). An OCPI tariff becomes one product per element (ProductID: the
tariff id, `-2`, `-3` … for later elements), priced excl. VAT (the CPO bills the EMP net):

- ReferenceUnit KILOWATT_HOUR at the ENERGY price, or HOUR at the charging-TIME price when the element has no ENERGY;
  FLAT is a START FEE, PARKING_TIME a PARKING FEE per HOUR, the tariff's min/max price MINIMUM FEE / MAXIMUM FEE;
- the element's time and day restrictions become ProductAvailabilityTimes, minus the times of the elements before it
  (OCPI applies the first element that matches; Hubject's products must not overlap): computed per weekday and
  minute, written as Everyday, Workdays + Weekend, or per day; always valid: IsValid24hours;
- MaximumProductChargingPower: the highest power of the EVSEs the product is used at (or the element's max_power).

OICP has one reference unit per product: an element that prices energy and charging time together, or that is
restricted by kWh, current, duration or minimum power, cannot be said to Hubject. Such a tariff is not pushed (the sync
result says why) and its EVSEs get no product, rather than a wrong price.

Our tariffs are few: every sync sends both fullLoads, in order (the connection row is locked: Hubject wants pushes of
one operation sequential), and only when what would be sent differs from what Hubject acknowledged last (a digest in
the cache; a full sync from the admin sends anyway)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.roaming.models import OicpConnection, OicpEvseState, OicpOperation
from apps.roaming.oicp.client import OicpCallFailed, OicpClient, OicpDisabled
from apps.roaming.oicp.cpo_push import power_kw, refusal
from apps.roaming.oicp.schema import OicpValidationError
from apps.stations.models import Connector, Evse
from apps.tariffs import selectors as tariff_selectors
from apps.tariffs.models import Tariff

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MINUTES = 24 * 60
EXPRESSIBLE = {"start_time", "end_time", "day_of_week", "max_power", "start_date", "end_date"}
OPERATIONS = (OicpOperation.PUSH_PRICING_PRODUCT_DATA, OicpOperation.PUSH_EVSE_PRICING)
DIGEST_KEY = "oicp-pricing-digest:{}"
DIGEST_TTL_S = 7 * 24 * 3600


class NotExpressible(ValueError):
    pass


@dataclass
class PricingResult:
    products: int = 0
    evses: int = 0
    sent: bool = False
    refused: str = ""
    skipped: list[str] = field(default_factory=list)  # tariffs not pushed, and why


# --------------------------------------------------------------------------- when a product applies


Week = list[list[bool]]  # 7 days x 1440 minutes


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return min(int(hours) * 60 + int(minutes), MINUTES)


def _week(restrictions: dict[str, Any]) -> Week:
    """The minutes of the week an element's time and day restrictions allow (a window ending before it starts runs
    past midnight, into the next day)."""
    days = {DAYS.index(day.capitalize()) for day in restrictions.get("day_of_week") or []} or set(range(7))
    start = _minute(restrictions.get("start_time") or "00:00")
    end = _minute(restrictions.get("end_time") or "24:00")
    week = [[False] * MINUTES for _ in range(7)]
    for day in days:
        if start < end:
            week[day][start:end] = [True] * (end - start)
        elif start > end or restrictions.get("start_time"):  # across midnight (or start == end: the whole day)
            week[day][start:] = [True] * (MINUTES - start)
            following = (day + 1) % 7
            week[following][:end] = [True] * end
        else:
            week[day][:] = [True] * MINUTES
    return week


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _periods(minutes: list[bool]) -> list[dict[str, str]]:
    periods, start = [], None
    for index, on in enumerate([*minutes, False]):
        if on and start is None:
            start = index
        elif not on and start is not None:
            periods.append(
                {"begin": f"{start // 60:02d}:{start % 60:02d}", "end": f"{index // 60:02d}:{index % 60:02d}"}
            )
            start = None
    return periods


def availability(week: Week) -> tuple[bool, list[dict[str, Any]]]:
    """(IsValid24hours, ProductAvailabilityTimes) of these minutes of the week."""
    if all(all(day) for day in week):
        return True, [{"Periods": [{"begin": "00:00", "end": "24:00"}], "on": "Everyday"}]
    if all(day == week[0] for day in week):
        groups = [("Everyday", week[0])]
    elif all(day == week[0] for day in week[:5]) and week[5] == week[6]:
        groups = [("Workdays", week[0]), ("Weekend", week[5])]
    else:
        groups = list(zip(DAYS, week, strict=True))
    return False, [{"Periods": _periods(day), "on": name} for name, day in groups if any(day)]


# --------------------------------------------------------------------------- tariff -> products


def _price(value: Any) -> float:
    return float(Decimal(str(value)))


def products(tariff: Tariff, max_power_kw: float) -> list[dict[str, Any]]:
    """The PricingProductDataRecords of a tariff (see the module's docstring); NotExpressible says why not."""
    elements = tariff.elements or []
    taken: Week = [[False] * MINUTES for _ in range(7)]
    records = []
    for index, element in enumerate(elements):
        restrictions = element.get("restrictions") or {}
        unknown = sorted(set(restrictions) - EXPRESSIBLE)
        if unknown:
            raise NotExpressible(f"element {index + 1} is restricted by {', '.join(unknown)}")
        components = {c["type"]: c for c in element.get("price_components") or []}
        if "ENERGY" in components and "TIME" in components:
            raise NotExpressible(f"element {index + 1} prices energy and charging time together")
        allowed = _week(restrictions)
        own = [[a and not t for a, t in zip(day, used, strict=True)] for day, used in zip(allowed, taken, strict=True)]
        taken = [[a or t for a, t in zip(day, used, strict=True)] for day, used in zip(allowed, taken, strict=True)]
        if not any(any(day) for day in own):
            continue  # earlier elements always apply first
        unit, price = (
            ("KILOWATT_HOUR", components["ENERGY"]["price"])
            if "ENERGY" in components
            else ("HOUR", components["TIME"]["price"])
            if "TIME" in components
            else ("KILOWATT_HOUR", 0)
        )
        extra = []
        if "FLAT" in components:
            extra.append(("START FEE", unit, components["FLAT"]["price"]))
        if "PARKING_TIME" in components:
            extra.append(("PARKING FEE", "HOUR", components["PARKING_TIME"]["price"]))
        if tariff.min_price_excl_vat is not None:
            extra.append(("MINIMUM FEE", unit, tariff.min_price_excl_vat))
        if tariff.max_price_excl_vat is not None:
            extra.append(("MAXIMUM FEE", unit, tariff.max_price_excl_vat))
        all_day, times = availability(own)
        power = max_power_kw
        if restrictions.get("max_power") is not None:
            power = min(power, float(Decimal(str(restrictions["max_power"]))))
        record: dict[str, Any] = {
            "ProductID": tariff.ocpi_id if index == 0 else f"{tariff.ocpi_id}-{index + 1}",
            "ReferenceUnit": unit,
            "ProductPriceCurrency": tariff.currency,
            "PricePerReferenceUnit": _price(price),
            "MaximumProductChargingPower": power,
            "IsValid24hours": all_day,
            "ProductAvailabilityTimes": times,
        }
        if extra:
            record["AdditionalReferences"] = [
                {
                    "AdditionalReference": name,
                    "AdditionalReferenceUnit": of,
                    "PricePerAdditionalReferenceUnit": _price(v),
                }
                for name, of, v in extra
            ]
        records.append(record)
    if not records:
        raise NotExpressible("it has no element that ever applies")
    return records


# --------------------------------------------------------------------------- what Hubject should hold


@dataclass
class Catalog:
    products: list[dict[str, Any]]
    evse_pricing: list[dict[str, Any]]
    default: dict[str, Any] | None
    skipped: list[str]


def catalog(connection: OicpConnection) -> Catalog:
    """Products of the tariffs that apply at our EVSEs Hubject holds, and which apply at each."""
    held = dict(OicpEvseState.objects.filter(connection=connection).values_list("evse_pk", "evse_id"))
    evses = list(Evse.objects.filter(pk__in=held).select_related("charge_point"))
    sites = {
        e.pk: tariff_selectors.PricingSite(e.tenant_id, e.pk, e.charge_point_id, e.charge_point.location_id)
        for e in evses
    }
    selections = tariff_selectors.pricing_selections(
        sites=list(sites.values()), at=timezone.now(), party=tariff_selectors.PricingParty(identified=True)
    )
    power: dict[int, float] = {}
    for connector in Connector.objects.filter(evse_id__in=held):
        power[connector.evse_id] = max(power.get(connector.evse_id, 0.0), float(power_kw(connector)))
    by_tariff: dict[int, tuple[Tariff, list[int]]] = {}
    for pk, site in sites.items():
        tariff = selections[site].tariff
        if tariff is not None:
            by_tariff.setdefault(tariff.pk, (tariff, []))[1].append(pk)
    records: list[dict[str, Any]] = []
    product_ids: dict[int, list[str]] = {}
    skipped = []
    for tariff, evse_pks in sorted(by_tariff.values(), key=lambda item: item[0].ocpi_id):
        try:
            made = products(tariff, max(power.get(pk, 0.0) for pk in evse_pks) or 22.0)
        except NotExpressible as why:
            skipped.append(f"{tariff.ocpi_id}: {why}")
            continue
        records.extend(made)
        for pk in evse_pks:
            product_ids[pk] = [record["ProductID"] for record in made]
    pricing = [
        {"EvseID": held[pk], "ProviderID": "*", "EvseIDProductList": ids}
        for pk, ids in sorted(product_ids.items(), key=lambda item: held[item[0]])
    ]
    # the default price (for EVSEs Hubject prices with no product): the product used at most EVSEs (ties: by id)
    most_used = min(by_tariff.values(), key=lambda item: (-len(item[1]), item[0].ocpi_id), default=None)
    default = next((r for r in records if most_used is not None and r["ProductID"] == most_used[0].ocpi_id), None) or (
        records[0] if records else None
    )
    return Catalog(records, pricing, default, skipped)


def _product_body(connection: OicpConnection, found: Catalog) -> dict[str, Any]:
    default = found.default or {"PricePerReferenceUnit": 0, "ReferenceUnit": "KILOWATT_HOUR"}
    return {
        "ActionType": "fullLoad",
        "PricingProductData": {
            "OperatorID": connection.operator_id,
            "OperatorName": connection.tenant.name[:100],
            "ProviderID": "*",
            "PricingDefaultPrice": default["PricePerReferenceUnit"],
            "PricingDefaultPriceCurrency": default.get("ProductPriceCurrency") or connection.tenant.currency,
            "PricingDefaultReferenceUnit": default["ReferenceUnit"],
            "PricingProductDataRecords": found.products,
        },
    }


def pushing(connection: OicpConnection) -> bool:
    return (
        connection.enabled
        and bool(connection.operator_id)
        and all(op in connection.enabled_operations for op in OPERATIONS)
    )


def connections_pricing(*, tenant_id: int) -> list[int]:
    connections = OicpConnection.objects.filter(
        tenant_id=tenant_id, enabled=True, enabled_operations__contains=list(OPERATIONS)
    ).exclude(operator_id="")
    return list(connections.order_by("pk").values_list("pk", flat=True))


def pricing_sync(*, connection_id: int, full: bool = False) -> PricingResult:
    """Hubject's pricing products and EVSE pricing brought up to date (see the module's docstring). Raises
    OicpCallFailed when Hubject cannot be reached (the task retries); a refusal is returned in `refused`."""
    failure: Exception | None = None
    with transaction.atomic():
        connection = OicpConnection.objects.select_for_update().select_related("tenant").get(pk=connection_id)
        if not pushing(connection):
            return PricingResult()
        found = catalog(connection)
        bodies = (_product_body(connection, found), {"ActionType": "fullLoad", "EVSEPricing": found.evse_pricing})
        digest = hashlib.sha256(json.dumps(bodies, sort_keys=True).encode()).hexdigest()
        result = PricingResult(products=len(found.products), evses=len(found.evse_pricing), skipped=found.skipped)
        if not full and cache.get(DIGEST_KEY.format(connection.pk)) == digest:
            return result
        cache.delete(DIGEST_KEY.format(connection.pk))
        client = OicpClient(connection)
        try:
            for operation, body in zip(OPERATIONS, bodies, strict=True):
                if refused := refusal(client.call(operation, body)):
                    result.refused = f"{operation}: {refused}"
                    return result
            result.sent = True
        except (OicpCallFailed, OicpDisabled, OicpValidationError) as error:
            failure = error
        finally:
            client.close()
    if failure is not None:
        raise failure
    cache.set(DIGEST_KEY.format(connection_id), digest, DIGEST_TTL_S)
    return result
