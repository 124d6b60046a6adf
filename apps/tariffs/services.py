"""Writes for tariffs, tariff assignments and contract price lists. Every way in (API, admin, demo, roaming)
comes through here, and every write is validated in full (`full_clean`: field validators including the
OCPI element validator, check and unique constraints) before it is stored."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.core import cache, events
from apps.tariffs.models import (
    ContractPriceList,
    PartnerTariff,
    RetailMode,
    RoamingRetailRule,
    Tariff,
    TariffAssignment,
)
from apps.tariffs.ocpi import DisplayTextSerializer, EnergyMixSerializer, canonical, canonical_elements
from apps.tenants.models import Tenant

_UNSET: Any = object()

TARIFF_FIELDS = (
    "ocpi_id",
    "currency",
    "type",
    "tariff_alt_text",
    "tariff_alt_url",
    "min_price",
    "max_price",
    "elements",
    "start_date_time",
    "end_date_time",
    "energy_mix",
    "parking_grace_minutes",
)


def _set_tariff_fields(tariff: Tariff, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - set(TARIFF_FIELDS)
    if unknown:
        raise TypeError(f"unknown tariff fields: {sorted(unknown)}")
    for name, value in changes.items():
        if name in ("min_price", "max_price"):
            price = value or {}
            setattr(tariff, f"{name}_excl_vat", _decimal_or_none(price.get("excl_vat")))
            setattr(tariff, f"{name}_incl_vat", _decimal_or_none(price.get("incl_vat")))
        elif name == "elements":
            tariff.elements = canonical_elements(value)
        elif name == "tariff_alt_text":
            tariff.tariff_alt_text = canonical(DisplayTextSerializer, value or [], many=True, name=name)
        elif name == "energy_mix":
            tariff.energy_mix = None if value is None else canonical(EnergyMixSerializer, value, many=False, name=name)
        elif name in ("type", "tariff_alt_url"):
            setattr(tariff, name, value or "")
        elif name == "currency":
            tariff.currency = str(value).upper()
        else:
            setattr(tariff, name, value)


def tariffs_changed(*, tenant_id: int) -> None:
    """Every write of a tariff, an assignment or a contract price list calls this: the tenant's cached reads of
    prices (namespace `tariffs`: the driver station search's prices) are dropped on commit (`apps/core/cache.py`)."""
    cache.invalidate("tariffs", tenant_id)


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@transaction.atomic
def tariff_create(
    *,
    tenant: Tenant,
    currency: str,
    elements: list[Mapping[str, Any]],
    ocpi_id: str | None = None,
    type: str = "",
    tariff_alt_text: list[Mapping[str, Any]] | None = None,
    tariff_alt_url: str = "",
    min_price: Mapping[str, Any] | None = None,
    max_price: Mapping[str, Any] | None = None,
    start_date_time: dt.datetime | None = None,
    end_date_time: dt.datetime | None = None,
    energy_mix: Mapping[str, Any] | None = None,
    parking_grace_minutes: int | None = None,
) -> Tariff:
    tariff = Tariff(tenant=tenant)
    _set_tariff_fields(
        tariff,
        {
            "ocpi_id": ocpi_id or str(uuid.uuid4()),
            "currency": currency,
            "type": type,
            "tariff_alt_text": tariff_alt_text or [],
            "tariff_alt_url": tariff_alt_url,
            "min_price": min_price,
            "max_price": max_price,
            "elements": elements,
            "start_date_time": start_date_time,
            "end_date_time": end_date_time,
            "energy_mix": energy_mix,
            "parking_grace_minutes": parking_grace_minutes,
        },
    )
    tariff.full_clean()
    tariff.save()
    tariffs_changed(tenant_id=tariff.tenant_id)
    tariff_changed(tariff_ids=[tariff.pk], tenant_id=tenant.pk)
    return tariff


def tariff_changed(*, tariff_ids: list[int | None], tenant_id: int, placement: bool = False) -> None:
    """Publish `TariffChanged` for each tariff (once each) in the caller's transaction: whoever shows the tariff
    elsewhere (the OCPI tariffs pushes of roaming) follows. `placement`: an assignment changed, so where each tariff
    applies did too (the OCPI locations name their connectors' tariffs)."""
    for tariff_id in dict.fromkeys(t for t in tariff_ids if t is not None):
        events.publish(events.TariffChanged(tenant_id=tenant_id, tariff_id=tariff_id, placement=placement))


@transaction.atomic
def tariff_update(*, tariff: Tariff, **changes: Any) -> Tariff:
    """Change some of a tariff's OCPI fields (a PUT passes them all). `last_updated` moves with every change."""
    tariff = Tariff.objects.select_for_update().get(pk=tariff.pk)
    if changes.get("ocpi_id") is None:
        changes.pop("ocpi_id", None)
    _set_tariff_fields(tariff, changes)
    tariff.full_clean()
    tariff.save()
    tariffs_changed(tenant_id=tariff.tenant_id)
    # a new OCPI id or validity changes what the connectors name (an id) or which tariff applies (the dates)
    placement = bool({"ocpi_id", "start_date_time", "end_date_time"} & set(changes))
    tariff_changed(tariff_ids=[tariff.pk], tenant_id=tariff.tenant_id, placement=placement)
    return tariff


@transaction.atomic
def tariff_delete(*, tariff: Tariff) -> None:
    """Refused (409, via ProtectedError) while an assignment still uses the tariff."""
    tariff_id, tenant_id = tariff.pk, tariff.tenant_id
    tariff.delete()
    tariffs_changed(tenant_id=tariff.tenant_id)
    tariff_changed(tariff_ids=[tariff_id], tenant_id=tenant_id)


# --------------------------------------------------------------------------- assignments


ASSIGNMENT_FIELDS = {"tariff", "location", "charge_point", "evse", "ad_hoc", "valid_from", "valid_until"}


def _check_assignment(assignment: TariffAssignment) -> None:
    """Tariff and target must be the assignment's tenant's; then the model's own rules."""
    errors = {
        name: ["Belongs to another tenant."]
        for name in ("tariff", "location", "charge_point", "evse")
        if getattr(assignment, f"{name}_id") is not None and getattr(assignment, name).tenant_id != assignment.tenant_id
    }
    if errors:
        raise ValidationError(errors)
    assignment.full_clean()


@transaction.atomic
def tariff_assignment_create(
    *,
    tenant: Tenant,
    tariff: Tariff,
    location: Any = None,
    charge_point: Any = None,
    evse: Any = None,
    ad_hoc: bool = False,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
) -> TariffAssignment:
    """Attach `tariff` to an EVSE, a charge point or a location (stations models), or to none: tenant default."""
    assignment = TariffAssignment(
        tenant=tenant,
        tariff=tariff,
        location=location,
        charge_point=charge_point,
        evse=evse,
        ad_hoc=ad_hoc,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    _check_assignment(assignment)
    assignment.save()
    tariffs_changed(tenant_id=assignment.tenant_id)
    tariff_changed(tariff_ids=[assignment.tariff_id], tenant_id=assignment.tenant_id, placement=True)
    return assignment


@transaction.atomic
def tariff_assignment_update(*, assignment: TariffAssignment, **changes: Any) -> TariffAssignment:
    if set(changes) - ASSIGNMENT_FIELDS:
        raise TypeError(f"unknown assignment fields: {sorted(set(changes) - ASSIGNMENT_FIELDS)}")
    assignment = TariffAssignment.objects.select_for_update().get(pk=assignment.pk)
    before = assignment.tariff_id
    for name, value in changes.items():
        setattr(assignment, name, value)
    _check_assignment(assignment)
    assignment.save()
    tariffs_changed(tenant_id=assignment.tenant_id)
    tariff_changed(tariff_ids=[before, assignment.tariff_id], tenant_id=assignment.tenant_id, placement=True)
    return assignment


@transaction.atomic
def tariff_assignment_delete(*, assignment: TariffAssignment) -> None:
    tariff_id, tenant_id = assignment.tariff_id, assignment.tenant_id
    assignment.delete()
    tariffs_changed(tenant_id=assignment.tenant_id)
    tariff_changed(tariff_ids=[tariff_id], tenant_id=tenant_id, placement=True)


# --------------------------------------------------------------------------- contract price lists

PRICE_LIST_FIELDS = {
    "business_customer",
    "name",
    "currency",
    "discount_percent",
    "energy_price_per_kwh",
    "session_fee",
    "monthly_fee",
    "vat_rate",
    "valid_from",
    "valid_until",
}


def _check_price_list(price_list: ContractPriceList) -> None:
    if price_list.business_customer.tenant_id != price_list.tenant_id:
        raise ValidationError({"business_customer": ["Belongs to another tenant."]})
    price_list.currency = price_list.currency.upper()
    price_list.full_clean()


@transaction.atomic
def contract_price_list_create(*, tenant: Tenant, **fields: Any) -> ContractPriceList:
    if set(fields) - PRICE_LIST_FIELDS:
        raise TypeError(f"unknown price list fields: {sorted(set(fields) - PRICE_LIST_FIELDS)}")
    price_list = ContractPriceList(tenant=tenant, **fields)
    _check_price_list(price_list)
    price_list.save()
    tariffs_changed(tenant_id=price_list.tenant_id)
    return price_list


@transaction.atomic
def contract_price_list_update(*, price_list: ContractPriceList, **changes: Any) -> ContractPriceList:
    if set(changes) - PRICE_LIST_FIELDS:
        raise TypeError(f"unknown price list fields: {sorted(set(changes) - PRICE_LIST_FIELDS)}")
    price_list = ContractPriceList.objects.select_for_update().get(pk=price_list.pk)
    for name, value in changes.items():
        setattr(price_list, name, value)
    _check_price_list(price_list)
    price_list.save()
    tariffs_changed(tenant_id=price_list.tenant_id)
    return price_list


@transaction.atomic
def contract_price_list_delete(*, price_list: ContractPriceList) -> None:
    price_list.delete()
    tariffs_changed(tenant_id=price_list.tenant_id)


# --------------------------------------------------------------------------- partner tariffs (eMSP role: receivers)


@transaction.atomic
def partner_tariff_put(
    *,
    tenant_id: int,
    partner_id: int,
    country_code: str,
    party_id: str,
    ocpi_id: str,
    currency: str,
    data: dict[str, Any],
    last_updated: dt.datetime,
) -> tuple[PartnerTariff, bool]:
    """Create or replace a partner's tariff (the OCPI Tariff as received). A tariff older than the stored one
    changes nothing (False): the newest the CPO sent wins whatever order pushes and pulls arrive in."""
    with connection.cursor() as cursor:  # one writer per tariff (a push and a pull of a new one cannot collide)
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('partner.tariff'), hashtext(%s))",
            [f"{partner_id}:{country_code}:{party_id}:{ocpi_id}"],
        )
    existing = (
        PartnerTariff.objects.select_for_update()
        .filter(partner_id=partner_id, country_code=country_code, party_id=party_id, ocpi_id=ocpi_id)
        .first()
    )
    if existing is not None and existing.last_updated > last_updated:
        return existing, False
    row, _ = PartnerTariff.objects.update_or_create(
        tenant_id=tenant_id,
        partner_id=partner_id,
        country_code=country_code,
        party_id=party_id,
        ocpi_id=ocpi_id,
        defaults={"currency": currency, "data": data, "last_updated": last_updated},
    )
    tariffs_changed(tenant_id=tenant_id)
    return row, True


@transaction.atomic
def partner_tariff_delete(*, tenant_id: int, partner_id: int, country_code: str, party_id: str, ocpi_id: str) -> bool:
    """The CPO withdrew the tariff (OCPI DELETE). False: no such tariff."""
    deleted, _ = PartnerTariff.objects.filter(
        partner_id=partner_id, country_code=country_code, party_id=party_id, ocpi_id=ocpi_id
    ).delete()
    if deleted:
        tariffs_changed(tenant_id=tenant_id)
    return bool(deleted)


@transaction.atomic
def partner_tariffs_remove_unlisted(*, tenant_id: int, partner_id: int, keep: set[tuple[str, str, str]]) -> int:
    """After a full resync: the partner's tariffs it no longer lists are deleted. Returns how many."""
    rows = PartnerTariff.objects.filter(partner_id=partner_id).values_list("pk", "country_code", "party_id", "ocpi_id")
    gone = [pk for pk, cc, pid, oid in rows if (cc, pid, oid) not in keep]
    if gone:
        PartnerTariff.objects.filter(pk__in=gone).delete()
        tariffs_changed(tenant_id=tenant_id)
    return len(gone)


# --------------------------------------------------------------------------- roaming retail rules (eMSP search slice)

RETAIL_RULE_FIELDS = {"partner", "mode", "markup_percent", "price_per_kwh_excl_vat", "vat_rate", "currency"}


def _check_retail_rule(rule: RoamingRetailRule) -> None:
    """The partner is the rule's tenant's; a fixed price per kWh has its price; a mark-up only in mark-up mode."""
    if rule.partner.tenant_id != rule.tenant_id:
        raise ValidationError({"partner": ["Belongs to another tenant."]})
    if rule.mode == RetailMode.FIXED_KWH and rule.price_per_kwh_excl_vat is None:
        raise ValidationError({"price_per_kwh_excl_vat": ["A fixed price per kWh needs the price."]})
    if rule.mode != RetailMode.FIXED_KWH:
        rule.price_per_kwh_excl_vat = None
    if rule.mode != RetailMode.MARKUP:
        rule.markup_percent = Decimal(0)
    rule.currency = (rule.currency or "").upper()
    rule.full_clean()


@transaction.atomic
def roaming_retail_rule_create(*, tenant: Tenant, **fields: Any) -> RoamingRetailRule:
    """A tenant's retail rule for sessions on one roaming partner's EVSEs (one per partner)."""
    if set(fields) - RETAIL_RULE_FIELDS:
        raise TypeError(f"unknown retail rule fields: {sorted(set(fields) - RETAIL_RULE_FIELDS)}")
    rule = RoamingRetailRule(tenant=tenant, **fields)
    _check_retail_rule(rule)
    rule.save()
    tariffs_changed(tenant_id=rule.tenant_id)
    return rule


@transaction.atomic
def roaming_retail_rule_update(*, rule: RoamingRetailRule, **changes: Any) -> RoamingRetailRule:
    if set(changes) - RETAIL_RULE_FIELDS:
        raise TypeError(f"unknown retail rule fields: {sorted(set(changes) - RETAIL_RULE_FIELDS)}")
    rule = RoamingRetailRule.objects.select_for_update().select_related("partner").get(pk=rule.pk)
    for name, value in changes.items():
        setattr(rule, name, value)
    _check_retail_rule(rule)
    rule.save()
    tariffs_changed(tenant_id=rule.tenant_id)
    return rule


@transaction.atomic
def roaming_retail_rule_delete(*, rule: RoamingRetailRule) -> None:
    """Back to pass-through for that partner."""
    rule.delete()
    tariffs_changed(tenant_id=rule.tenant_id)
