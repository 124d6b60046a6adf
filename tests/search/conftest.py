"""Two tenants with look-alike data (the same people, cards and addresses in both), so that a result from the
wrong tenant cannot hide: every query of the relevance tests has a perfect match in the other tenant too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from apps.tenants.models import Tenant
from tests.billing.factories import issued_invoice
from tests.charging.factories import ChargingSessionFactory
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory
from tests.stations.factories import ChargePointFactory, EvseFactory, LocationFactory


@dataclass
class World:
    tenant: Tenant
    objects: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.objects[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


def build_world(tenant: Tenant, code: str) -> World:
    """`code` (ALP, BET) makes the globally unique charge point identities differ; everything else is alike."""
    location = LocationFactory(
        tenant=tenant,
        name="Ladepark Görlitzer Straße",
        address="Görlitzer Straße 12",
        postal_code="10997",
        city="Berlin",
        ocpi_id=f"{code}LOC0001",
    )
    other_location = LocationFactory(
        tenant=tenant, name="Parkhaus am Hauptbahnhof", address="Europaplatz 1", postal_code="10557", city="Berlin"
    )
    hub = ChargePointFactory(
        tenant=tenant,
        location=location,
        identity=f"{code}-HUB-0001",
        vendor="Alfen",
        model="Eve Pro",
        serial_number=f"SN-{code}-77881",
        charge_box_serial_number=f"CB-{code}-1",
    )
    hub_10 = ChargePointFactory(tenant=tenant, location=location, identity=f"{code}-HUB-00010", vendor="ABB")
    hub_2 = ChargePointFactory(tenant=tenant, location=other_location, identity=f"{code}-HUB-0002", vendor="ABB")
    evse = EvseFactory(tenant=tenant, charge_point=hub, evse_uid=f"DE*{code}*E0001*1")
    mueller = DriverFactory(
        tenant=tenant,
        first_name="Jürgen",
        last_name="Müller",
        email="juergen.mueller@example.com",
        city="Berlin",
    )
    schmidt = DriverFactory(tenant=tenant, first_name="Anna", last_name="Schmidt", email="anna@example.com")
    keller = DriverFactory(tenant=tenant, first_name="Mia", last_name="Keller", email="mia@kurier.example")
    fleet = BusinessCustomerFactory(
        tenant=tenant,
        name="Stadtwerke Görlitz",
        legal_name="Stadtwerke Görlitz AG",
        billing_email="fuhrpark@stadtwerke.example",
        vat_id="DE123456789",
        billing_city="Görlitz",
    )
    card = TokenFactory(
        tenant=tenant,
        uid="04AABBCCDD0001",
        visual_number="SCHMIDT",  # a card printed with a name: the exact identifier beats the driver's name
        contract_id="DE-VLT-C12345678",
        driver=mueller,
    )
    card_2 = TokenFactory(tenant=tenant, uid="04AABBCCDD0002", visual_number="VIS-0002", driver=schmidt)
    session = ChargingSessionFactory(
        tenant=tenant, charge_point=hub, evse=evse, id_tag=card.uid, token=card, driver=mueller
    )
    session.cdr_ocpi_id = f"{code}CDR000777"
    session.save(update_fields=["cdr_ocpi_id"])
    other_session = ChargingSessionFactory(tenant=tenant, charge_point=hub_2, id_tag=card_2.uid, token=card_2)
    invoice = issued_invoice(tenant, business_customer=fleet)
    return World(tenant, dict(locals()))


@pytest.fixture
def world_a(tenant_a: Tenant) -> World:
    return build_world(tenant_a, "ALP")


@pytest.fixture
def world_b(tenant_b: Tenant) -> World:
    return build_world(tenant_b, "BET")


@pytest.fixture
def worlds(world_a: World, world_b: World) -> tuple[World, World]:
    return world_a, world_b
