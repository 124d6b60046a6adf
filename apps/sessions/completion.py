"""A session ends: its cost (tariffs engine), its immutable OCPI 2.2.1 CDR and its data-quality flags.

Called by `services.session_stop` in the stop's transaction. The price computed here, stored on the session
(`cost_excl_vat`, `cost_incl_vat`, `cost_breakdown` per tariff element and dimension) and on its CDR, is the ONLY
price of the session: receipts, invoices, exports, the driver API, webhooks and e-mails read it; nothing prices
a completed session again.

* Which tariff: `tariffs.selectors.pricing_selection` with the session's party (`selectors.session_pricing_party`):
  the same rule that chose the price the driver API showed (`selectors.station_prices`), incl. the paying
  business customer's contract price list, applied here.
* Idle (parking) time: from evidence only (`pricing.idle_spans`): the connector statuses the charger reported
  (stations' status history) and the meter readings it sent; the tariff's (or tenant's) grace period first.
* Not priced: no tariff applies, a price list in another currency, or a tariff the engine refuses. The stop is
  never lost: the session keeps an empty cost and `pricing_error` says why (it is not billed, never as 0); the
  CDR (OCPI needs a total) says 0 with the remark "not priced: ...".

Live cost while charging: `live_cost` (the same selection, evidence and engine, `stop=now`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from apps.core.errors import Conflict
from apps.sessions import ocpi_json, selectors
from apps.sessions.models import Cdr, ChargingSession, SignedMeterValue
from apps.stations import selectors as station_selectors
from apps.tariffs import pricing
from apps.tariffs import selectors as tariff_selectors

logger = logging.getLogger(__name__)

ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
# data quality thresholds
SHORT_SESSION = dt.timedelta(minutes=1)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
DEFAULT_MAX_POWER_W = 350_000  # when the connector's power is unknown


class Quality:
    ENERGY_ABOVE_CAPACITY = "energy_above_capacity"
    FUTURE_TIMESTAMP = "future_timestamp"
    REVERSED_TIMESTAMPS = "reversed_timestamps"
    NEGATIVE_ENERGY = "negative_energy"
    TOO_SHORT = "too_short"
    ZERO_ENERGY = "zero_energy"
    TOO_LONG = "too_long"


QUALITY_REASONS = [value for name, value in vars(Quality).items() if name.isupper()]
# what a person reads for a reason a session was flagged for (the console's filter and quality column)
REASON_LABELS = {
    Quality.ENERGY_ABOVE_CAPACITY: gettext_lazy("energy above the connector's capacity"),
    Quality.FUTURE_TIMESTAMP: gettext_lazy("time stamp in the future"),
    Quality.REVERSED_TIMESTAMPS: gettext_lazy("stop before start"),
    Quality.NEGATIVE_ENERGY: gettext_lazy("negative energy"),
    Quality.TOO_SHORT: gettext_lazy("too short"),
    Quality.ZERO_ENERGY: gettext_lazy("no energy"),
    Quality.TOO_LONG: gettext_lazy("too long"),
    "closed_without_stop": gettext_lazy("closed without a stop from the charger"),
}


def reason_label(reason: str) -> str:
    label = REASON_LABELS.get(reason)
    return str(label) if label is not None else reason.replace("_", " ")


def too_long_after() -> dt.timedelta:
    """A session running longer than this is suspicious (setting CHARGING_SESSION_TOO_LONG_HOURS)."""
    return dt.timedelta(hours=settings.CHARGING_SESSION_TOO_LONG_HOURS)


def connector_max_power_w(session: ChargingSession) -> int:
    connector = session.evse_connector
    if connector is None:
        return DEFAULT_MAX_POWER_W
    if connector.max_electric_power:
        return int(connector.max_electric_power)
    phases = 3 if connector.power_type == "AC_3_PHASE" else 1
    if connector.power_type.startswith("AC"):
        # per-phase voltage: 400 V line-to-line three phase is 230 V per phase
        volts = (
            connector.max_voltage / (3**0.5) if phases == 3 and connector.max_voltage > 300 else connector.max_voltage
        )
        return int(volts * connector.max_amperage * phases)
    return int(connector.max_voltage * connector.max_amperage)


def session_quality_reasons(session: ChargingSession, *, now: dt.datetime | None = None) -> list[str]:
    """Why a session looks wrong (empty: it looks fine). Works for open sessions too (too long, future)."""
    now = now or timezone.now()
    reasons: list[str] = []
    end = session.stopped_at or session.last_meter_at or session.started_at
    energy = (
        session.meter_stop_wh - session.meter_start_wh
        if session.meter_stop_wh is not None
        else (session.last_meter_wh or session.meter_start_wh) - session.meter_start_wh
    )
    if session.started_at > now + FUTURE_TOLERANCE or end > now + FUTURE_TOLERANCE:
        reasons.append(Quality.FUTURE_TIMESTAMP)
    if session.stopped_at is not None and session.stopped_at < session.started_at:
        reasons.append(Quality.REVERSED_TIMESTAMPS)
    if energy < 0 or "negative_energy" in session.flags:
        reasons.append(Quality.NEGATIVE_ENERGY)
    if session.stopped_at is not None:
        elapsed = session.stopped_at - session.started_at
        if dt.timedelta(0) <= elapsed < SHORT_SESSION:
            reasons.append(Quality.TOO_SHORT)
        if energy == 0:
            reasons.append(Quality.ZERO_ENERGY)
        hours = Decimal(max(elapsed.total_seconds(), 1)) / 3600
        if energy > 0 and Decimal(energy) > Decimal(connector_max_power_w(session)) * hours * Decimal("1.05"):
            reasons.append(Quality.ENERGY_ABOVE_CAPACITY)
    if (session.stopped_at or now) - session.started_at > too_long_after():
        reasons.append(Quality.TOO_LONG)
    return reasons


def energy_samples(session: ChargingSession, *, until: dt.datetime | None = None) -> list[pricing.MeterSample]:
    """The StartTransaction register, every register reading the charger sent (with the power it measured at the
    same instant, where it sent one), and the StopTransaction register."""
    samples = [pricing.MeterSample(session.started_at, session.meter_start_wh)]
    rows = (
        selectors.session_meter_values(session)
        .filter(measurand__in=(ENERGY_REGISTER, POWER_IMPORT), phase="")
        .order_by("timestamp", "pk")
        .values_list("timestamp", "measurand", "value", "unit")
    )
    registers: dict[dt.datetime, Decimal] = {}
    powers: dict[dt.datetime, Decimal] = {}
    for stamp, measurand, amount, unit in rows:
        if stamp < session.started_at or (until is not None and stamp > until):
            continue
        if measurand == ENERGY_REGISTER:
            registers[stamp] = max(registers.get(stamp, amount), amount * 1000 if unit.lower() == "kwh" else amount)
        else:
            powers[stamp] = amount * 1000 if unit.lower() == "kw" else amount
    for stamp in sorted(registers):
        samples.append(pricing.MeterSample(stamp, registers[stamp], powers.get(stamp)))
    if session.stopped_at is not None and session.meter_stop_wh is not None:
        samples.append(pricing.MeterSample(session.stopped_at, session.meter_stop_wh))
    return samples


def status_changes(session: ChargingSession, *, until: dt.datetime) -> list[pricing.StatusChange]:
    """What the connector reported during the session (stations' status history)."""
    return [
        pricing.StatusChange(stamp, status)
        for stamp, status in station_selectors.connector_status_history(
            charge_point_id=session.charge_point_id,
            connector_id=session.connector_id,
            since=session.started_at,
            until=until,
        )
    ]


def _money(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def _price(excl: Decimal, incl: Decimal) -> dict[str, str]:
    return {"excl_vat": str(excl), "incl_vat": str(incl)}


def _ocpi_price(excl: Decimal, incl: Decimal) -> dict[str, Decimal]:
    """An OCPI Price: numbers (the CDR's JSON fields store Decimal as exact JSON numbers)."""
    return {"excl_vat": excl, "incl_vat": incl}


class NotPriced(Exception):
    """The session cannot be priced; the message says why."""


@dataclass(frozen=True)
class Priced:
    selection: tariff_selectors.PricingSelection
    periods: list[pricing.ChargingPeriod]
    breakdown: pricing.CostBreakdown
    idle: list[pricing.IdleSpan]

    @property
    def tariff(self) -> Any:
        return self.selection.tariff


def session_price(session: ChargingSession, stop: dt.datetime) -> Priced:
    """The session priced up to `stop` (its end, or now for the cost so far). Raises NotPriced."""
    selection = tariff_selectors.pricing_selection(
        site=selectors.session_pricing_site(session),
        at=session.started_at,
        party=selectors.session_pricing_party(session),
    )
    if not selection.priceable or selection.tariff is None:
        raise NotPriced(selection.problem or "no tariff applies")
    stop = max(stop, session.started_at)
    zone = session.location.timezone if session.location is not None else session.tenant.timezone
    samples = energy_samples(session, until=stop)
    idle = pricing.idle_spans(
        samples=samples, statuses=status_changes(session, until=stop), start=session.started_at, stop=stop
    )
    try:
        periods, breakdown = tariff_selectors.session_cost(
            tariff=selection.tariff,
            samples=samples,
            start=session.started_at,
            stop=stop,
            time_zone=zone,
            vat_rate=session.tenant.default_vat_rate,
            price_list=selection.price_list,
            idle=idle,
        )
    except ValueError as exc:  # the engine's PricingError / TariffFormatError
        raise NotPriced(str(exc)) from exc
    return Priced(selection, periods, breakdown, idle)


def live_cost(session: ChargingSession, *, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """Cost so far of a running session (or the stored cost of an ended one; None: not priced)."""
    if session.stopped_at is not None:
        if session.cost_incl_vat is None or session.cost_excl_vat is None:
            return None
        places = Decimal(1).scaleb(-pricing.minor_units(session.currency or "EUR"))
        return {
            "currency": session.currency,
            "excl_vat": str(session.cost_excl_vat.quantize(places)),
            "incl_vat": str(session.cost_incl_vat.quantize(places)),
        }
    try:
        breakdown = session_price(session, now or timezone.now()).breakdown
    except NotPriced:
        return None
    return {
        "currency": breakdown.currency,
        "excl_vat": str(breakdown.total_excl_vat),
        "incl_vat": str(breakdown.total_incl_vat),
    }


def _breakdown_json(priced: Priced) -> dict[str, Any]:
    """What the session's price is made of, as stored with it: billing builds invoice lines from `lines`."""
    breakdown, selection = priced.breakdown, priced.selection
    return {
        "currency": breakdown.currency,
        "total_excl_vat": str(breakdown.total_excl_vat),
        "total_incl_vat": str(breakdown.total_incl_vat),
        "lines": [
            {
                "group": str(line.group),
                "dimension": str(line.dimension) if line.dimension else None,
                "description": line.description,
                "price": str(line.price),
                "vat": str(line.vat),
                "volume": str(line.volume),
                "billed_volume": str(line.billed_volume),
                "excl_vat": str(line.excl_vat),
                "incl_vat": str(line.incl_vat),
            }
            for line in breakdown.lines
        ],
        "by_dimension": {k: _price(*v) for k, v in breakdown.by_dimension.items()},
        "price_list": (
            {"id": selection.price_list.pk, "name": selection.price_list.name}
            if selection.price_list is not None
            else None
        ),
        "parking_grace_minutes": selection.parking_grace_minutes,
        "idle": [
            {
                "start": span.start.astimezone(dt.UTC).isoformat(),
                "end": span.end.astimezone(dt.UTC).isoformat(),
                "evidence": span.evidence,
            }
            for span in priced.idle
        ],
    }


def _periods_json(periods: list[pricing.ChargingPeriod], tariff_id: str) -> list[dict[str, Any]]:
    return [
        {
            "start_date_time": p.start_date_time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "dimensions": [{"type": str(d.type), "volume": d.volume} for d in p.dimensions],
            "tariff_id": tariff_id,
        }
        for p in periods
    ]


def _location_snapshot(session: ChargingSession) -> dict[str, Any]:
    location, evse, connector = session.location, session.evse, session.evse_connector
    return {
        "id": (location.ocpi_id or str(location.pk)) if location is not None else "",
        "name": location.name if location is not None else "",
        "address": location.address if location is not None else "",
        "city": location.city if location is not None else "",
        "postal_code": location.postal_code if location is not None else "",
        "country": location.country if location is not None else "",
        "coordinates": {
            "latitude": str(location.latitude) if location is not None else "",
            "longitude": str(location.longitude) if location is not None else "",
        },
        "evse_uid": str(evse.pk) if evse is not None else "",
        "evse_id": evse.evse_uid if evse is not None else "",
        # the Connector.id our OCPI Location emits (our key), not the OCPP connector number (that is the EVSE)
        "connector_id": str(connector.pk) if connector is not None else str(session.connector_id),
        "connector_standard": connector.standard if connector is not None else "",
        "connector_format": connector.format if connector is not None else "",
        "connector_power_type": connector.power_type if connector is not None else "",
    }


def _token_snapshot(session: ChargingSession) -> dict[str, Any]:
    token, tenant = session.token, session.tenant
    return {
        "country_code": (token.country_code if token is not None and token.country_code else tenant.ocpi_country_code)
        or tenant.country,
        "party_id": (token.party_id if token is not None and token.party_id else tenant.ocpi_party_id) or "",
        "uid": session.id_tag,
        "type": token.type if token is not None else "OTHER",
        "contract_id": (token.contract_id or token.uid) if token is not None else session.id_tag,
    }


def session_complete(*, session: ChargingSession) -> Cdr:
    """Price the stopped session, store its cost, flag its quality, write its CDR (once)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("session_complete runs inside the stop's transaction")
    session = (
        ChargingSession.objects.select_related("tenant", "location", "evse", "evse_connector", "token", "charge_point")
        .select_for_update(of=("self",))
        .get(pk=session.pk)
    )
    if Cdr.objects.filter(session=session).exists():
        raise Conflict(f"Session {session.pk} already has a CDR.", code="cdr_exists")
    assert session.stopped_at is not None
    assert session.meter_stop_wh is not None
    remark = ""
    tariffs: list[dict[str, Any]] = []
    periods_json: list[dict[str, Any]] = []
    currency = session.tenant.currency
    zero = Decimal("0")
    excl = incl = zero
    energy_cost = time_cost = parking_cost = fixed_cost = None
    total_time = Decimal(max((session.stopped_at - session.started_at).total_seconds(), 0)) / 3600
    total_parking: Decimal | None = None
    priced: Priced | None = None
    try:
        with transaction.atomic():
            priced = session_price(session, session.stopped_at)
    except NotPriced as exc:
        session.pricing_error = str(exc)[:255]
        remark = f"not priced: {exc}"[:255]
    if priced is None:
        session.tariff = None
        session.cost_breakdown = None
        session.cost_excl_vat = session.cost_incl_vat = None
    else:
        tariff, breakdown = priced.tariff, priced.breakdown
        currency = breakdown.currency
        excl, incl = breakdown.total_excl_vat, breakdown.total_incl_vat
        total_time, total_parking = breakdown.total_time, breakdown.total_parking_time
        groups = breakdown.by_dimension
        energy_cost = _ocpi_price(*groups["ENERGY"]) if "ENERGY" in groups else None
        time_cost = _ocpi_price(*groups["TIME"]) if "TIME" in groups else None
        parking_cost = _ocpi_price(*groups["PARKING_TIME"]) if "PARKING_TIME" in groups else None
        fixed_cost = _ocpi_price(*groups["FLAT"]) if "FLAT" in groups else None
        session.tariff = tariff
        session.cost_breakdown = _breakdown_json(priced)
        session.pricing_error = ""
        session.cost_excl_vat, session.cost_incl_vat = excl, incl
        # the OCPI Tariff object as stored: Decimal prices as exact JSON numbers, datetimes as ISO 8601 (ocpi_json)
        tariffs = [ocpi_json.loads(ocpi_json.dumps(tariff_selectors.tariff_document(tariff)))]
        periods_json = _periods_json(priced.periods, tariff.ocpi_id)
    session.currency = currency
    session.suspicious_reasons = session_quality_reasons(session)
    session.suspicious = bool(session.suspicious_reasons)
    tenant = session.tenant
    session.cdr_ocpi_id = f"{tenant.ocpi_party_id or 'EVP'}{session.pk}"
    session.save(
        update_fields=[
            "cdr_ocpi_id",
            "tariff",
            "cost_breakdown",
            "currency",
            "cost_excl_vat",
            "cost_incl_vat",
            "pricing_error",
            "suspicious",
            "suspicious_reasons",
            "updated_at",
        ]
    )
    signed = list(SignedMeterValue.objects.filter(session=session).order_by("timestamp", "pk"))
    signed_data = (
        {
            "encoding_method": "OCMF" if any(s.data.startswith("OCMF|") for s in signed) else "OTHER",
            "signed_values": [
                {"nature": s.context or s.measurand, "plain_data": "", "signed_data": s.data, "id": s.pk}
                for s in signed
            ],
            "url": "",
        }
        if signed
        else None
    )
    energy_wh = session.energy_wh or 0
    return Cdr.objects.create(
        tenant_id=session.tenant_id,
        session=session,
        ocpi_id=session.cdr_ocpi_id,
        country_code=tenant.ocpi_country_code or tenant.country,
        party_id=tenant.ocpi_party_id or "EVP",
        start_date_time=session.started_at,
        end_date_time=session.stopped_at,
        cdr_token=_token_snapshot(session),
        auth_method=session.auth_method or "AUTH_REQUEST",
        authorization_reference=session.authorization_reference,
        cdr_location=_location_snapshot(session),
        meter_id=session.charge_point.meter_serial_number,
        currency=currency,
        tariffs=tariffs,
        charging_periods=periods_json,
        signed_data=signed_data,
        energy_wh=energy_wh,
        total_cost=_ocpi_price(excl, incl),
        total_fixed_cost=fixed_cost,
        total_energy=Decimal(energy_wh) / 1000,
        total_energy_cost=energy_cost,
        total_time=total_time.quantize(Decimal("0.000001")),
        total_time_cost=time_cost,
        total_parking_time=total_parking,
        total_parking_cost=parking_cost,
        remark=remark,
        last_updated=timezone.now(),
    )


def cdr_update(*, cdr: Cdr, **changes: Any) -> Cdr:
    """CDRs are immutable (OCPI: a correction is a new credit CDR); the database refuses updates too."""
    raise Conflict(f"CDR {cdr.ocpi_id} is immutable.", code="cdr_immutable")
