"""Demo drivers, fleets with contracts (one with a 30-minute session limit), tokens and vehicles, and one card per
connector of the simulated chargers (`seed_charger_tokens`).

Idempotent: every row is looked up by its natural key first and only created when missing, through the
customers services.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from decimal import Decimal
from typing import Any

from apps.customers import services as customer_services
from apps.customers.models import (
    BusinessCustomer,
    ConnectorStandard,
    Contract,
    Driver,
    LimitAction,
    PaymentMethod,
    ProfileType,
    Token,
    TokenType,
    Vehicle,
    WhitelistType,
)
from apps.demo.stations_demo import CONNECTORS_PER_CHARGER, demo_charger_ids, demo_id_tag
from apps.tenants.models import Tenant

T2 = ConnectorStandard.IEC_62196_T2.value
CCS2 = ConnectorStandard.IEC_62196_T2_COMBO.value
CONTRACT_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

FLEETS: list[dict[str, Any]] = [
    {
        "name": "Stadtwerke Fuhrpark",
        "legal_name": "Stadtwerke Fuhrpark GmbH",
        "vat_id": "DE298765432",
        "billing_email": "fuhrpark@stadtwerke.example",
        "billing_address_line": "Am Kraftwerk 3",
        "billing_postal_code": "10317",
        "billing_city": "Berlin",
        "billing_country": "DE",
        "payment_method": PaymentMethod.SEPA_DIRECT_DEBIT,
    },
    {
        "name": "Kurier Express",
        "legal_name": "Kurier Express KG",
        "vat_id": "DE276543210",
        "billing_email": "buchhaltung@kurier.example",
        "billing_address_line": "Logistikring 8",
        "billing_postal_code": "12529",
        "billing_city": "Schönefeld",
        "billing_country": "DE",
        "payment_method": PaymentMethod.INVOICE,
    },
]

CONTRACTS: list[dict[str, Any]] = [
    {
        "fleet": "Stadtwerke Fuhrpark",
        "number": "SWF-2025-01",
        "valid_from": CONTRACT_START,
        "priority": 10,
        "max_session_duration": dt.timedelta(minutes=30),
        "limit_action": LimitAction.STOP,
    },
    {
        "fleet": "Kurier Express",
        "number": "KEX-2025-01",
        "valid_from": CONTRACT_START,
        "priority": 20,
        "max_session_energy_wh": 20_000,
        "limit_action": LimitAction.ZERO_CURRENT,
        "time_windows": [{"days_of_week": [1, 2, 3, 4, 5, 6], "start_time": "05:00", "end_time": "23:00"}],
    },
]

DRIVERS: list[dict[str, Any]] = [
    {"first_name": "Anna", "last_name": "Schmidt", "email": "anna.schmidt@example.com", "language": "de"},
    {"first_name": "Jonas", "last_name": "Weber", "email": "jonas.weber@example.com", "language": "de"},
    {
        "first_name": "Lars",
        "last_name": "Berg",
        "email": "lars.berg@stadtwerke.example",
        "language": "de",
        "fleet": "Stadtwerke Fuhrpark",
    },
    {
        "first_name": "Mia",
        "last_name": "Keller",
        "email": "mia.keller@kurier.example",
        "language": "en",
        "fleet": "Kurier Express",
    },
]

DEMO_CARD_OWNER = "voltnet"  # the tenant whose cards the uids below are (others: `_card_uid`)
TOKENS: list[dict[str, Any]] = [
    # Anna's card and key fob work as one (group_id = OCPP parentIdTag)
    {"uid": "04A1B2C3D4E5F6", "driver": "anna.schmidt@example.com", "visual_number": "VLT-0001-A", "group_id": "ANNA"},
    {"uid": "04A1B2C3D4E5F7", "driver": "anna.schmidt@example.com", "visual_number": "VLT-0001-B", "group_id": "ANNA"},
    {
        "uid": "app-7f3a2c9e-jonas",
        "type": TokenType.APP_USER,
        "driver": "jonas.weber@example.com",
        "whitelist": WhitelistType.NEVER,
        "default_profile_type": ProfileType.GREEN,
    },
    {"uid": "04C0FFEE000001", "driver": "lars.berg@stadtwerke.example", "contract": "SWF-2025-01"},
    {"uid": "04C0FFEE000002", "driver": "mia.keller@kurier.example", "contract": "KEX-2025-01"},
    {"uid": "04DEADBEEF0001", "driver": "jonas.weber@example.com", "blocked": True, "visual_number": "VLT-0002 (lost)"},
]

VEHICLES: list[dict[str, Any]] = [
    {
        "licence_plate": "B-VL 3058",
        "driver": "anna.schmidt@example.com",
        "make": "Volkswagen",
        "model": "ID.3 Pro",
        "battery_kwh": Decimal("58.0"),
        "ac_phases": 3,
        "ac_max_current_a": 16,
        "dc_max_power_w": 120_000,
        "connector_types": [T2, CCS2],
    },
    {
        "licence_plate": "B-SW 5200",
        "driver": "lars.berg@stadtwerke.example",
        "fleet": "Stadtwerke Fuhrpark",
        "make": "Renault",
        "model": "Zoe R135",
        "battery_kwh": Decimal("52.0"),
        "ac_phases": 3,
        "ac_max_current_a": 32,
        "dc_max_power_w": 50_000,
        "connector_types": [T2, CCS2],
    },
    {
        "licence_plate": "LDS-KX 303",
        "driver": "mia.keller@kurier.example",
        "fleet": "Kurier Express",
        "make": "Tesla",
        "model": "Model 3 RWD",
        "battery_kwh": Decimal("57.5"),
        "ac_phases": 3,
        "ac_max_current_a": 16,
        "dc_max_power_w": 170_000,
        "connector_types": [T2, CCS2],
    },
]


def seed_customers(tenant: Tenant) -> None:
    fleets = {}
    for data in FLEETS:
        fleet = BusinessCustomer.objects.filter(tenant=tenant, name=data["name"]).first()
        fleets[data["name"]] = fleet or customer_services.business_customer_create(tenant=tenant, **data)

    contracts = {}
    for data in CONTRACTS:
        fields = dict(data)
        fleet = fleets[fields.pop("fleet")]
        contract = Contract.objects.filter(tenant=tenant, number=fields["number"]).first()
        contracts[fields["number"]] = contract or customer_services.contract_create(
            tenant=tenant, business_customer=fleet, **fields
        )

    drivers = {}
    for data in DRIVERS:
        fields = dict(data)
        fleet_name = fields.pop("fleet", None)
        driver = Driver.objects.filter(tenant=tenant, email=fields["email"]).first()
        drivers[fields["email"]] = driver or customer_services.driver_create(
            tenant=tenant, business_customer=fleets[fleet_name] if fleet_name else None, **fields
        )

    for data in TOKENS:
        fields = dict(data)
        fields["uid"] = _card_uid(tenant, fields["uid"])
        if Token.objects.filter(tenant=tenant, uid=fields["uid"]).exists():
            continue
        driver = drivers[fields.pop("driver")]
        contract_number = fields.pop("contract", None)
        customer_services.token_create(
            tenant=tenant,
            driver=driver,
            business_contract=contracts[contract_number] if contract_number else None,
            contract_id=_emaid(tenant, fields["uid"]),
            issuer=tenant.name[:64],
            **fields,
        )

    for data in VEHICLES:
        fields = dict(data)
        if Vehicle.objects.filter(tenant=tenant, licence_plate=fields["licence_plate"]).exists():
            continue
        fleet_name = fields.pop("fleet", None)
        customer_services.vehicle_create(
            tenant=tenant,
            driver=drivers[fields.pop("driver")],
            business_customer=fleets[fleet_name] if fleet_name else None,
            **fields,
        )


# who charges at the simulated chargers, in turn per connector: never a token whose contract has a time window
# (Kurier Express charges 05:00-23:00 Monday to Saturday only: its starts at night would be refused)
CHARGER_DRIVERS = ("anna.schmidt@example.com", "jonas.weber@example.com", "lars.berg@stadtwerke.example")


def seed_charger_tokens(tenant: Tenant) -> list[str]:
    """A card per connector of each simulated charger (uid = the simulator's `--id-tag-template`): a tag charges on
    one connector at a time (OCPP ConcurrentTx), so shared tags would have every second start refused."""
    drivers = {d.email: d for d in Driver.objects.filter(tenant=tenant, email__in=CHARGER_DRIVERS)}
    uids = []
    turn = 0
    for identity in demo_charger_ids(tenant):
        for connector in range(1, CONNECTORS_PER_CHARGER + 1):
            uid = demo_id_tag(identity, connector)
            uids.append(uid)
            driver = drivers[CHARGER_DRIVERS[turn % len(CHARGER_DRIVERS)]]
            turn += 1
            if Token.objects.filter(tenant=tenant, uid=uid).exists():
                continue
            fleet = driver.business_customer
            customer_services.token_create(
                tenant=tenant,
                driver=driver,
                business_contract=fleet.contracts.order_by("pk").first() if fleet is not None else None,
                uid=uid,
                visual_number=f"{identity} #{connector}",
                contract_id=_emaid(tenant, uid),
                issuer=tenant.name[:64],
            )
    return uids


def _card_uid(tenant: Tenant, uid: str) -> str:
    """The list's uids are Voltnet's cards; another demo tenant's cards are its own (an RFID's byte after 04 says
    whose, an app user's id has the tenant's hex): tenants that roam with each other (`make run PEER=1`,
    Hubject) must not push cards with the uid of one the other issued itself, which OCPI refuses (2001), as a real
    card's uid is its own."""
    if tenant.slug == DEMO_CARD_OWNER:
        return uid
    if not re.fullmatch(r"[0-9A-F]{14}", uid):  # an app user's id (app-<8 hex>-name): the tenant's hex, same length
        return re.sub(r"^app-[0-9a-f]{8}", f"app-{zlib.crc32(tenant.slug.encode()):08x}", uid)
    issuer = zlib.crc32(tenant.slug.encode()) & 0xFF
    return f"{uid[:2]}{issuer:02X}{uid[4:]}"


def _emaid(tenant: Tenant, uid: str) -> str:
    """A stable, readable eMAID per demo token (no randomness, so re-running changes nothing), in ISO 15118-1 form
    with a final check character, so that Hubject takes it as an EvcoID (the demo's character is a digit sum, not
    ISO's check-digit algorithm)."""
    digits = sum((index + 1) * ord(char) for index, char in enumerate(uid)) % 10**8
    check = sum(int(d) for d in f"{digits:08d}") % 10
    return f"{tenant.ocpi_country_code or 'DE'}-{tenant.ocpi_party_id or 'XXX'}-C{digits:08d}-{check}"
