"""Demo data for `make run`: idempotent, so running it again changes nothing.

Later features add their part here (stations, drivers, tariffs, sessions), each through its own services.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from apps.demo.customers_demo import seed_charger_tokens, seed_customers
from apps.demo.energy_demo import seed_alert_rules, seed_grid
from apps.demo.history_demo import seed_history_demo
from apps.demo.stations_demo import seed_stations
from apps.tenants import services as tenant_services
from apps.tenants.models import ApiKey, Membership, Role, Tenant, User

DEMO_PASSWORD = "demo-password"
SUPERUSER = ("admin", "admin")

TENANTS = [
    {
        "slug": "voltnet",
        "name": "Voltnet Mobility",
        "legal_name": "Voltnet Mobility GmbH",
        "address_line": "Energiestraße 12",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "vat_id": "DE312345678",
        "bank_name": "Berliner Sparkasse",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "currency": "EUR",
        "timezone": "Europe/Berlin",
        "default_vat_rate": Decimal("19.00"),
        "primary_colour": "#0B5FFF",
        "secondary_colour": "#0F172A",
        "sender_email": "billing@voltnet.example",
        "ocpi_country_code": "DE",
        "ocpi_party_id": "VLT",
        "oicp_operator_id": "DE*VLT",
        "oicp_provider_id": "DE-VLT",
    },
    {
        "slug": "fjord",
        "name": "Fjordlading",
        "legal_name": "Fjordlading AS",
        "address_line": "Bryggen 5",
        "postal_code": "5003",
        "city": "Bergen",
        "country": "NO",
        "vat_id": "NO923456789MVA",
        "bank_name": "DNB",
        "iban": "NO9386011117947",
        "bic": "DNBANOKKXXX",
        "currency": "NOK",
        "timezone": "Europe/Oslo",
        "default_vat_rate": Decimal("25.00"),
        "primary_colour": "#00875A",
        "secondary_colour": "#1F2937",
        "sender_email": "faktura@fjordlading.example",
        "ocpi_country_code": "NO",
        "ocpi_party_id": "FJL",
        "oicp_operator_id": "NO*FJL",
        "oicp_provider_id": "NO-FJL",
    },
    # the peer platform's tenant (`make run PEER=1`: a second instance of the platform on its own database, roaming
    # with Voltnet both ways); not seeded in the main instance
    {
        "slug": "nordlicht",
        "name": "Nordlicht Laden",
        "legal_name": "Nordlicht Laden B.V.",
        "address_line": "Keizersgracht 100",
        "postal_code": "1015 CV",
        "city": "Amsterdam",
        "country": "NL",
        "vat_id": "NL123456789B01",
        "bank_name": "ING Bank",
        "iban": "NL91ABNA0417164300",
        "bic": "INGBNL2AXXX",
        "currency": "EUR",
        "timezone": "Europe/Amsterdam",
        "default_vat_rate": Decimal("21.00"),
        "primary_colour": "#7C3AED",
        "secondary_colour": "#111827",
        "sender_email": "facturen@nordlicht.example",
        "ocpi_country_code": "NL",
        "ocpi_party_id": "NLT",
        "oicp_operator_id": "NL*NLT",
        "oicp_provider_id": "NL-NLT",
    },
]
MAIN_TENANTS = ("voltnet", "fjord")
PEER_TENANTS = ("nordlicht",)

ROLE_USERS = [("admin", Role.ADMIN), ("ops", Role.OPERATIONS), ("finance", Role.FINANCE), ("viewer", Role.READ_ONLY)]


@dataclass(frozen=True)
class DemoLogin:
    tenant: str
    username: str
    password: str
    role: str


@dataclass(frozen=True)
class DemoApiKey:
    tenant: str
    key: str


def demo_api_key(slug: str) -> tuple[str, str]:
    """A fixed, documented demo key per tenant (prefix, secret): demo data only, never in production."""
    return f"{slug[:8]}demo", f"demo-key-for-{slug}-not-secret"


@transaction.atomic
def seed_demo(slugs: Collection[str] = MAIN_TENANTS) -> tuple[list[DemoLogin], list[DemoApiKey]]:
    logins: list[DemoLogin] = []
    keys: list[DemoApiKey] = []
    if not User.objects.filter(username=SUPERUSER[0]).exists():
        User.objects.create_superuser(username=SUPERUSER[0], password=SUPERUSER[1], email="admin@evplatform.local")
    logins.append(DemoLogin("(all tenants)", SUPERUSER[0], SUPERUSER[1], "platform superuser"))

    for data in TENANTS:
        if data["slug"] not in slugs:
            continue
        fields = dict(data)
        tenant, _ = Tenant.objects.update_or_create(slug=fields.pop("slug"), defaults=fields)
        for suffix, role in ROLE_USERS:
            username = f"{tenant.slug}-{suffix}"
            if not Membership.objects.filter(tenant=tenant, user__username=username).exists():
                user = User.objects.filter(username=username).first() or tenant_services.staff_user_create(
                    username=username, password=DEMO_PASSWORD, email=f"{suffix}@{tenant.slug}.example"
                )
                tenant_services.membership_grant(user=user, tenant=tenant, role=role)
            logins.append(DemoLogin(tenant.slug, username, DEMO_PASSWORD, str(role.label)))
        prefix, secret = demo_api_key(tenant.slug)
        if not ApiKey.objects.filter(prefix=prefix).exists():
            tenant_services.api_key_create(
                tenant=tenant, name="Demo integration", scopes=["*"], prefix=prefix, secret=secret
            )
        keys.append(DemoApiKey(tenant.slug, f"evp_{prefix}_{secret}"))
        seed_customers(tenant)
        seed_stations(tenant)
        seed_charger_tokens(tenant)
        seed_grid(tenant)
        seed_alert_rules(tenant)
        seed_history_demo(tenant)
    return logins, keys
