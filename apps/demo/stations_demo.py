"""Demo network of charge points (idempotent): one location per tenant, simulated chargers with two EVSEs, and a
depot charger that went quiet hours ago (so the charger-offline alert is open out of the box).

`make run` starts the simulator (Procfile `sim:`) with these ids, the password below, and one card per connector
(`DEMO_ID_TAG_TEMPLATE`, tokens seeded by `customers_demo.seed_charger_tokens`)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Connector, Evse, Location
from apps.tenants.models import Tenant

DEMO_CHARGER_PASSWORD = "demo-charger-password"  # demo data only: every simulated charger uses it
SITES = {
    "voltnet": ("Voltnet Hub Mitte", "Invalidenstraße 50", "10115", "Berlin", "DE", "52.530600", "13.384600"),
    "fjord": ("Fjordlading Bryggen", "Bryggen 5", "5003", "Bergen", "NO", "60.397100", "5.324500"),
    # the peer platform's site, a few hundred metres from Voltnet's: its drivers roam on each other's chargers
    "nordlicht": ("Nordlicht Potsdamer Platz", "Potsdamer Platz 1", "10785", "Berlin", "DE", "52.509600", "13.376000"),
}
CHARGERS_PER_TENANT = 3
CONNECTORS_PER_CHARGER = 2
# the simulator's --id-tag-template in the Procfile: a card per connector, so no start is refused ConcurrentTx
DEMO_ID_TAG_TEMPLATE = "DEMO-{identity}-{connector}"
# a second site per tenant with one charger that is not simulated: last seen OFFLINE_SINCE before the first seed
DEPOTS = {
    "voltnet": ("Voltnet Depot Spandau", "Freiheit 6", "13597", "Berlin", "DE", "52.537000", "13.205800"),
    "fjord": ("Fjordlading Laksevåg", "Damsgårdsveien 170", "5162", "Bergen", "NO", "60.386500", "5.298100"),
}
OFFLINE_SINCE = dt.timedelta(hours=3)


def demo_id_tag(identity: str, connector: int) -> str:
    return DEMO_ID_TAG_TEMPLATE.format(identity=identity, connector=connector)


def depot_charger_id(tenant: Tenant) -> str:
    party = tenant.ocpi_party_id or tenant.slug[:3].upper()
    return f"{party}-DEPOT-01"


def demo_charger_ids(tenant: Tenant) -> list[str]:
    party = tenant.ocpi_party_id or tenant.slug[:3].upper()
    return [f"{party}-SIM-{n:02d}" for n in range(1, CHARGERS_PER_TENANT + 1)]


def seed_stations(tenant: Tenant) -> list[str]:
    site = SITES.get(tenant.slug)
    if site is None:
        return []
    location = _location(tenant, site)
    ids = demo_charger_ids(tenant)
    operator = f"{tenant.ocpi_country_code or 'DE'}*{tenant.ocpi_party_id or 'XXX'}"
    for number, identity in enumerate(ids, start=1):
        if ChargePoint.objects.filter(identity=identity).exists():
            continue
        dc = number == CHARGERS_PER_TENANT
        charge_point, _ = station_services.charge_point_register(
            tenant=tenant,
            identity=identity,
            location=location,
            password=DEMO_CHARGER_PASSWORD,
            heartbeat_interval=60,
            max_power_w=150_000 if dc else 22_000,
        )
        for connector_id in range(1, CONNECTORS_PER_CHARGER + 1):
            evse = station_services.evse_create(
                charge_point=charge_point,
                connector_id=connector_id,
                evse_uid=f"{operator}*E{number:04d}*{connector_id}",
            )
            station_services.connector_create(
                evse=evse,
                standard=Connector.Standard.IEC_62196_T2_COMBO if dc else Connector.Standard.IEC_62196_T2,
                format=Connector.Format.CABLE if dc else Connector.Format.SOCKET,
                power_type=Connector.PowerType.DC if dc else Connector.PowerType.AC_3_PHASE,
                max_voltage=920 if dc else 400,
                max_amperage=200 if dc else 32,
                max_electric_power=150_000 if dc else 22_000,
            )
    assert Evse.objects.filter(charge_point__identity__in=ids).count() == CONNECTORS_PER_CHARGER * len(ids)
    _seed_depot(tenant, operator)
    return ids


def _location(tenant: Tenant, site: tuple[str, ...]) -> Location:
    name, address, postal_code, city, country, lat, lon = site
    location, _ = Location.objects.get_or_create(
        tenant=tenant,
        name=name,
        defaults={
            "address": address,
            "postal_code": postal_code,
            "city": city,
            "country": country,
            "latitude": Decimal(lat),
            "longitude": Decimal(lon),
            "timezone": tenant.timezone,
            "parking_type": Location.ParkingType.PARKING_LOT,
        },
    )
    return location


def _seed_depot(tenant: Tenant, operator: str) -> None:
    """A real charger (booted once, with its connectors) that lost its connection: the demo's open alert."""
    site = DEPOTS.get(tenant.slug)
    identity = depot_charger_id(tenant)
    if site is None or ChargePoint.objects.filter(identity=identity).exists():
        return
    charge_point, _ = station_services.charge_point_register(
        tenant=tenant,
        identity=identity,
        location=_location(tenant, site),
        password=DEMO_CHARGER_PASSWORD,
        heartbeat_interval=300,
        max_power_w=22_000,
        vendor="ABB",
        model="Terra AC W22",
        firmware_version="1.8.21",
        last_seen_at=timezone.now() - OFFLINE_SINCE,
        online=False,
    )
    evse = station_services.evse_create(charge_point=charge_point, connector_id=1, evse_uid=f"{operator}*E0901*1")
    station_services.connector_create(
        evse=evse,
        standard=Connector.Standard.IEC_62196_T2,
        format=Connector.Format.SOCKET,
        power_type=Connector.PowerType.AC_3_PHASE,
        max_voltage=400,
        max_amperage=32,
        max_electric_power=22_000,
    )
