"""The invoice line builder: the ONE function that turns a session and its price into a printed line."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_noop

from apps.billing.costing import PricedDimension, SessionPrice
from apps.billing.models import InvoiceLine
from apps.core.stored_text import StoredText, translated_parts
from apps.sessions.models import ChargingSession, PartnerCdr
from apps.tariffs.retail import RetailPrice

TRANSPARENCY_SOFTWARE = "S.A.F.E. Transparenzsoftware (https://www.safe-ev.de)"


def session_reference(session: ChargingSession) -> str:
    """The id printed on the line and used in the CDR: charge point identity and OCPP transaction id."""
    return f"{session.charge_point.identity}-{session.pk}"


# the parts of an invoice line's meter-data reference, stored joined by "; "
OCMF_TRANSACTION = StoredText(gettext_noop("OCMF transaction %(reference)s"))
METER_ON_LABEL = StoredText(gettext_noop("meter: see charge point label"))
METER = StoredText(gettext_noop("meter %(meter)s"))
READINGS = StoredText(gettext_noop("readings %(start)s Wh -> %(stop)s Wh"))
VERIFY_WITH = StoredText(gettext_noop("verify with %(software)s"))
METER_VERIFICATION_PARTS = [OCMF_TRANSACTION, METER_ON_LABEL, METER, READINGS, VERIFY_WITH]


def meter_verification_reference(session: ChargingSession) -> str:
    """Eichrecht: what a customer needs to verify the signed meter data of this session.

    The signed OCMF record itself is kept with the session's meter values; the line prints where it comes
    from (meter, transaction) and which transparency software checks it.
    Stored in English (the API shows it so); documents and the console show it in their language
    (`meter_verification_text`).
    """
    charge_point = session.charge_point
    meter = " ".join(part for part in (charge_point.meter_type, charge_point.meter_serial_number) if part)
    parts = [
        OCMF_TRANSACTION.fill(reference=session_reference(session)),
        METER.fill(meter=meter) if meter else METER_ON_LABEL.fill(),
        READINGS.fill(start=session.meter_start_wh, stop=session.meter_stop_wh),
        VERIFY_WITH.fill(software=TRANSPARENCY_SOFTWARE),
    ]
    return "; ".join(parts)


def meter_verification_text(stored: str) -> str:
    """An invoice line's stored meter-data reference in the active language (a part of unknown shape as stored)."""
    return translated_parts(stored, METER_VERIFICATION_PARTS)


def invoice_line_from_session(*, session: ChargingSession, price: SessionPrice, position: int) -> InvoiceLine:
    """An unsaved invoice line copying everything it prints from the session and its priced breakdown.

    Expects `session.charge_point.location`, `session.evse` and `session.tenant` loaded (select_related) to stay
    query-free. Times are printed in the location's time zone (copied as `time_zone`).
    """
    charge_point = session.charge_point
    location = charge_point.location
    address = ""
    if location is not None:
        address = ", ".join(
            part
            for part in (location.address, f"{location.postal_code} {location.city}".strip(), location.country)
            if part
        )
    duration = 0
    if session.stopped_at is not None:
        duration = max(0, int((session.stopped_at - session.started_at).total_seconds()))
    energy_wh = session.energy_wh if session.energy_wh is not None else 0
    return InvoiceLine(
        position=position,
        description=f"Charging session {session_reference(session)}"
        + (f" at {location.name}" if location is not None else ""),
        session_id=session.pk,
        session_reference=session_reference(session),
        location_id=location.pk if location is not None else None,
        location_name=location.name if location is not None else "",
        location_address=address,
        evse_reference=session.evse.evse_uid
        if session.evse is not None
        else f"{charge_point.identity}/{session.connector_id}",
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        time_zone=(location.timezone if location is not None and location.timezone else "") or session.tenant.timezone,
        duration_seconds=duration,
        energy_wh=energy_wh,
        components=[
            {
                "dimension": d.dimension,
                "description": d.description,
                "excl_vat": f"{d.excl_vat:.2f}",
                "vat_rate": f"{d.vat_rate:.2f}",
                "incl_vat": f"{d.incl_vat:.2f}",
            }
            for d in price.dimensions
        ],
        vat_rate=price.vat_rate,
        total_excl_vat=price.total_excl_vat,
        total_vat=price.total_vat,
        total_incl_vat=price.total_incl_vat,
        meter_verification=meter_verification_reference(session),
    )


def invoice_fee_line(*, description: str, price: PricedDimension, position: int) -> InvoiceLine:
    """An unsaved line for a fee that belongs to no session (e.g. a contract's monthly fee)."""
    return InvoiceLine(
        position=position,
        description=description,
        components=[
            {
                "dimension": price.dimension,
                "description": price.description,
                "excl_vat": f"{price.excl_vat:.2f}",
                "vat_rate": f"{price.vat_rate:.2f}",
                "incl_vat": f"{price.incl_vat:.2f}",
            }
        ],
        vat_rate=price.vat_rate,
        total_excl_vat=price.excl_vat,
        total_vat=price.vat,
        total_incl_vat=price.incl_vat,
    )


def line_vat_parts(line: InvoiceLine) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(rate, net, vat) of a line, per component rate (a line may mix rates)."""
    if not line.components:
        return [(Decimal(line.vat_rate), Decimal(line.total_excl_vat), Decimal(line.total_vat))]
    return [
        (Decimal(c["vat_rate"]), Decimal(c["excl_vat"]), Decimal(c["incl_vat"]) - Decimal(c["excl_vat"]))
        for c in line.components
    ]


# --------------------------------------------------------------------------- roaming: our driver on another network


def partner_cdr_reference(cdr: PartnerCdr) -> str:
    """The id printed on a roaming line: the CPO's party and its CDR id."""
    return f"{cdr.country_code}*{cdr.party_id}-{cdr.ocpi_id}"


def invoice_line_from_partner_cdr(
    *, cdr: PartnerCdr, price: RetailPrice, vat_rate: Decimal, time_zone: str, position: int
) -> InvoiceLine:
    """An unsaved invoice line for a CDR another CPO sent for our driver's session, at our retail price (`price`,
    from `apps.tariffs.retail.retail_price`), printing the partner's location and EVSE from the CDR's
    `cdr_location`. The CPO's cost excl. VAT is kept on the line (`cpo_cost_excl_vat`) for the margin; it is not
    printed."""
    place = cdr.data.get("cdr_location") if isinstance(cdr.data, dict) else None
    place = place if isinstance(place, dict) else {}

    def text(key: str) -> str:
        value = place.get(key)
        return str(value) if isinstance(value, (str, int)) else ""

    address = ", ".join(
        part for part in (text("address"), f"{text('postal_code')} {text('city')}".strip(), text("country")) if part
    )
    name = text("name") or text("id")
    energy_wh = int((Decimal(cdr.total_energy) * 1000).to_integral_value())
    duration = max(0, int((cdr.end_date_time - cdr.start_date_time).total_seconds()))
    operator = f"{cdr.country_code}*{cdr.party_id}"
    return InvoiceLine(
        position=position,
        description=f"Roaming session {partner_cdr_reference(cdr)}" + (f" at {name}" if name else ""),
        partner_cdr_id=cdr.pk,
        session_reference=partner_cdr_reference(cdr)[:64],
        location_name=name[:255],
        location_address=address[:400],
        evse_reference=(text("evse_id") or text("evse_uid"))[:64],
        started_at=cdr.start_date_time,
        stopped_at=cdr.end_date_time,
        time_zone=time_zone,
        duration_seconds=duration,
        energy_wh=energy_wh,
        components=[
            {
                "dimension": "ROAMING",
                "description": f"{_kwh(cdr.total_energy)} kWh on the network of {operator}",
                "excl_vat": f"{price.excl_vat:.2f}",
                "vat_rate": f"{vat_rate:.2f}",
                "incl_vat": f"{price.incl_vat:.2f}",
            }
        ],
        vat_rate=vat_rate,
        total_excl_vat=price.excl_vat,
        total_vat=price.vat,
        total_incl_vat=price.incl_vat,
        cpo_cost_excl_vat=cdr.total_cost_excl_vat,
    )


def _kwh(value: Decimal) -> str:
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
