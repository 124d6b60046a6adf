"""Our eMSP Receivers of a CPO's data (apps/roaming/ocpi/emsp_receivers.py) over real HTTP: the CPO simulator
pushes locations/EVSEs/connectors, tariffs, sessions and CDRs to this process's daphne, against PostgreSQL and
Redis. Bad input is refused with the OCPI status the spec gives and nothing stored changes; an older object never
overwrites a newer one; one tenant's partner never reads or writes another tenant's rows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from apps.customers.models import TokenSource
from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import RoamingPartner
from apps.sessions.cache import STATION_SEARCH_CACHE
from apps.sessions.models import PartnerCdr, PartnerSession, PartnerSessionState
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tariffs.models import PartnerTariff
from apps.tenants.models import Tenant
from tests.customers.factories import DriverFactory, TokenFactory
from tests.roaming import emsp_rig as rig


@pytest.fixture
def cpo() -> Iterator[CpoSimulator]:
    simulator = CpoSimulator(country_code="NL", party_id="CPO").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, cpo: CpoSimulator, tenant_a: Tenant) -> RoamingPartner:
    return rig.cpo_registered(ocpi_base, cpo, tenant_a)


def ok(answer: dict[str, Any]) -> None:
    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer


# --------------------------------------------------------------------------- version details


def test_version_details_list_our_emsp_receivers(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    listed = {(e["identifier"], e["role"], e["url"].split("/ocpi/")[1]) for e in cpo.peer_endpoints}
    assert {
        ("locations", "RECEIVER", "emsp/2.2.1/locations"),
        ("tariffs", "RECEIVER", "emsp/2.2.1/tariffs"),
        ("sessions", "RECEIVER", "emsp/2.2.1/sessions"),
        ("cdrs", "RECEIVER", "emsp/2.2.1/cdrs"),
    } <= listed
    assert not any(e["identifier"] == "locations" and e["role"] == "SENDER" for e in cpo.peer_endpoints)


# --------------------------------------------------------------------------- locations


def test_location_put_stores_columns_evses_connectors_and_get_answers_it(
    partner: RoamingPartner, cpo: CpoSimulator
) -> None:
    body = rig.location(cpo, evses=[rig.evse("E1"), rig.evse("E2", status="CHARGING")])

    ok(cpo.push("locations", "/NL/CPO/LOC1", body))

    row = PartnerLocation.objects.get(partner=partner)
    assert (row.tenant_id, row.country_code, row.party_id, row.ocpi_id) == (partner.tenant_id, "NL", "CPO", "LOC1")
    assert (row.name, row.address, row.city, row.country, row.time_zone, row.operator_name) == (
        "Station LOC1",
        "Stationsplein 1",
        "Utrecht",
        "NLD",
        "Europe/Amsterdam",
        "Sim Charging",
    )
    assert (row.latitude, row.longitude) == (Decimal("52.089444"), Decimal("5.110278"))
    assert "evses" not in row.data
    assert row.data["operator"] == {"name": "Sim Charging"}
    evses = {e.uid: e for e in PartnerEvse.objects.filter(location=row)}
    assert {uid: e.status for uid, e in evses.items()} == {"E1": "AVAILABLE", "E2": "CHARGING"}
    assert (evses["E1"].capabilities, evses["E1"].evse_id) == (["REMOTE_START_STOP_CAPABLE"], "NL*CPO*EE1")
    plug = PartnerConnector.objects.get(evse=evses["E1"])
    assert (plug.standard, plug.format, plug.power_type, plug.max_voltage, plug.max_amperage) == (
        "IEC_62196_T2",
        "SOCKET",
        "AC_3_PHASE",
        230,
        32,
    )
    assert (plug.max_electric_power, plug.tariff_ids) == (22000, ["T1"])

    got = cpo.call("GET", f"{cpo.peer_endpoint('locations', 'RECEIVER')}/NL/CPO/LOC1").json()
    assert got["status_code"] == 1000
    assert got["data"] == body
    connector = cpo.call("GET", f"{cpo.peer_endpoint('locations', 'RECEIVER')}/NL/CPO/LOC1/E2/1").json()
    assert connector["data"] == rig.connector()


def test_evse_and_connector_put_and_patch_update_parents_last_updated(
    partner: RoamingPartner, cpo: CpoSimulator
) -> None:
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))

    ok(cpo.push("locations", "/NL/CPO/LOC1/E9", rig.evse("E9", last_updated="2026-01-02T10:00:00Z")))
    ok(
        cpo.push(
            "locations",
            "/NL/CPO/LOC1/E9/2",
            rig.connector("2", standard="CHADEMO", power_type="DC", last_updated="2026-01-03T10:00:00Z"),
        )
    )
    ok(
        cpo.push(
            "locations",
            "/NL/CPO/LOC1/EVSE1",
            {"status": "CHARGING", "last_updated": "2026-01-04T10:00:00Z"},
            method="PATCH",
        )
    )
    ok(
        cpo.push(
            "locations",
            "/NL/CPO/LOC1/EVSE1/1",
            {"tariff_ids": ["T2"], "last_updated": "2026-01-04T11:00:00Z"},
            method="PATCH",
        )
    )

    row = PartnerLocation.objects.get(partner=partner)
    assert row.last_updated.isoformat() == "2026-01-04T11:00:00+00:00"
    e9 = PartnerEvse.objects.get(location=row, uid="E9")
    assert [c.connector_id for c in e9.connectors.order_by("connector_id")] == ["1", "2"]
    assert e9.last_updated.isoformat() == "2026-01-03T10:00:00+00:00"
    evse1 = PartnerEvse.objects.get(location=row, uid="EVSE1")
    assert (evse1.status, evse1.data["status"]) == ("CHARGING", "CHARGING")
    assert evse1.last_updated.isoformat() == "2026-01-04T11:00:00+00:00"
    plug = PartnerConnector.objects.get(evse=evse1, connector_id="1")
    assert (plug.tariff_ids, plug.data["tariff_ids"], plug.standard) == (["T2"], ["T2"], "IEC_62196_T2")


def test_location_patch_keeps_the_evses(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))

    ok(
        cpo.push(
            "locations", "/NL/CPO/LOC1", {"name": "Renamed", "last_updated": "2026-02-01T00:00:00Z"}, method="PATCH"
        )
    )

    row = PartnerLocation.objects.get(partner=partner)
    assert (row.name, row.data["name"], row.address) == ("Renamed", "Renamed", "Stationsplein 1")
    assert list(row.evses.values_list("uid", flat=True)) == ["EVSE1"]


def test_a_put_replaces_the_location_and_drops_evses_it_no_longer_lists(
    partner: RoamingPartner, cpo: CpoSimulator
) -> None:
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo, evses=[rig.evse("A"), rig.evse("B")])))

    ok(
        cpo.push(
            "locations", "/NL/CPO/LOC1", rig.location(cpo, evses=[rig.evse("B")], last_updated="2026-01-02T00:00:00Z")
        )
    )

    assert list(PartnerEvse.objects.values_list("uid", flat=True)) == ["B"]


def test_older_updates_never_overwrite_newer_data(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo, last_updated="2026-03-01T00:00:00Z")))
    ok(
        cpo.push(
            "locations", "/NL/CPO/LOC1/EVSE1", {"status": "CHARGING", "last_updated": "2026-03-02T00:00:00Z"}, "PATCH"
        )
    )
    before = rig.stored()

    late_patch = cpo.push(
        "locations", "/NL/CPO/LOC1/EVSE1", {"status": "AVAILABLE", "last_updated": "2026-03-01T12:00:00Z"}, "PATCH"
    )
    late_put = cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo, name="Old", last_updated="2026-02-01T00:00:00Z"))

    for answer in (late_patch, late_put):  # accepted (OCPI: the Receiver takes what it is sent), not applied
        ok(answer)
        assert "kept the newer" in answer["status_message"]
    assert rig.stored() == before
    assert PartnerEvse.objects.get().status == "CHARGING"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"address": None}, "location.address"),
        ({"address": "x" * 46}, "location.address"),
        ({"coordinates": {"latitude": "95.0", "longitude": "5.1"}}, "location.coordinates.latitude"),
        ({"coordinates": {"latitude": "abc", "longitude": "5.1"}}, "location.coordinates.latitude"),
        ({"coordinates": None}, "location.coordinates"),
        ({"publish": "yes"}, "location.publish"),
        ({"last_updated": "yesterday"}, "location.last_updated"),
        ({"evses": [rig.evse(status="BROKEN")]}, "location.evses[0].status"),
        ({"evses": [rig.evse(connectors=[])]}, "location.evses[0].connectors"),
        ({"evses": [rig.evse(connectors=[rig.connector(max_voltage="230")])]}, "location.evses[0].connectors[0]"),
        ({"evses": [rig.evse("X"), rig.evse("X")]}, "location.evses"),
        ({"evses": "none"}, "location.evses"),
    ],
)
def test_a_bad_location_is_2001_naming_the_field_and_changes_nothing(
    partner: RoamingPartner, cpo: CpoSimulator, change: dict[str, Any], field: str
) -> None:
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))
    before = rig.stored()

    answer = cpo.push("locations", "/NL/CPO/LOC1", {**rig.location(cpo, last_updated="2026-06-01T00:00:00Z"), **change})

    assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert field in answer["status_message"]
    assert rig.stored() == before


def test_patch_needs_last_updated_and_a_known_object(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))
    before = rig.stored()

    no_date = cpo.push("locations", "/NL/CPO/LOC1/EVSE1", {"status": "CHARGING"}, "PATCH")
    unknown_location = cpo.push(
        "locations", "/NL/CPO/NOPE", {"name": "x", "last_updated": "2026-05-01T00:00:00Z"}, "PATCH"
    )
    unknown_evse = cpo.push(
        "locations", "/NL/CPO/LOC1/NOPE", {"status": "CHARGING", "last_updated": "2026-05-01T00:00:00Z"}, "PATCH"
    )
    unknown_connector = cpo.push(
        "locations", "/NL/CPO/LOC1/EVSE1/9", {"format": "CABLE", "last_updated": "2026-05-01T00:00:00Z"}, "PATCH"
    )
    evse_of_unknown_location = cpo.push("locations", "/NL/CPO/NOPE/E1", rig.evse("E1"))

    assert (no_date["http_status"], no_date["status_code"]) == (200, 2001)
    assert "last_updated" in no_date["status_message"]
    for answer in (unknown_location, unknown_evse, unknown_connector, evse_of_unknown_location):
        assert (answer["http_status"], answer["status_code"]) == (404, 2003), answer
    assert rig.stored() == before


def test_url_and_body_must_agree_and_the_party_must_be_the_partners(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    before = rig.stored()

    other_id = cpo.push("locations", "/NL/CPO/LOC2", rig.location(cpo))
    other_party_in_body = cpo.push("locations", "/NL/CPO/LOC1", {**rig.location(cpo), "party_id": "XYZ"})
    not_their_party = cpo.push(
        "locations", "/DE/XYZ/LOC1", {**rig.location(cpo), "country_code": "DE", "party_id": "XYZ"}
    )
    evse_uid_differs = cpo.push("locations", "/NL/CPO/LOC1/E7", rig.evse("E8"))

    for answer in (other_id, other_party_in_body, not_their_party, evse_uid_differs):
        assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert "not a party you registered" in not_their_party["status_message"]
    assert rig.stored() == before


def test_invalid_json_and_unknown_methods_are_refused(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    url = f"{cpo.peer_endpoint('locations', 'RECEIVER')}/NL/CPO/LOC1"
    headers = {"Authorization": cpo.auth_header(cpo.client_token), "Content-Type": "application/json"}

    bad_json = requests.put(url, data=b"{not json", headers=headers, timeout=10)
    delete = requests.delete(url, headers=headers, timeout=10)

    assert (bad_json.status_code, bad_json.json()["status_code"]) == (400, 2001)
    assert (delete.status_code, delete.json()["status_code"]) == (405, 2000)
    assert rig.stored() == []


def test_an_evse_status_change_drops_the_cached_station_search_at_once(
    partner: RoamingPartner, cpo: CpoSimulator
) -> None:
    """The driver search is cached per tenant (apps/sessions/cache.py); a status PATCH bumps the tenant's `stations`
    generation on commit, so the next search reads the new status (here within 1 s of the CPO's PATCH)."""
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))

    def search() -> str:
        return STATION_SEARCH_CACHE.get(
            tenant_ids=[partner.tenant_id],
            parts=("partner-status", "LOC1"),
            compute=lambda: str(PartnerEvse.objects.get(location__partner=partner, uid="EVSE1").status),
        )

    assert search() == "AVAILABLE"
    PartnerEvse.objects.filter(uid="EVSE1").update(status="BLOCKED")  # behind the services' back: still cached
    assert search() == "AVAILABLE"

    started = time.monotonic()
    ok(
        cpo.push(
            "locations", "/NL/CPO/LOC1/EVSE1", {"status": "CHARGING", "last_updated": "2026-04-01T00:00:00Z"}, "PATCH"
        )
    )
    assert search() == "CHARGING"
    assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------- tariffs


def test_tariff_put_get_delete(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    body = rig.tariff(cpo)

    ok(cpo.push("tariffs", "/NL/CPO/T1", body))
    row = PartnerTariff.objects.get(partner=partner)
    assert (row.tenant_id, row.ocpi_id, row.currency, row.data) == (partner.tenant_id, "T1", "EUR", body)
    got = cpo.call("GET", f"{cpo.peer_endpoint('tariffs', 'RECEIVER')}/NL/CPO/T1").json()
    assert got["data"] == body

    stale = cpo.push("tariffs", "/NL/CPO/T1", rig.tariff(cpo, currency="USD", last_updated="2025-01-01T00:00:00Z"))
    ok(stale)
    assert PartnerTariff.objects.get().currency == "EUR"

    ok(cpo.push("tariffs", "/NL/CPO/T1", None, "DELETE"))
    assert not PartnerTariff.objects.exists()
    gone = cpo.push("tariffs", "/NL/CPO/T1", None, "DELETE")
    assert (gone["http_status"], gone["status_code"]) == (404, 2000)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "euro"}, "tariff.currency"),
        ({"elements": []}, "tariff.elements"),
        ({"elements": [{"price_components": [{"type": "KWH", "price": 1, "step_size": 1}]}]}, ".type"),
        ({"elements": [{"price_components": [{"type": "ENERGY", "price": "1", "step_size": 1}]}]}, ".price"),
        ({"id": "T2"}, "tariff.id"),
    ],
)
def test_a_bad_tariff_is_2001_and_changes_nothing(
    partner: RoamingPartner, cpo: CpoSimulator, change: dict[str, Any], field: str
) -> None:
    ok(cpo.push("tariffs", "/NL/CPO/T1", rig.tariff(cpo)))
    before = rig.stored()

    answer = cpo.push("tariffs", "/NL/CPO/T1", {**rig.tariff(cpo, last_updated="2026-06-01T00:00:00Z"), **change})

    assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert field in answer["status_message"]
    assert rig.stored() == before


# --------------------------------------------------------------------------- sessions


def test_session_put_maps_our_driver_and_patch_keeps_it_live(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    driver = DriverFactory(tenant=partner.tenant)
    token = TokenFactory(tenant=partner.tenant, uid="CARD-1", driver=driver)
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))

    ok(cpo.push("sessions", "/NL/CPO/S1", rig.session(cpo, token_uid="card-1")))
    ok(
        cpo.push(
            "sessions",
            "/NL/CPO/S1",
            {
                "kwh": 4.5,
                "charging_periods": [
                    {"start_date_time": "2026-01-01T10:05:00Z", "dimensions": [{"type": "ENERGY", "volume": 4.5}]}
                ],
                "total_cost": {"excl_vat": 1.575, "incl_vat": 1.91},
                "last_updated": "2026-01-01T10:05:00Z",
            },
            "PATCH",
        )
    )
    ok(
        cpo.push(
            "sessions",
            "/NL/CPO/S1",
            {
                "kwh": 6.0,
                "charging_periods": [
                    {"start_date_time": "2026-01-01T10:10:00Z", "dimensions": [{"type": "ENERGY", "volume": 1.5}]}
                ],
                "last_updated": "2026-01-01T10:10:00Z",
            },
            "PATCH",
        )
    )

    row = PartnerSession.objects.get(partner=partner)
    assert (row.tenant_id, row.ocpi_id, row.state, row.token_id, row.driver_id) == (
        partner.tenant_id,
        "S1",
        PartnerSessionState.ACTIVE,
        token.pk,
        driver.pk,
    )
    assert (row.kwh, row.total_cost_excl_vat, row.total_cost_incl_vat) == (
        Decimal("6.0000"),
        Decimal("1.5750"),
        Decimal("1.9100"),
    )
    assert row.location is not None
    assert row.location.ocpi_id == "LOC1"
    assert (row.evse_uid, row.connector_id, row.currency) == ("EVSE1", "1", "EUR")
    assert [p["start_date_time"] for p in row.data["charging_periods"]] == [
        "2026-01-01T10:05:00Z",
        "2026-01-01T10:10:00Z",
    ]
    got = cpo.call("GET", f"{cpo.peer_endpoint('sessions', 'RECEIVER')}/NL/CPO/S1").json()
    assert (got["data"]["kwh"], got["data"]["status"]) == (6.0, "ACTIVE")


def test_a_session_we_started_is_matched_by_authorization_reference(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    driver = DriverFactory(tenant=partner.tenant)
    token = TokenFactory(tenant=partner.tenant, uid="APP-77", driver=driver)
    started = PartnerSession.objects.create(
        tenant=partner.tenant,
        partner=partner,
        country_code="NL",
        party_id="CPO",
        authorization_reference="REF-123",
        state=PartnerSessionState.COMMAND_ACCEPTED,
        token=token,
        driver=driver,
    )

    ok(
        cpo.push(
            "sessions", "/NL/CPO/S9", rig.session(cpo, "S9", token_uid="APP-77", authorization_reference="REF-123")
        )
    )

    assert PartnerSession.objects.count() == 1
    started.refresh_from_db()
    assert (started.ocpi_id, started.state, started.token_id, started.authorization_reference) == (
        "S9",
        "ACTIVE",
        token.pk,
        "REF-123",
    )


def test_a_session_of_a_token_not_ours_is_kept_without_a_driver(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    TokenFactory(tenant=partner.tenant, uid="PUSHED-1", source=TokenSource.ROAMING, country_code="NL", party_id="CPO")

    ok(cpo.push("sessions", "/NL/CPO/S1", rig.session(cpo, token_uid="PUSHED-1")))

    row = PartnerSession.objects.get()
    assert (row.token_id, row.driver_id, row.location_id) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "CHARGING"}, "session.status"),
        ({"kwh": -1}, "session.kwh"),
        ({"kwh": "5"}, "session.kwh"),
        ({"cdr_token": {"uid": "X"}}, "session.cdr_token.type"),
        ({"last_updated": None}, "session.last_updated"),
        ({"total_cost": {"excl_vat": 1e30}}, "session.total_cost.excl_vat"),
        ({"charging_periods": [{"start_date_time": "2026-01-01T10:00:00Z"}]}, "dimensions"),
    ],
)
def test_a_bad_session_is_2001_and_changes_nothing(
    partner: RoamingPartner, cpo: CpoSimulator, change: dict[str, Any], field: str
) -> None:
    ok(cpo.push("sessions", "/NL/CPO/S1", rig.session(cpo)))
    before = rig.stored()

    answer = cpo.push("sessions", "/NL/CPO/S1", {**rig.session(cpo, last_updated="2026-06-01T00:00:00Z"), **change})

    assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert field in answer["status_message"]
    assert rig.stored() == before


def test_session_patch_of_an_unknown_session_is_404(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    answer = cpo.push("sessions", "/NL/CPO/S404", {"kwh": 1.0, "last_updated": "2026-01-01T00:00:00Z"}, "PATCH")

    assert (answer["http_status"], answer["status_code"]) == (404, 2000)
    assert rig.stored() == []


# --------------------------------------------------------------------------- CDRs


def test_cdr_post_stores_it_once_and_answers_its_url(partner: RoamingPartner, cpo: CpoSimulator) -> None:
    driver = DriverFactory(tenant=partner.tenant)
    token = TokenFactory(tenant=partner.tenant, uid="CARD-1", driver=driver)
    ok(cpo.push("sessions", "/NL/CPO/S1", rig.session(cpo)))
    body = rig.cdr(cpo)
    url = cpo.peer_endpoint("cdrs", "RECEIVER")

    response = cpo.call("POST", url, body)

    assert (response.status_code, response.json()["status_code"]) == (200, 1000), response.text
    location = response.headers["Location"]
    row = PartnerCdr.objects.get(partner=partner)
    assert location == f"{url}/{row.pk}"
    assert (row.tenant_id, row.ocpi_id, row.session_ocpi_id, row.token_id, row.driver_id) == (
        partner.tenant_id,
        "CDR1",
        "S1",
        token.pk,
        driver.pk,
    )
    assert row.session == PartnerSession.objects.get()
    assert (row.total_energy, row.total_time, row.total_cost_excl_vat, row.total_cost_incl_vat, row.currency) == (
        Decimal("10.5000"),
        Decimal("1.000000"),
        Decimal("3.6750"),
        Decimal("4.4500"),
        "EUR",
    )
    assert cpo.call("GET", location).json()["data"] == body

    before = rig.stored()
    again = cpo.push("cdrs", "", {**body, "total_cost": {"excl_vat": 99}}, "POST")
    assert (again["http_status"], again["status_code"]) == (200, 2001)
    assert "already received" in again["status_message"]
    assert rig.stored() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"total_cost": None}, "cdr.total_cost"),
        ({"charging_periods": []}, "cdr.charging_periods"),
        ({"end_date_time": "2025-01-01T00:00:00Z"}, "cdr.end_date_time"),
        ({"credit": True}, "cdr.credit_reference_id"),
        ({"party_id": "XYZ"}, "not a party you registered"),
        ({"cdr_location": "LOC1"}, "cdr.cdr_location"),
    ],
)
def test_a_bad_cdr_is_2001_and_nothing_is_stored(
    partner: RoamingPartner, cpo: CpoSimulator, change: dict[str, Any], field: str
) -> None:
    answer = cpo.push("cdrs", "", {**rig.cdr(cpo), **change}, "POST")

    assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert field in answer["status_message"]
    assert rig.stored() == []


# --------------------------------------------------------------------------- tenants


def test_a_partner_of_another_tenant_never_reads_or_writes_our_rows(
    ocpi_base: str, partner: RoamingPartner, cpo: CpoSimulator, tenant_b: Tenant
) -> None:
    """Tenant B has a partner of the same party (NL/CPO); what it sends lands on B's rows, and it sees none of A's."""
    ok(cpo.push("locations", "/NL/CPO/LOC1", rig.location(cpo)))
    ok(cpo.push("tariffs", "/NL/CPO/T1", rig.tariff(cpo)))
    ok(cpo.push("sessions", "/NL/CPO/S1", rig.session(cpo)))
    created = cpo.call("POST", cpo.peer_endpoint("cdrs", "RECEIVER"), rig.cdr(cpo))
    a_rows = rig.stored()
    other = CpoSimulator(country_code="NL", party_id="CPO").start()
    try:
        partner_b = rig.cpo_registered(ocpi_base, other, tenant_b)
        for path, module in (("/NL/CPO/LOC1", "locations"), ("/NL/CPO/T1", "tariffs"), ("/NL/CPO/S1", "sessions")):
            answer = other.call("GET", f"{other.peer_endpoint(module, 'RECEIVER')}{path}")
            assert answer.status_code == 404, (module, answer.text)
        assert other.call("GET", created.headers["Location"]).status_code == 404
        patch = other.push(
            "locations", "/NL/CPO/LOC1/EVSE1", {"status": "OUTOFORDER", "last_updated": "2027-01-01T00:00:00Z"}, "PATCH"
        )
        assert (patch["http_status"], patch["status_code"]) == (404, 2003)
        assert rig.stored() == a_rows

        ok(other.push("locations", "/NL/CPO/LOC1", rig.location(other, name="B's copy")))
        assert PartnerLocation.objects.get(partner=partner).name == "Station LOC1"
        assert PartnerLocation.objects.get(partner=partner_b).tenant_id == tenant_b.pk
    finally:
        other.stop()


def test_receivers_need_the_module_enabled(ocpi_base: str, cpo: CpoSimulator, tenant_a: Tenant) -> None:
    rig.cpo_registered(ocpi_base, cpo, tenant_a, enabled_modules=["locations"])
    answer = cpo.call("PUT", f"{ocpi_base}/ocpi/emsp/2.2.1/tariffs/NL/CPO/T1", rig.tariff(cpo))

    assert not any(e["identifier"] == "tariffs" for e in cpo.peer_endpoints)
    assert (answer.status_code, answer.json()["status_code"]) == (404, 2000)
    assert rig.stored() == []
