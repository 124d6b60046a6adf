"""The tariffs and cdrs Sender interfaces over real HTTP (mod_tariffs.asciidoc, mod_cdrs.asciidoc): what a partner
sees (its tariffs or the tenant's public ones; the CDRs of its own drivers only), in the spec's form, amounts equal
to our stored CDR's."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.roaming.models import RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.sessions import services as session_services
from apps.sessions.models import Cdr, ChargingSession
from apps.tenants.models import Tenant
from tests.charging.test_cdr import ELEMENTS
from tests.customers.factories import TokenFactory
from tests.roaming.factories import partner_for
from tests.roaming.test_cpo_locations import assert_valid
from tests.roaming.test_credentials import assert_envelope
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory


@pytest.fixture
def registered(ocpi_base: str, sim: PartnerSimulator, tenant_a: Tenant) -> tuple[RoamingPartner, PartnerSimulator]:
    partner, token_a = partner_for(
        tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["locations", "tariffs", "cdrs"]
    )
    answer = sim.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    partner.refresh_from_db()
    return partner, sim


def _completed_cdr(tenant: Tenant, uid: str, *, party: str = "") -> Cdr:
    """A session started and stopped through the sessions services (priced, its CDR written), of `party`'s driver."""
    cp = ChargePointFactory(tenant=tenant)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1), max_electric_power=22_000)
    if not TariffAssignmentFactory._meta.model.objects.filter(tenant=tenant).exists():
        TariffAssignmentFactory(tenant=tenant, tariff=TariffFactory(tenant=tenant, elements=ELEMENTS))
    TokenFactory(tenant=tenant, uid=uid)
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    session, info = session_services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag=uid, meter_start=1_000, timestamp=start
    )
    assert info.status == "Accepted"
    if party:
        ChargingSession.objects.filter(pk=session.pk).update(roaming_partner=party)
    session_services.session_stop(
        charge_point_id=cp.pk,
        transaction_id=session.pk,
        meter_stop=11_000,
        timestamp=start + dt.timedelta(hours=1),
        reason="Local",
    )
    return Cdr.objects.get(session=session)


def exact(response: Any) -> dict[str, Any]:
    """The body with JSON numbers read as Decimal (to compare amounts digit for digit)."""
    return json.loads(response.content, parse_float=Decimal)  # type: ignore[no-any-return]


def test_version_details_list_tariffs_and_cdrs_as_sender(registered: tuple[RoamingPartner, PartnerSimulator]) -> None:
    _, sim = registered

    roles = {e["identifier"]: e["role"] for e in sim.peer_endpoints}

    assert roles == {"credentials": "SENDER", "locations": "SENDER", "tariffs": "SENDER", "cdrs": "SENDER"}


def test_a_partner_sees_the_public_tariffs_or_the_ones_chosen_for_it(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    partner, sim = registered
    public = TariffFactory(tenant=tenant_a, ocpi_id="PUBLIC", elements=ELEMENTS, tariff_alt_text=[])
    TariffAssignmentFactory(tenant=tenant_a, tariff=public)
    special = TariffFactory(tenant=tenant_a, ocpi_id="SPECIAL", elements=ELEMENTS)
    other = TariffFactory(tenant=tenant_b, ocpi_id="OTHER", elements=ELEMENTS)
    TariffAssignmentFactory(tenant=tenant_b, tariff=other)
    url = sim.peer_endpoint("tariffs")

    before = assert_envelope(sim.call("GET", url), 200, 1000)
    partner.tariffs.set([special])
    after = sim.call("GET", url)

    assert [t["id"] for t in before["data"]] == ["PUBLIC"]
    body = exact(after)
    assert [t["id"] for t in body["data"]] == ["SPECIAL"]
    assert after.headers["X-Total-Count"] == "1"
    tariff = body["data"][0]
    assert_valid("mod_tariffs_tariff_object", json.loads(after.content)["data"][0])
    assert (tariff["country_code"], tariff["party_id"]) == ("DE", "ALP")
    components = tariff["elements"][0]["price_components"]
    assert [(c["type"], c["price"], c["step_size"]) for c in components] == [
        ("ENERGY", Decimal("0.3900"), 1),
        ("TIME", Decimal("1.20"), 60),
        ("FLAT", Decimal("0.50"), 1),
    ]


def test_cdrs_of_the_partners_drivers_with_our_total(
    registered: tuple[RoamingPartner, PartnerSimulator], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    partner, sim = registered
    theirs = _completed_cdr(tenant_a, "THEIRS-1", party=partner.party)
    _completed_cdr(tenant_a, "OURS-1")  # our own driver's: not theirs to see
    _completed_cdr(tenant_b, "ELSEWHERE-1", party=partner.party)  # another tenant's network

    response = sim.call("GET", sim.peer_endpoint("cdrs"))

    assert_envelope(response, 200, 1000)
    plain = json.loads(response.content)["data"]
    assert len(plain) == 1
    assert_valid("mod_cdrs_cdr_object", plain[0])
    cdr = exact(response)["data"][0]
    stored = Cdr.objects.get(pk=theirs.pk)
    assert cdr["id"] == stored.ocpi_id
    assert cdr["total_cost"] == stored.total_cost
    assert cdr["total_cost"]["excl_vat"] > 0
    assert cdr["total_energy"] == stored.total_energy == Decimal(10)
    assert cdr["cdr_location"]["country"] == "DEU"
    assert cdr["session_id"] == str(stored.session_id)
    assert response.headers["X-Total-Count"] == "1"
