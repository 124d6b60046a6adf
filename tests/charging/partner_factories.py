"""Partner stations, tariffs and CDRs as the receivers slice stores them (eMSP), for the search and billing tests.

Kept here (not in tests/stations or tests/tariffs factories) so parallel slices adding their own do not collide."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.roaming.models import RoamingPartner
from apps.sessions.models import PartnerCdr
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tariffs.models import PartnerTariff
from apps.tenants.models import Tenant
from tests.roaming.factories import partner_for

_n = iter(range(10**6))


def partner(tenant: Tenant, **fields: Any) -> RoamingPartner:
    fields.setdefault("roles", ["CPO"])
    return partner_for(tenant, **fields)[0]


def partner_location(
    owner: RoamingPartner,
    *,
    lat: str = "52.520000",
    lon: str = "13.400000",
    evses: int = 1,
    status: str = "AVAILABLE",
    standard: str = "IEC_62196_T2",
    power_type: str = "AC_3_PHASE",
    voltage: int = 230,
    amperage: int = 16,
    max_electric_power: int | None = None,
    tariff_ids: list[str] | None = None,
    **fields: Any,
) -> PartnerLocation:
    n = next(_n)
    now = timezone.now()
    fields.setdefault("name", f"Partner site {n}")
    fields.setdefault("country_code", owner.country_code)
    fields.setdefault("party_id", owner.party_id)
    location = PartnerLocation.objects.create(
        tenant_id=owner.tenant_id,
        partner=owner,
        ocpi_id=f"LOC{n}",
        address=f"Street {n}",
        city="Berlin",
        country="DEU",
        latitude=Decimal(lat),
        longitude=Decimal(lon),
        time_zone="Europe/Berlin",
        last_updated=now,
        **fields,
    )
    for i in range(evses):
        evse = PartnerEvse.objects.create(
            location=location,
            uid=f"E{n}-{i}",
            evse_id=f"{location.country_code}*{location.party_id}*E{n}*{i}",
            status=status,
            last_updated=now,
        )
        PartnerConnector.objects.create(
            evse=evse,
            connector_id="1",
            standard=standard,
            format="CABLE",
            power_type=power_type,
            max_voltage=voltage,
            max_amperage=amperage,
            max_electric_power=max_electric_power,
            tariff_ids=list(tariff_ids or []),
            last_updated=now,
        )
    return location


def partner_tariff(owner: RoamingPartner, ocpi_id: str, elements: list[dict[str, Any]], **fields: Any) -> PartnerTariff:
    currency = fields.pop("currency", "EUR")
    data = {
        "country_code": owner.country_code,
        "party_id": owner.party_id,
        "id": ocpi_id,
        "currency": currency,
        "elements": json.loads(json.dumps(elements, default=float)),  # as received: JSON numbers
        "last_updated": "2026-12-01T00:00:00Z",
        **fields,
    }
    return PartnerTariff.objects.create(
        tenant_id=owner.tenant_id,
        partner=owner,
        country_code=owner.country_code,
        party_id=owner.party_id,
        ocpi_id=ocpi_id,
        currency=currency,
        data=data,
        last_updated=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
    )


# ENERGY 0.30/kWh, TIME 1.20/h, FLAT 0.50 (excl. VAT, as OCPI 2.2.1 prices are)
THREE_PARTS = [
    {
        "price_components": [
            {"type": "ENERGY", "price": 0.30, "vat": 20.0, "step_size": 1},
            {"type": "TIME", "price": 1.20, "vat": 20.0, "step_size": 60},
            {"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1},
        ]
    }
]


CDR_EXAMPLE = Path("/work/shared/specs/ocpi-2.2.1/examples/cdr_example.json")


def partner_cdr(owner: RoamingPartner, **fields: Any) -> PartnerCdr:
    """The official OCPI 2.2.1 CDR example (BE*BEC 12345: 1.973 h at 2.00/h, steps of 5 min: 4.00 excl. VAT) as the
    receivers slice would store it for `owner`; `data` overrides merged into the object, columns in `fields`."""
    data = json.loads(CDR_EXAMPLE.read_text(), parse_float=Decimal)
    data.update(fields.pop("data", {}))
    total = data["total_cost"]
    columns: dict[str, Any] = {
        "tenant_id": owner.tenant_id,
        "partner": owner,
        "country_code": data["country_code"],
        "party_id": data["party_id"],
        "ocpi_id": data["id"],
        "start_date_time": parse_datetime(data["start_date_time"]),
        "end_date_time": parse_datetime(data["end_date_time"]),
        "currency": data["currency"],
        "total_energy": Decimal(str(data["total_energy"])),
        "total_time": Decimal(str(data["total_time"])),
        "total_cost_excl_vat": Decimal(str(total["excl_vat"])),
        "total_cost_incl_vat": Decimal(str(total["incl_vat"])) if total.get("incl_vat") is not None else None,
        "credit": bool(data.get("credit", False)),
        "credit_reference_id": data.get("credit_reference_id", ""),
        "data": data,
        "last_updated": parse_datetime(data["last_updated"]),
    }
    columns.update(fields)
    return PartnerCdr.objects.create(**columns)
