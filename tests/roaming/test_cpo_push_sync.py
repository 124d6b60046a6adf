"""A partner gets everything we have when it registers (either direction) or is reinstated, and on the admin's or the
API's "full resync": our published locations and the tariffs it sees, through the push queue in batches. The tariffs
a partner sees are edited through the API and the admin (tenant-scoped), and each change is pushed (PUT of what it
now sees, DELETE of what it no longer sees). Over real HTTP with the partner simulator as the eMSP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from apps.roaming import tasks
from apps.roaming.models import PartnerStatus, PushState, RoamingPartner
from apps.roaming.ocpi import push
from apps.roaming.partner_sim import PartnerSimulator
from apps.stations import decommission
from apps.stations.models import Location
from apps.tariffs.models import Tariff
from apps.tenants.models import Role, Tenant
from tests.roaming.factories import partner_for
from tests.roaming.test_cpo_locations import assert_valid
from tests.roaming.test_cpo_push_network import admin_form, sent
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

MODULES = ["locations", "tariffs"]


@pytest.fixture
def emsp(ocpi_base: str) -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(
        country_code="NL", party_id="SIM", endpoint_ids=["credentials", "locations", "tariffs"]
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def network(tenant_a: Tenant, tenant_b: Tenant) -> dict[str, Any]:
    """Three published locations (one decommissioned), a private one, a public tariff, a tariff not on the network,
    and another tenant's location and tariff."""
    locations = [LocationFactory(tenant=tenant_a, ocpi_id=f"LOC-{n}") for n in (1, 2, 3)]
    for location in locations:
        evse = EvseFactory(charge_point=ChargePointFactory(tenant=tenant_a, location=location), connector_id=1)
        ConnectorFactory(evse=evse)
    decommission.location_decommission(location=locations[2])
    private = LocationFactory(tenant=tenant_a, ocpi_id="LOC-PRIVATE", publish=False)
    public = TariffFactory(tenant=tenant_a, ocpi_id="T-PUBLIC")
    TariffAssignmentFactory(tenant=tenant_a, tariff=public)
    other = TariffFactory(tenant=tenant_a, ocpi_id="T-OTHER")
    LocationFactory(tenant=tenant_b, ocpi_id="LOC-B")
    foreign = TariffFactory(tenant=tenant_b, ocpi_id="T-B")
    TariffAssignmentFactory(tenant=tenant_b, tariff=foreign)
    return {"locations": locations, "private": private, "public": public, "other": other, "foreign": foreign}


def push_all(partner: RoamingPartner) -> int:
    return int(tasks.push_partner.apply(args=(partner.pk,)).get())


def registered_by_them(ocpi_base: str, emsp: PartnerSimulator, tenant: Tenant) -> RoamingPartner:
    partner, token_a = partner_for(tenant, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=MODULES)
    assert emsp.register_with(f"{ocpi_base}/ocpi/versions", token_a)["status_code"] == 1000
    partner.refresh_from_db()
    return partner


def assert_full_copy(ocpi_base: str, emsp: PartnerSimulator, partner: RoamingPartner) -> None:
    """The partner holds exactly what our Sender GETs list (locations, tariffs), each object valid."""
    auth = {"Authorization": emsp.auth_header(emsp.client_token)}
    listed = requests.get(f"{ocpi_base}/ocpi/cpo/2.2.1/locations", headers=auth).json()["data"]
    tariffs = requests.get(f"{ocpi_base}/ocpi/cpo/2.2.1/tariffs", headers=auth).json()["data"]
    assert emsp.locations == {f"DE/ALP/{loc['id']}": loc for loc in listed}
    assert emsp.tariffs == {f"DE/ALP/{t['id']}": t for t in tariffs}
    for document in emsp.locations.values():
        assert_valid("mod_locations_location_object", document)
    for document in emsp.tariffs.values():
        assert_valid("mod_tariffs_tariff_object", document)


# --------------------------------------------------------------------------- full sync


def test_a_partner_that_registers_with_us_gets_our_locations_and_its_tariffs(
    ocpi_base: str, emsp: PartnerSimulator, tenant_a: Tenant, network: dict[str, Any]
) -> None:
    partner = registered_by_them(ocpi_base, emsp, tenant_a)

    assert push_all(partner) == 4

    assert [(m, p) for m, p, _ in sent(emsp)] == [("PUT", f"DE/ALP/LOC-{n}") for n in (1, 2, 3)]
    assert [(m, p) for m, p, _ in sent(emsp, "tariffs")] == [("PUT", "DE/ALP/T-PUBLIC")]
    assert_full_copy(ocpi_base, emsp, partner)


def test_a_partner_we_register_with_gets_everything_too(
    ocpi_base: str,
    emsp: PartnerSimulator,
    tenant_a: Tenant,
    network: dict[str, Any],
    client_for: Callable[..., APIClient],
) -> None:
    partner, _ = partner_for(
        tenant_a, country_code="NL", party_id="SIM", versions_url=emsp.versions_url, their_token=emsp.server_token,
        enabled_modules=MODULES,
    )  # fmt: skip
    client = client_for(tenant_a)
    assert client.post(f"/api/v1/roaming-partners/{partner.pk}/register/", {}, format="json").status_code == 200

    assert push_all(partner) == 4
    assert sorted(emsp.locations) == ["DE/ALP/LOC-1", "DE/ALP/LOC-2", "DE/ALP/LOC-3"]
    assert list(emsp.tariffs) == ["DE/ALP/T-PUBLIC"]
    # a rotation is not a new registration: nothing queued again
    assert client.post(f"/api/v1/roaming-partners/{partner.pk}/rotate/", {}, format="json").status_code == 200
    assert push_all(partner) == 0


def test_the_full_sync_goes_in_batches_and_coalesces_with_pending_changes(
    ocpi_base: str, emsp: PartnerSimulator, tenant_a: Tenant, network: dict[str, Any]
) -> None:
    partner = registered_by_them(ocpi_base, emsp, tenant_a)

    first = push.push_partner(partner_id=partner.pk, limit=2)
    rest = push.push_partner(partner_id=partner.pk, limit=2)

    assert (first.sent, first.more) == (2, True)
    assert (rest.sent, rest.more) == (2, True)
    assert push.push_partner(partner_id=partner.pk, limit=2).sent == 0
    assert PushState.objects.filter(partner=partner).count() == 4  # one row per object, however often queued


def test_a_reinstated_partner_gets_what_changed_while_suspended_and_the_admin_resyncs(
    ocpi_base: str,
    emsp: PartnerSimulator,
    tenant_a: Tenant,
    network: dict[str, Any],
    client_for: Callable[..., APIClient],
    make_staff: Callable[..., Any],
    client: Any,
) -> None:
    partner = registered_by_them(ocpi_base, emsp, tenant_a)
    push_all(partner)
    api = client_for(tenant_a)
    assert api.post(f"/api/v1/roaming-partners/{partner.pk}/suspend/", {}, format="json").status_code == 200
    location = network["locations"][0]
    assert (
        api.patch(f"/api/v1/locations/{location.pk}/", {"name": "Renamed while away"}, format="json").status_code == 200
    )
    assert push_all(partner) == 0  # suspended: nothing goes
    emsp.received.clear()

    assert api.post(f"/api/v1/roaming-partners/{partner.pk}/reinstate/", {}, format="json").status_code == 200
    assert push_all(partner) == 4
    assert emsp.locations["DE/ALP/LOC-1"]["name"] == "Renamed while away"
    assert_full_copy(ocpi_base, emsp, partner)

    # the admin's action queues it all again (and the API's resync)
    emsp.received.clear()
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))
    answer = client.post(
        "/admin/roaming/roamingpartner/", {"action": "full_resync", "_selected_action": [partner.pk]}, follow=True
    )
    assert "4 objects queued" in answer.content.decode()
    assert push_all(partner) == 4
    assert len(emsp.received) == 4
    assert api.post(f"/api/v1/roaming-partners/{partner.pk}/resync/", {}, format="json").json() == {"queued": 4}


def test_resync_of_a_partner_not_registered_is_a_409(
    tenant_a: Tenant, client_for: Callable[..., APIClient], network: dict[str, Any]
) -> None:
    partner, _ = partner_for(tenant_a, enabled_modules=MODULES)

    answer = client_for(tenant_a).post(f"/api/v1/roaming-partners/{partner.pk}/resync/", {}, format="json")

    assert answer.status_code == 409
    assert answer.json()["code"] == "not_registered"
    assert PushState.objects.count() == 0


# --------------------------------------------------------------------------- the tariffs a partner sees


def test_choosing_a_partners_tariffs_through_the_api_pushes_and_takes_back(
    ocpi_base: str,
    emsp: PartnerSimulator,
    tenant_a: Tenant,
    network: dict[str, Any],
    client_for: Callable[..., APIClient],
) -> None:
    partner = registered_by_them(ocpi_base, emsp, tenant_a)
    push_all(partner)
    api = client_for(tenant_a)
    url = f"/api/v1/roaming-partners/{partner.pk}/"
    other = network["other"]

    answer = api.patch(url, {"tariffs": [other.pk]}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["tariffs"] == [other.pk]
    push_all(partner)
    assert list(emsp.tariffs) == ["DE/ALP/T-OTHER"]
    assert api.patch(url, {"tariffs": []}, format="json").status_code == 200
    push_all(partner)

    assert [(m, p) for m, p, _ in sent(emsp, "tariffs")] == [
        ("PUT", "DE/ALP/T-PUBLIC"),  # the full sync at registration
        ("DELETE", "DE/ALP/T-PUBLIC"),  # no longer seen (its queue row is the older one: first)
        ("PUT", "DE/ALP/T-OTHER"),  # chosen
        ("PUT", "DE/ALP/T-PUBLIC"),  # back to the public tariffs
        ("DELETE", "DE/ALP/T-OTHER"),
    ]
    assert_full_copy(ocpi_base, emsp, partner)


@pytest.mark.parametrize("who", ["tenant_admin", "superuser"])
def test_another_tenants_tariff_is_a_400_and_changes_nothing(
    who: str,
    tenant_a: Tenant,
    network: dict[str, Any],
    client_for: Callable[..., APIClient],
    superuser: Any,
) -> None:
    partner, _ = partner_for(tenant_a, enabled_modules=MODULES)
    partner.tariffs.add(network["other"])
    if who == "superuser":
        api = APIClient()
        api.force_authenticate(superuser)
    else:
        api = client_for(tenant_a)

    answer = api.patch(f"/api/v1/roaming-partners/{partner.pk}/", {"tariffs": [network["foreign"].pk]}, format="json")
    created = api.post(
        "/api/v1/roaming-partners/",
        {
            "tenant": tenant_a.pk,
            "name": "X",
            "country_code": "BE",
            "party_id": "XXX",
            "tariffs": [network["foreign"].pk],
        },
        format="json",
    )

    assert answer.status_code == 400, answer.content
    assert "tariffs" in answer.json()["fields"]
    assert created.status_code == 400, created.content
    assert list(partner.tariffs.all()) == [network["other"]]
    assert not RoamingPartner.objects.filter(party_id="XXX").exists()


def test_admin_edits_a_partners_tariffs_scoped_to_its_tenant(
    ocpi_base: str,
    emsp: PartnerSimulator,
    tenant_a: Tenant,
    network: dict[str, Any],
    superuser: Any,
    client: Any,
) -> None:
    partner = registered_by_them(ocpi_base, emsp, tenant_a)
    push_all(partner)
    emsp.received.clear()
    superuser.is_staff = True
    superuser.save()
    client.force_login(superuser)
    change = f"/admin/roaming/roamingpartner/{partner.pk}/change/"

    form = admin_form(client.get(change))
    form["tariffs"] = [network["foreign"].pk]
    refused = client.post(change, form)
    assert refused.status_code == 200
    assert "belongs to another tenant" in refused.content.decode()
    assert list(partner.tariffs.all()) == []

    form["tariffs"] = [network["other"].pk]
    answer = client.post(change, form)
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert list(partner.tariffs.all()) == [network["other"]]
    push_all(partner)
    assert sorted((m, p) for m, p, _ in sent(emsp, "tariffs")) == [
        ("DELETE", "DE/ALP/T-PUBLIC"),
        ("PUT", "DE/ALP/T-OTHER"),
    ]
    partner.refresh_from_db()
    assert partner.status == PartnerStatus.REGISTERED
    assert Tariff.objects.filter(tenant=tenant_a).count() == 2
    assert Location.objects.filter(tenant=tenant_a).count() == 4
