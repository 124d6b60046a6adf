"""The tokens module, Receiver interface (mod_tokens.asciidoc), over real HTTP with the partner simulator as the eMSP:
PUT/PATCH/GET per partner, the spec's official examples accepted as they are, and every bad input refused with
OCPI 2001 naming the field, with nothing stored changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.customers.models import Token, TokenSource
from apps.roaming.models import PartnerToken, RoamingPartner
from apps.roaming.partner_sim import PartnerSimulator
from apps.tenants.models import Tenant
from tests.roaming.factories import registered

EXAMPLES = Path("/work/shared/specs/ocpi-2.2.1/examples")
if not EXAMPLES.exists():  # a checkout elsewhere: the copy next to the worktrees
    EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "ocpi-2.2.1" / "examples"


@pytest.fixture
def partner(ocpi_base: str, sim: PartnerSimulator, tenant_a: Tenant) -> RoamingPartner:
    return registered(ocpi_base, sim, tenant_a)


def stored() -> list[tuple[Any, ...]]:
    """Everything the tokens module may write, to compare before and after a refused request."""
    tokens = list(Token.objects.order_by("pk").values_list())
    pushes = list(PartnerToken.objects.order_by("pk").values_list())
    return [*tokens, *pushes]


def test_version_details_list_the_receiver_modules(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    assert {(e["identifier"], e["role"]) for e in sim.peer_endpoints} >= {
        ("credentials", "SENDER"),
        ("tokens", "RECEIVER"),
        ("commands", "RECEIVER"),
        ("chargingprofiles", "RECEIVER"),
    }


def test_put_stores_the_token_for_the_partner_and_get_returns_it(
    partner: RoamingPartner, sim: PartnerSimulator
) -> None:
    body = sim.token_object("04A1B2C3D4E5F6", whitelist="ALLOWED_OFFLINE", group_id="GRP-1", language="nl")

    answer = sim.push_token(body)

    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    token = Token.objects.get(tenant=partner.tenant, uid="04A1B2C3D4E5F6")
    assert token.source == TokenSource.ROAMING
    assert (token.country_code, token.party_id) == ("NL", "SIM")
    assert (token.whitelist, token.group_id, token.language, token.issuer) == (
        "ALLOWED_OFFLINE",
        "GRP-1",
        "nl",
        sim.name,
    )
    assert token.roaming_push.partner == partner
    got = sim.push_token(None, method="GET", uid="04a1b2c3d4e5f6")  # uids are CiString: case does not matter
    assert (got["http_status"], got["status_code"]) == (200, 1000), got
    assert got["data"] == body


def test_patch_changes_only_the_given_fields(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    sim.push_token(sim.token_object("CARD-PATCH", visual_number="V-1"))

    answer = sim.push_token({"valid": False, "last_updated": "2026-12-04T18:00:00Z"}, method="PATCH", uid="CARD-PATCH")

    assert answer["status_code"] == 1000, answer
    token = Token.objects.get(uid="CARD-PATCH")
    assert (token.valid, token.visual_number) == (False, "V-1")
    assert sim.push_token(None, method="GET", uid="CARD-PATCH")["data"]["last_updated"] == "2026-12-04T18:00:00Z"


def test_get_and_patch_of_an_unknown_token_are_404_2004(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    sim.push_token(sim.token_object("KNOWN-RFID"))

    assert sim.push_token(None, method="GET", uid="NOPE")["http_status"] == 404
    wrong_type = sim.push_token(None, method="GET", uid="KNOWN-RFID", type="APP_USER")
    patch = sim.push_token({"valid": False, "last_updated": "2026-12-04T18:00:00Z"}, method="PATCH", uid="NOPE")

    assert (wrong_type["http_status"], wrong_type["status_code"]) == (404, 2004)
    assert (patch["http_status"], patch["status_code"]) == (404, 2004)
    assert not Token.objects.filter(uid="NOPE").exists()


BAD_PUTS: list[tuple[dict[str, Any], str]] = [
    ({"uid": "X" * 37}, "token.uid: is 37 characters long; at most 36"),
    ({"uid": "CARD\n1"}, "token.uid: may contain printable ASCII characters only"),
    ({"type": "rfid"}, "token.type: 'rfid' is not one of AD_HOC_USER, APP_USER, OTHER, RFID"),
    ({"whitelist": "SOMETIMES"}, "token.whitelist: 'SOMETIMES' is not one of"),
    ({"valid": "true"}, "token.valid: must be true or false, not a string"),
    ({"valid": 1}, "token.valid: must be true or false, not a number"),
    ({"contract_id": None}, "token.contract_id: is required"),
    ({"issuer": "I" * 65}, "token.issuer: is 65 characters long; at most 64"),
    ({"visual_number": 12}, "token.visual_number: must be a string, not a number"),
    ({"group_id": "G" * 37}, "token.group_id: is 37 characters long; at most 36"),
    ({"language": "dutch"}, "token.language: is 5 characters long; at most 2"),
    ({"default_profile_type": "SLOW"}, "token.default_profile_type: 'SLOW' is not one of CHEAP, FAST, GREEN, REGULAR"),
    ({"energy_contract": {"contract_id": "x"}}, "token.energy_contract.supplier_name: is required"),
    ({"energy_contract": "Greenpeace"}, "token.energy_contract: must be a JSON object"),
    ({"last_updated": "yesterday"}, "token.last_updated: 'yesterday' is not an RFC 3339 DateTime"),
    ({"last_updated": None}, "token.last_updated: is required"),
    ({"country_code": "DE"}, "token.country_code/party_id DE/SIM differ from the URL's NL/SIM"),
    ({"country_code": "NLD"}, "token.country_code: is 3 characters long; at most 2"),
    ({"party_id": "S1"}, "token.party_id: 'S1' is not a 3-character party id"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD_PUTS, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD_PUTS)]
)
def test_bad_put_is_2001_naming_the_field_and_changes_nothing(
    partner: RoamingPartner, sim: PartnerSimulator, change: dict[str, Any], message: str
) -> None:
    sim.push_token(sim.token_object("CARD-1", visual_number="before"))
    before = stored()
    body = {**sim.token_object("CARD-1", visual_number="after"), **change}

    answer = sim.push_token(body, uid="CARD-1")

    assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert message in answer["status_message"], answer["status_message"]
    assert "data" not in answer or answer["data"] is None
    assert stored() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not a token", "token: must be a JSON object, not a string"),
        ([1, 2], "token: must be a JSON object, not a list"),
        ({"valid": False}, "token.last_updated: is required"),
        ({"valid": "no", "last_updated": "2026-12-04T18:00:00Z"}, "token.valid: must be true or false"),
        ({"uid": "OTHER", "last_updated": "2026-12-04T18:00:00Z"}, "token.uid 'OTHER' differs from the URL's"),
    ],
)
def test_bad_patch_is_2001_and_changes_nothing(
    partner: RoamingPartner, sim: PartnerSimulator, body: Any, message: str
) -> None:
    sim.push_token(sim.token_object("CARD-2"))
    before = stored()

    answer = sim.push_token(body, method="PATCH", uid="CARD-2")

    assert (answer["http_status"], answer["status_code"]) == (200, 2001), answer
    assert message in answer["status_message"]
    assert stored() == before


def test_url_and_body_must_agree_and_the_party_must_be_theirs(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    before = stored()
    body = sim.token_object("CARD-3")

    other_uid = sim.push_token(body, uid="CARD-4")
    other_type = sim.push_token(body, type="APP_USER")
    bad_type = sim.push_token(body, type="CARD")
    sim.country_code = "DE"  # a party the partner did not register
    foreign = sim.push_token({**body, "country_code": "DE"})
    sim.country_code = "NL"

    assert other_uid["status_code"] == 2001
    assert "differs from the URL's 'CARD-4'" in other_uid["status_message"]
    assert other_type["status_code"] == 2001
    assert "type=APP_USER" in other_type["status_message"]
    assert bad_type["status_code"] == 2001
    assert "type: 'CARD' is not one of" in bad_type["status_message"]
    assert foreign["status_code"] == 2001
    assert "DE/SIM is not a party you registered" in foreign["status_message"]
    assert stored() == before


def test_a_uid_of_our_own_tokens_is_refused_never_overwritten(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    Token.objects.create(tenant=partner.tenant, uid="OWN-CARD", contract_id="DE-ALP-OWN")
    before = stored()

    answer = sim.push_token(sim.token_object("own-card"))

    assert answer["status_code"] == 2001
    assert "is the uid of a token this operator issued itself" in answer["status_message"]
    assert stored() == before


def test_an_invalid_json_body_is_400_2001(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    url = f"{sim.peer_endpoint('tokens')}/NL/SIM/CARD-5"
    response = sim.call("PUT", url)  # no body
    raw = requests.put(url, data=b"{not json", headers={"Authorization": sim.auth_header(sim.client_token)}, timeout=10)

    assert response.json()["status_code"] == 2001
    assert (raw.status_code, raw.json()["status_code"]) == (400, 2001)
    assert not Token.objects.filter(uid="CARD-5").exists()


def test_tokens_module_needs_it_enabled(partner: RoamingPartner, sim: PartnerSimulator) -> None:
    RoamingPartner.objects.filter(pk=partner.pk).update(enabled_modules=["locations"])

    answer = sim.push_token(sim.token_object("CARD-6"))

    assert answer["http_status"] == 404
    assert not Token.objects.filter(uid="CARD-6").exists()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("token_*.json")), ids=lambda p: p.name)
def test_every_official_token_example_is_accepted_as_it_is(
    ocpi_base: str, sim: PartnerSimulator, tenant_a: Tenant, path: Path
) -> None:
    """PUT of each Token example (token_example_1_app_user, token_example_2_full_rfid, token_put_example) to the
    party it names, then GET answers it unchanged; the PATCH example is applied to the PUT example's token."""
    example = json.loads(path.read_text())
    put = json.loads((EXAMPLES / "token_put_example.json").read_text()) if "patch" in path.name else example
    sim.country_code, sim.party_id = put["country_code"], put["party_id"]
    registered(ocpi_base, sim, tenant_a)

    answer = sim.push_token(put, type=put["type"])
    assert (answer["http_status"], answer["status_code"]) == (200, 1000), answer
    if "patch" in path.name:
        patched = sim.push_token(example, method="PATCH", uid=put["uid"])
        assert (patched["http_status"], patched["status_code"]) == (200, 1000), patched
        put = {**put, **example}
    got = sim.push_token(None, method="GET", uid=put["uid"], type=put["type"])

    assert got["status_code"] == 1000, got
    assert got["data"] == put
