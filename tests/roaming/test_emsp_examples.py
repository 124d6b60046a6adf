"""Every official OCPI 2.2.1 example a Receiver of our eMSP role takes (../shared/specs/ocpi-2.2.1/examples/: the
locations, EVSE and connector PUT/PATCH examples, the tariffs, the sessions PUT/PATCH and the CDR) is accepted as it
is, over real HTTP against this process's daphne, and stored. The partner speaks for every party the examples use
(its registered roles), as a CPO would for its own objects. Fragments (energy mix, opening hours) are put inside a
location, the way a CPO sends them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.roaming import services
from apps.roaming.models import RoamingPartner, TokenKind
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.sessions.ocpi_json import DecimalNumberEncoder
from apps.stations.models import PartnerConnector, PartnerEvse, PartnerLocation
from apps.tariffs.models import PartnerTariff
from apps.tenants.models import Tenant
from tests.roaming.emsp_rig import EMSP_MODULES
from tests.roaming.factories import partner_for

EXAMPLES = Path("/work/shared/specs/ocpi-2.2.1/examples")
if not EXAMPLES.exists():  # a checkout elsewhere: the copy next to the worktrees
    EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "ocpi-2.2.1" / "examples"
pytestmark = pytest.mark.skipif(not EXAMPLES.exists(), reason="the OCPI spec examples are not on this machine")


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def names(pattern: str) -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob(pattern))


LOCATIONS = names("location_example*.json")
TARIFFS = names("tariff*.json")
SESSIONS = names("session_example_*.json")
FRAGMENTS = (
    names("location_energymix_example_*.json") + names("location_hours_*.json") + ["location_regularhours_example.json"]
)


class Emsp:
    """Our eMSP Receivers as the CPO partner calls them (its token C, no handshake: the examples' parties are
    example.com parties)."""

    def __init__(self, base: str, partner: RoamingPartner, token: str) -> None:
        self.base, self.partner = f"{base}/ocpi/emsp/2.2.1", partner
        self.auth = "Token " + base64.b64encode(token.encode()).decode()

    def send(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.base}{path}", json=body, headers={"Authorization": self.auth}, timeout=30
        )

    def ok(self, method: str, path: str, body: Any = None) -> requests.Response:
        response = self.send(method, path, body)
        assert (response.status_code, response.json()["status_code"]) == (200, 1000), response.text
        return response


@pytest.fixture
def emsp(ocpi_base: str, tenant_a: Tenant) -> Emsp:
    parties = {("BE", "BEC"), ("DE", "ALL"), ("NL", "TNM"), ("NL", "STK")}
    for path in EXAMPLES.glob("*.json"):
        body = json.loads(path.read_text())
        if isinstance(body, dict) and body.get("country_code") and body.get("party_id"):
            parties.add((body["country_code"], body["party_id"]))
    partner, _ = partner_for(
        tenant_a, country_code="BE", party_id="BEC", roles=["CPO"], our_roles=["EMSP"], enabled_modules=EMSP_MODULES
    )
    partner, token = services.partner_registered(
        partner_id=partner.pk,
        their_token="their-token-b",
        their_token_kind=TokenKind.B,
        credentials_roles=[
            {"role": "CPO", "country_code": cc, "party_id": pid, "business_details": {"name": f"{cc} {pid}"}}
            for cc, pid in sorted(parties)
        ],
        versions_url="http://127.0.0.1:9/ocpi/versions",
        version="2.2.1",
        endpoints=[],
        new_our_token_kind=TokenKind.C,
        expect_status="pending",
    )
    assert token is not None
    return Emsp(ocpi_base, partner, token)


def as_json(value: Any) -> Any:
    """A JSONField value as the JSON it stands for (sessions and CDRs keep exact decimals)."""
    return json.loads(json.dumps(value, cls=DecimalNumberEncoder))


def _key(body: dict[str, Any]) -> str:
    return f"/{body['country_code']}/{body['party_id']}/{body['id']}"


@pytest.mark.parametrize("name", LOCATIONS)
def test_each_official_location_example_is_accepted_as_it_is(emsp: Emsp, name: str) -> None:
    body = example(name)

    emsp.ok("PUT", f"/locations{_key(body)}", body)

    row = PartnerLocation.objects.get(partner=emsp.partner, ocpi_id=body["id"])
    assert (row.address, row.city, row.country) == (body["address"], body["city"], body["country"])
    assert sorted(PartnerEvse.objects.filter(location=row).values_list("uid", flat=True)) == sorted(
        e["uid"] for e in body.get("evses", [])
    )
    assert PartnerConnector.objects.filter(evse__location=row).count() == sum(
        len(e["connectors"]) for e in body.get("evses", [])
    )
    assert emsp.ok("GET", f"/locations{_key(body)}").json()["data"] == body


@pytest.mark.parametrize("name", FRAGMENTS)
def test_each_official_location_fragment_is_accepted_inside_a_location(emsp: Emsp, name: str) -> None:
    fragment = example(name)
    if "energy_mix" not in fragment and "opening_times" not in fragment:
        fragment = {"opening_times": fragment}  # an Hours object
    body = {**example("location_example.json"), **fragment}

    emsp.ok("PUT", f"/locations{_key(body)}", body)

    data = PartnerLocation.objects.get(partner=emsp.partner).data
    assert all(data[key] == value for key, value in fragment.items())


def test_the_official_add_an_evse_example_is_accepted_as_it_is(emsp: Emsp) -> None:
    """PUT …/locations/NL/TNM/1012/3256 (mod_locations "Example: add an EVSE"). Its connector lacks power_type,
    max_voltage, max_amperage and last_updated and its physical_reference is a number: kept (emsp_parse leniency)."""
    emsp.ok(
        "PUT",
        "/locations/NL/TNM/1012",
        {**example("location_example.json"), "country_code": "NL", "party_id": "TNM", "id": "1012"},
    )
    body = example("location_put_example_add_evse.json")

    emsp.ok("PUT", "/locations/NL/TNM/1012/3256", body)

    evse = PartnerEvse.objects.get(location__ocpi_id="1012", uid="3256")
    assert (evse.evse_id, evse.status, evse.physical_reference) == ("BE*BEC*E041503003", "AVAILABLE", "3")
    connector = evse.connectors.get()
    assert (connector.standard, connector.format, connector.tariff_ids, connector.power_type) == (
        "IEC_62196_T2",
        "SOCKET",
        ["14"],
        "",
    )
    assert evse.location.last_updated.isoformat() == "2019-06-24T12:39:09+00:00"


@pytest.mark.parametrize(
    ("name", "path", "check"),
    [
        ("location_patch_example_location.json", "/BE/BEC/LOC1", lambda: PartnerLocation.objects.get().name),
        ("location_patch_example_status.json", "/BE/BEC/LOC1/3256", lambda: PartnerEvse.objects.get(uid="3256").status),
        (
            "location_patch_example_remove_evse.json",
            "/BE/BEC/LOC1/3256",
            lambda: PartnerEvse.objects.get(uid="3256").status,
        ),
        (
            "location_patch_example_tariff.json",
            "/BE/BEC/LOC1/3256/1",
            lambda: PartnerConnector.objects.get(evse__uid="3256", connector_id="1").tariff_ids,
        ),
    ],
)
def test_each_official_location_patch_example_is_applied(emsp: Emsp, name: str, path: str, check: Any) -> None:
    emsp.ok("PUT", "/locations/BE/BEC/LOC1", example("location_example.json"))
    patch = example(name)

    emsp.ok("PATCH", f"/locations{path}", patch)

    expected = {k: v for k, v in patch.items() if k != "last_updated"}
    assert check() == next(iter(expected.values()))
    assert PartnerLocation.objects.get().last_updated.isoformat() == "2019-06-24T12:39:09+00:00"


@pytest.mark.parametrize("name", TARIFFS)
def test_each_official_tariff_example_is_accepted_as_it_is(emsp: Emsp, name: str) -> None:
    body = example(name)

    emsp.ok("PUT", f"/tariffs{_key(body)}", body)

    row = PartnerTariff.objects.get(partner=emsp.partner)
    assert (row.ocpi_id, row.currency) == (body["id"], body["currency"])
    assert {k: v for k, v in row.data.items() if k != "last_updated"} == {
        k: v for k, v in body.items() if k != "last_updated"
    }


@pytest.mark.parametrize("name", SESSIONS)
def test_each_official_session_example_is_accepted_as_it_is(emsp: Emsp, name: str) -> None:
    body = example(name)

    emsp.ok("PUT", f"/sessions{_key(body)}", body)

    row = PartnerSession.objects.get(partner=emsp.partner)
    assert (row.ocpi_id, row.state, as_json(row.data)) == (body["id"], body["status"], body)


@pytest.mark.parametrize("name", names("session_patch_example_*.json"))
def test_each_official_session_patch_example_is_applied(emsp: Emsp, name: str) -> None:
    """PATCH …/sessions/NL/STK/101 on the simple-start example (dated before the patches, as a live session is)."""
    base = {**example("session_example_1_simple_start.json"), "last_updated": "2019-06-23T08:00:00Z"}
    emsp.ok("PUT", "/sessions/NL/STK/101", base)
    patch = example(name)

    emsp.ok("PATCH", "/sessions/NL/STK/101", patch)

    row = PartnerSession.objects.get()
    assert (str(row.total_cost_excl_vat), row.last_updated.isoformat()) == (
        f"{patch['total_cost']['excl_vat']:.4f}",
        patch["last_updated"].replace("Z", "+00:00"),
    )
    assert as_json(row.data.get("charging_periods", [])) == patch.get("charging_periods", [])


def test_the_official_cdr_example_is_accepted_as_it_is(emsp: Emsp) -> None:
    body = example("cdr_example.json")

    response = emsp.ok("POST", "/cdrs", body)

    row = PartnerCdr.objects.get(partner=emsp.partner)
    assert response.headers["Location"] == f"{emsp.base}/cdrs/{row.pk}"
    assert (row.ocpi_id, str(row.total_cost_excl_vat), str(row.total_energy)) == ("12345", "4.0000", "15.3420")
    assert (
        requests.get(response.headers["Location"], headers={"Authorization": emsp.auth}, timeout=30).json()["data"]
        == body
    )
