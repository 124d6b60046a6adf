"""Every edit of the network and of tariffs reaches the partners receiving them, whatever the way in: the REST API's
create/update/delete, the admin's forms, inlines and actions, the decommission services. Over real HTTP: the partner
simulator is the receiver; the objects it gets are checked against the spec's field rules (ocpi_rules) and equal
what our Sender GET answers for the same object.

The push task runs in this process (`apply`); tests/roaming/test_cpo_push_worker.py runs it in a real worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from apps.roaming import tasks
from apps.roaming.models import PushState, RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.stations.models import ChargePoint, Connector, Evse, Location
from apps.tariffs.models import Tariff, TariffAssignment
from apps.tenants.models import Role, Tenant
from tests.roaming.factories import partner_for
from tests.roaming.test_cpo_locations import assert_valid
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

ELEMENTS = [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": 19.0, "step_size": 1}]}]


@pytest.fixture
def emsp(ocpi_base: str) -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(
        country_code="NL", party_id="SIM", endpoint_ids=["credentials", "locations", "tariffs"]
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, emsp: PartnerSimulator, tenant_a: Tenant) -> RoamingPartner:
    row, token_a = partner_for(
        tenant_a, name="Sim eMSP", country_code="NL", party_id="SIM", enabled_modules=["locations", "tariffs"]
    )
    answer = emsp.register_with(f"{ocpi_base}/ocpi/versions", token_a)
    assert answer["status_code"] == 1000, answer
    row.refresh_from_db()
    emsp.received.clear()
    return row


@pytest.fixture
def api(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> APIClient:
    return client_for(tenant_a)


@pytest.fixture
def admin_client(tenant_a: Tenant, make_staff: Callable[..., Any], client: Any) -> Any:
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))
    return client


def _form_values(form: Any, data: dict[str, Any]) -> None:
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[form.add_prefix(name)] = "on" if value is True else value


def admin_form(page: Any) -> dict[str, Any]:
    """What the admin's change page would post unchanged: the form's and each inline formset's current values."""
    data: dict[str, Any] = {}
    _form_values(page.context["adminform"].form, data)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        _form_values(formset.management_form, data)
        for form in formset.forms:
            _form_values(form, data)
    return data


def push(partner: RoamingPartner) -> int:
    return int(tasks.push_partner.apply(args=(partner.pk,)).get())


def sent(sim: PartnerSimulator, module: str = "locations") -> list[tuple[str, str, Any]]:
    """(method, path below the module's receiver, body) of what the partner received, in order."""
    prefix = f"/ocpi/emsp/2.2.1/{module}/"
    return [(r.method, r.path[len(prefix) :], r.body) for r in sim.received if r.path.startswith(prefix)]


def our_get(ocpi_base: str, sim: PartnerSimulator, path: str) -> Any:
    """What our Sender interface answers the partner for the same object."""
    response = requests.get(
        f"{ocpi_base}/ocpi/cpo/2.2.1/locations/{path}", headers={"Authorization": sim.auth_header(sim.client_token)}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture
def site(tenant_a: Tenant) -> tuple[Location, ChargePoint, Evse]:
    location = LocationFactory(tenant=tenant_a, ocpi_id="LOC-1")
    charge_point = ChargePointFactory(tenant=tenant_a, location=location, identity="CP-NET-1")
    evse = EvseFactory(charge_point=charge_point, connector_id=1, evse_uid="DE*ALP*E1*1")
    ConnectorFactory(evse=evse)
    return location, charge_point, evse


# --------------------------------------------------------------------------- locations: API


def test_a_location_created_and_edited_through_the_api_is_put_whole(
    ocpi_base: str, partner: RoamingPartner, emsp: PartnerSimulator, api: APIClient
) -> None:
    body = {
        "name": "Marktplatz", "ocpi_id": "LOC-API", "address": "Marktplatz 1", "postal_code": "10117",
        "city": "Berlin", "country": "DE", "latitude": "52.5", "longitude": "13.4", "timezone": "Europe/Berlin",
    }  # fmt: skip
    created = api.post("/api/v1/locations/", body, format="json")
    assert created.status_code == 201, created.content
    assert push(partner) == 1

    [(method, path, document)] = sent(emsp)
    assert (method, path) == ("PUT", "DE/ALP/LOC-API")
    assert_valid("mod_locations_location_object", document)
    assert document == our_get(ocpi_base, emsp, "LOC-API")

    assert (
        api.patch(f"/api/v1/locations/{created.json()['id']}/", {"name": "Am Markt"}, format="json").status_code == 200
    )
    assert push(partner) == 1
    assert emsp.locations["DE/ALP/LOC-API"]["name"] == "Am Markt"
    assert emsp.locations["DE/ALP/LOC-API"] == our_get(ocpi_base, emsp, "LOC-API")


def test_publish_toggled_off_is_told_to_a_partner_that_had_it_and_never_leaks_a_private_location(
    partner: RoamingPartner, emsp: PartnerSimulator, api: APIClient, site: tuple[Location, ChargePoint, Evse]
) -> None:
    location, _, _ = site
    private = api.post(
        "/api/v1/locations/",
        {"name": "Depot", "address": "Hof 2", "city": "Berlin", "latitude": "52.5", "longitude": "13.4",
         "publish": False},
        format="json",
    )  # fmt: skip
    assert private.status_code == 201, private.content
    assert api.patch(f"/api/v1/locations/{location.pk}/", {"name": "Renamed"}, format="json").status_code == 200
    push(partner)
    assert api.patch(f"/api/v1/locations/{location.pk}/", {"publish": False}, format="json").status_code == 200
    push(partner)

    assert [(m, p, b["publish"]) for m, p, b in sent(emsp)] == [
        ("PUT", "DE/ALP/LOC-1", True),
        ("PUT", "DE/ALP/LOC-1", False),
    ]  # the depot, never published, was not sent
    state = PushState.objects.get(partner=partner, object_key=f"location:{private.json()['id']}")
    assert state.pushed_version == state.version  # settled without a request


def test_location_decommissioned_through_the_api_puts_every_evse_removed(
    partner: RoamingPartner, emsp: PartnerSimulator, api: APIClient, site: tuple[Location, ChargePoint, Evse]
) -> None:
    location, _, evse = site

    assert api.post(f"/api/v1/locations/{location.pk}/decommission/", {}, format="json").status_code == 200
    push(partner)
    assert api.post(f"/api/v1/locations/{location.pk}/decommission/", {}, format="json").status_code == 200
    push(partner)  # idempotent: nothing new

    [(method, path, document)] = sent(emsp)
    assert (method, path) == ("PUT", "DE/ALP/LOC-1")
    assert_valid("mod_locations_location_object", document)
    assert [(e["uid"], e["status"], "evse_id" in e) for e in document["evses"]] == [(str(evse.pk), "REMOVED", False)]


def test_a_charger_moved_to_another_location_puts_both(
    ocpi_base: str,
    partner: RoamingPartner,
    emsp: PartnerSimulator,
    api: APIClient,
    site: tuple[Location, ChargePoint, Evse],
    tenant_a: Tenant,
) -> None:
    _old, charge_point, evse = site
    new = LocationFactory(tenant=tenant_a, ocpi_id="LOC-2")

    answer = api.patch(f"/api/v1/charge-points/{charge_point.pk}/", {"location": new.pk}, format="json")
    assert answer.status_code == 200, answer.content
    assert push(partner) == 2

    by_path = {path: document for _, path, document in sent(emsp)}
    assert by_path["DE/ALP/LOC-1"]["evses"] == []
    assert [e["uid"] for e in by_path["DE/ALP/LOC-2"]["evses"]] == [str(evse.pk)]
    assert by_path["DE/ALP/LOC-2"] == our_get(ocpi_base, emsp, "LOC-2")


# --------------------------------------------------------------------------- EVSEs and connectors: API


def test_evse_and_connector_edits_through_the_api_put_the_evse_and_decommission_patches_removed(
    ocpi_base: str,
    partner: RoamingPartner,
    emsp: PartnerSimulator,
    api: APIClient,
    site: tuple[Location, ChargePoint, Evse],
) -> None:
    _, charge_point, first = site

    new_evse = api.post(
        "/api/v1/evses/", {"charge_point": charge_point.pk, "connector_id": 2, "evse_uid": "DE*ALP*E1*2"}, format="json"
    )
    assert new_evse.status_code == 201, new_evse.content
    evse_pk = new_evse.json()["id"]
    push(partner)
    plug = api.post(
        "/api/v1/connectors/",
        {"evse": evse_pk, "standard": "IEC_62196_T2_COMBO", "format": "CABLE", "power_type": "DC",
         "max_voltage": 920, "max_amperage": 200, "max_electric_power": 150000},
        format="json",
    )  # fmt: skip
    assert plug.status_code == 201, plug.content
    push(partner)
    assert (
        api.patch(f"/api/v1/connectors/{plug.json()['id']}/", {"max_amperage": 250}, format="json").status_code == 200
    )
    push(partner)
    assert api.patch(f"/api/v1/evses/{evse_pk}/", {"evse_uid": "DE*ALP*E1*2B"}, format="json").status_code == 200
    push(partner)
    as_listed = our_get(ocpi_base, emsp, f"LOC-1/{evse_pk}")
    old_plug = Connector.objects.get(evse=first)
    assert api.delete(f"/api/v1/connectors/{old_plug.pk}/").status_code == 204
    push(partner)
    assert api.post(f"/api/v1/evses/{evse_pk}/decommission/", {}, format="json").status_code == 200
    push(partner)

    received = sent(emsp)
    assert [(m, p) for m, p, _ in received] == [
        ("PUT", f"DE/ALP/LOC-1/{evse_pk}"),  # the new EVSE (the default plug until one is described)
        ("PUT", f"DE/ALP/LOC-1/{evse_pk}"),  # its connector added
        ("PUT", f"DE/ALP/LOC-1/{evse_pk}"),  # changed
        ("PUT", f"DE/ALP/LOC-1/{evse_pk}"),  # the EVSE's own field
        ("PUT", f"DE/ALP/LOC-1/{first.pk}"),  # the other EVSE's connector removed
        ("PATCH", f"DE/ALP/LOC-1/{evse_pk}"),  # decommissioned: status REMOVED
    ]
    for method, _, document in received:
        if method == "PUT":
            assert_valid("mod_locations_evse_object", document)
    assert received[2][2]["connectors"][0]["max_amperage"] == 250
    assert received[3][2]["evse_id"] == "DE*ALP*E1*2B"
    assert received[3][2] == as_listed
    assert set(received[5][2]) == {"status", "last_updated"}
    assert received[5][2]["status"] == "REMOVED"
    stored = {e["uid"]: e for e in emsp.locations["DE/ALP/LOC-1"]["evses"]}
    assert stored[str(evse_pk)]["status"] == "REMOVED"


def test_changes_go_in_order_of_first_change_each_with_its_latest_state(
    partner: RoamingPartner, emsp: PartnerSimulator, api: APIClient, site: tuple[Location, ChargePoint, Evse]
) -> None:
    location, _, evse = site
    for name in ("One", "Two"):
        api.patch(f"/api/v1/locations/{location.pk}/", {"name": name}, format="json")
    api.patch(f"/api/v1/evses/{evse.pk}/", {"evse_uid": "DE*ALP*E1*X"}, format="json")
    api.patch(f"/api/v1/locations/{location.pk}/", {"name": "Three"}, format="json")

    assert push(partner) == 2
    assert [(m, p) for m, p, _ in sent(emsp)] == [("PUT", "DE/ALP/LOC-1"), ("PUT", f"DE/ALP/LOC-1/{evse.pk}")]
    assert sent(emsp)[0][2]["name"] == "Three"


def test_other_tenants_and_partners_without_the_module_get_nothing(
    partner: RoamingPartner,
    emsp: PartnerSimulator,
    tenant_b: Tenant,
    client_for: Callable[..., APIClient],
    site: tuple[Location, ChargePoint, Evse],
) -> None:
    other = LocationFactory(tenant=tenant_b)
    assert client_for(tenant_b).patch(f"/api/v1/locations/{other.pk}/", {"name": "B"}, format="json").status_code == 200
    RoamingPartner.objects.filter(pk=partner.pk).update(enabled_modules=["tariffs"])
    location, _, _ = site
    client_for(partner.tenant).patch(f"/api/v1/locations/{location.pk}/", {"name": "A"}, format="json")

    assert PushState.objects.count() == 0
    assert push(partner) == 0
    assert sent(emsp) == []


# --------------------------------------------------------------------------- the admin


def test_admin_location_form_and_decommission_action_reach_the_partner(
    partner: RoamingPartner, emsp: PartnerSimulator, admin_client: Any, site: tuple[Location, ChargePoint, Evse]
) -> None:
    location, _, evse = site
    form = {
        "tenant": location.tenant_id, "name": "Via Admin", "ocpi_id": "LOC-1", "address": location.address,
        "postal_code": location.postal_code, "city": location.city, "country": "DE", "latitude": "52.520008",
        "longitude": "13.404954", "timezone": "Europe/Berlin", "parking_type": "", "publish": "on",
        "opening_24_7": "on",
    }  # fmt: skip
    answer = admin_client.post(f"/admin/stations/location/{location.pk}/change/", form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    push(partner)
    answer = admin_client.post(
        "/admin/stations/evse/", {"action": "decommission_selected", "_selected_action": [evse.pk]}
    )
    assert answer.status_code == 302
    push(partner)

    [(m1, p1, b1), (m2, p2, b2)] = sent(emsp)
    assert (m1, p1, b1["name"]) == ("PUT", "DE/ALP/LOC-1", "Via Admin")
    assert (m2, p2, b2["status"]) == ("PATCH", f"DE/ALP/LOC-1/{evse.pk}", "REMOVED")


def test_admin_evse_form_with_its_connector_inline_puts_the_evse(
    partner: RoamingPartner, emsp: PartnerSimulator, admin_client: Any, site: tuple[Location, ChargePoint, Evse]
) -> None:
    _, charge_point, evse = site
    plug = Connector.objects.get(evse=evse)
    prefix = "connectors"
    form = {
        "tenant": evse.tenant_id, "charge_point": charge_point.pk, "connector_id": 1, "evse_uid": evse.evse_uid,
        f"{prefix}-TOTAL_FORMS": 2, f"{prefix}-INITIAL_FORMS": 1, f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
        f"{prefix}-0-id": plug.pk, f"{prefix}-0-evse": evse.pk, f"{prefix}-0-standard": plug.standard,
        f"{prefix}-0-format": plug.format, f"{prefix}-0-power_type": plug.power_type,
        f"{prefix}-0-max_voltage": plug.max_voltage, f"{prefix}-0-max_amperage": plug.max_amperage,
        f"{prefix}-0-max_electric_power": plug.max_electric_power or "",
        f"{prefix}-1-evse": evse.pk, f"{prefix}-1-standard": "DOMESTIC_F", f"{prefix}-1-format": "SOCKET",
        f"{prefix}-1-power_type": "AC_1_PHASE", f"{prefix}-1-max_voltage": 230, f"{prefix}-1-max_amperage": 16,
    }  # fmt: skip
    answer = admin_client.post(f"/admin/stations/evse/{evse.pk}/change/", form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert push(partner) == 1

    [(method, path, document)] = sent(emsp)
    assert (method, path) == ("PUT", f"DE/ALP/LOC-1/{evse.pk}")
    assert_valid("mod_locations_evse_object", document)
    assert [c["standard"] for c in document["connectors"]] == [plug.standard, "DOMESTIC_F"]


def test_admin_moving_a_charger_puts_both_locations(
    partner: RoamingPartner, emsp: PartnerSimulator, admin_client: Any, site: tuple[Location, ChargePoint, Evse]
) -> None:
    old, charge_point, _ = site
    new = LocationFactory(tenant=old.tenant, ocpi_id="LOC-2")
    form = admin_form(admin_client.get(f"/admin/stations/chargepoint/{charge_point.pk}/change/"))
    form["location"] = new.pk
    answer = admin_client.post(f"/admin/stations/chargepoint/{charge_point.pk}/change/", form)
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert ChargePoint.objects.get(pk=charge_point.pk).location_id == new.pk
    push(partner)

    assert sorted(p for _, p, _ in sent(emsp)) == ["DE/ALP/LOC-1", "DE/ALP/LOC-2"]


# --------------------------------------------------------------------------- tariffs


def test_tariffs_through_the_api_put_when_shown_and_delete_when_no_longer_shown(
    ocpi_base: str, partner: RoamingPartner, emsp: PartnerSimulator, api: APIClient, tenant_a: Tenant
) -> None:
    created = api.post("/api/v1/tariffs/", {"ocpi_id": "T-API", "currency": "EUR", "elements": ELEMENTS}, format="json")
    assert created.status_code == 201, created.content
    tariff_pk = created.json()["id"]
    assert push(partner) == 0  # not on the network yet: a partner sees the tenant's public (assigned) tariffs
    assignment = api.post("/api/v1/tariff-assignments/", {"tariff": tariff_pk}, format="json")
    assert assignment.status_code == 201, assignment.content
    push(partner)
    assert (
        api.patch(f"/api/v1/tariffs/{tariff_pk}/", {"tariff_alt_url": "https://a.example/t"}, format="json").status_code
        == 200
    )
    push(partner)
    assert api.delete(f"/api/v1/tariff-assignments/{assignment.json()['id']}/").status_code == 204
    push(partner)

    received = sent(emsp, "tariffs")
    assert [(m, p) for m, p, _ in received] == [
        ("PUT", "DE/ALP/T-API"),
        ("PUT", "DE/ALP/T-API"),
        ("DELETE", "DE/ALP/T-API"),
    ]
    for _, _, document in received[:2]:
        assert_valid("mod_tariffs_tariff_object", document)
    assert received[1][2]["tariff_alt_url"] == "https://a.example/t"
    assert emsp.tariffs == {}


def test_attaching_a_tariff_to_the_network_pushes_the_locations_naming_it_on_their_connectors(
    ocpi_base: str,
    partner: RoamingPartner,
    emsp: PartnerSimulator,
    api: APIClient,
    site: tuple[Location, ChargePoint, Evse],
) -> None:
    _location, _cp, evse = site
    body = {"ocpi_id": "T-EVSE", "currency": "EUR", "elements": ELEMENTS}
    created = api.post("/api/v1/tariffs/", body, format="json")
    assert created.status_code == 201, created.content
    push(partner)
    assert sent(emsp) == []  # a tariff on no connector changes no location
    assignment = api.post(
        "/api/v1/tariff-assignments/", {"tariff": created.json()["id"], "evse": evse.pk}, format="json"
    )
    assert assignment.status_code == 201, assignment.content
    push(partner)
    assert api.delete(f"/api/v1/tariff-assignments/{assignment.json()['id']}/").status_code == 204
    push(partner)

    locations = [(m, p, body) for m, p, body in sent(emsp) if p == "DE/ALP/LOC-1"]
    assert [m for m, _, _ in locations] == ["PUT", "PUT"]
    for _, _, document in locations:
        assert_valid("mod_locations_location_object", document)
    assert [c.get("tariff_ids") for c in locations[0][2]["evses"][0]["connectors"]] == [["T-EVSE"]]
    assert [c.get("tariff_ids") for c in locations[1][2]["evses"][0]["connectors"]] == [None]
    assert emsp.locations["DE/ALP/LOC-1"] == our_get(ocpi_base, emsp, "LOC-1")


def test_a_tariff_deleted_or_renamed_is_deleted_at_the_partner_under_the_id_it_had(
    partner: RoamingPartner, emsp: PartnerSimulator, api: APIClient, tenant_a: Tenant
) -> None:
    chosen = TariffFactory(tenant=tenant_a, ocpi_id="T-CHOSEN")
    partner.tariffs.add(chosen)
    assert api.patch(f"/api/v1/tariffs/{chosen.pk}/", {"ocpi_id": "T-RENAMED"}, format="json").status_code == 200
    push(partner)
    first = sent(emsp, "tariffs")
    assert api.patch(f"/api/v1/tariffs/{chosen.pk}/", {"ocpi_id": "T-NEW"}, format="json").status_code == 200
    push(partner)
    assert api.delete(f"/api/v1/tariffs/{chosen.pk}/").status_code == 204
    push(partner)

    assert [(m, p) for m, p, _ in first] == [("PUT", "DE/ALP/T-RENAMED")]
    assert [(m, p) for m, p, _ in sent(emsp, "tariffs")[1:]] == [
        ("DELETE", "DE/ALP/T-RENAMED"),
        ("PUT", "DE/ALP/T-NEW"),
        ("DELETE", "DE/ALP/T-NEW"),
    ]
    assert emsp.tariffs == {}
    assert not Tariff.objects.filter(pk=chosen.pk).exists()


def test_admin_tariff_edit_reaches_the_partner(
    partner: RoamingPartner, emsp: PartnerSimulator, admin_client: Any, tenant_a: Tenant
) -> None:
    tariff = TariffFactory(tenant=tenant_a, ocpi_id="T-ADM")
    TariffAssignmentFactory(tenant=tenant_a, tariff=tariff)
    data = admin_form(admin_client.get(f"/admin/tariffs/tariff/{tariff.pk}/change/"))
    data["tariff_alt_url"] = "https://admin.example/t"
    answer = admin_client.post(f"/admin/tariffs/tariff/{tariff.pk}/change/", data)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    push(partner)

    [(method, path, document)] = sent(emsp, "tariffs")
    assert (method, path, document["tariff_alt_url"]) == ("PUT", "DE/ALP/T-ADM", "https://admin.example/t")
    assert TariffAssignment.objects.filter(tariff=tariff).count() == 1


def test_an_evse_or_a_charger_deleted_through_the_api_puts_the_location_without_it(
    ocpi_base: str,
    partner: RoamingPartner,
    emsp: PartnerSimulator,
    api: APIClient,
    site: tuple[Location, ChargePoint, Evse],
    tenant_a: Tenant,
) -> None:
    _, charge_point, evse = site  # nothing points to them yet: they may be deleted
    second = EvseFactory(charge_point=charge_point, connector_id=2)
    assert api.delete(f"/api/v1/evses/{second.pk}/").status_code == 204
    push(partner)
    assert api.delete(f"/api/v1/charge-points/{charge_point.pk}/").status_code == 204
    push(partner)

    [(m1, p1, b1), (m2, p2, b2)] = sent(emsp)
    assert (m1, p1, [e["uid"] for e in b1["evses"]]) == ("PUT", "DE/ALP/LOC-1", [str(evse.pk)])
    assert (m2, p2, b2["evses"]) == ("PUT", "DE/ALP/LOC-1", [])
    assert b2 == our_get(ocpi_base, emsp, "LOC-1")
    assert not ChargePoint.objects.filter(pk=charge_point.pk).exists()


def test_a_charger_decommissioned_in_the_admin_patches_each_evse_removed(
    partner: RoamingPartner, emsp: PartnerSimulator, admin_client: Any, site: tuple[Location, ChargePoint, Evse]
) -> None:
    _, charge_point, first = site
    second = EvseFactory(charge_point=charge_point, connector_id=2)

    answer = admin_client.post(
        "/admin/stations/chargepoint/", {"action": "decommission_selected", "_selected_action": [charge_point.pk]}
    )
    assert answer.status_code == 302
    push(partner)

    assert [(m, p, b["status"]) for m, p, b in sent(emsp)] == [
        ("PATCH", f"DE/ALP/LOC-1/{first.pk}", "REMOVED"),
        ("PATCH", f"DE/ALP/LOC-1/{second.pk}", "REMOVED"),
    ]


def test_a_tariff_deleted_in_the_admin_is_deleted_at_the_partner(
    partner: RoamingPartner, emsp: PartnerSimulator, admin_client: Any, tenant_a: Tenant
) -> None:
    tariff = TariffFactory(tenant=tenant_a, ocpi_id="T-GONE")
    partner.tariffs.add(tariff)
    assert (
        admin_client.post(
            f"/admin/tariffs/tariff/{tariff.pk}/change/",
            admin_form(admin_client.get(f"/admin/tariffs/tariff/{tariff.pk}/change/")),
        ).status_code
        == 302
    )
    push(partner)

    answer = admin_client.post(f"/admin/tariffs/tariff/{tariff.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    push(partner)

    assert [(m, p) for m, p, _ in sent(emsp, "tariffs")] == [("PUT", "DE/ALP/T-GONE"), ("DELETE", "DE/ALP/T-GONE")]
    assert emsp.tariffs == {}
