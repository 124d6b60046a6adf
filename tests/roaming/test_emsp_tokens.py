"""The eMSP tokens Sender's list over real HTTP (mod_tokens "Sender Interface" GET, transport_and_format.asciidoc
pagination): a CPO (the CPO simulator) registered with our tenant, which is its eMSP, GETs our tenant's tokens. Every
Token we emit is checked against the spec's field tables (tests/roaming/ocpi_rules.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.customers.models import Token, TokenSource, TokenType, WhitelistType
from apps.roaming import services
from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import RoamingPartner
from apps.roaming.ocpi.client import authorization
from apps.tenants.models import Tenant
from tests.customers.factories import ContractFactory, DriverFactory, TokenFactory
from tests.roaming.emsp_tokens_rig import cpo_registered, tokens_url
from tests.roaming.factories import partner_for
from tests.roaming.test_cpo_locations import assert_valid
from tests.roaming.test_credentials import assert_envelope
from tests.stations.factories import LocationFactory

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


@pytest.fixture
def cpo() -> Iterator[CpoSimulator]:
    simulator = CpoSimulator(country_code="NL", party_id="CPO").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, tenant_a: Tenant, cpo: CpoSimulator) -> RoamingPartner:
    return cpo_registered(ocpi_base, tenant_a, cpo)


def get(cpo: CpoSimulator, url: str) -> dict[str, Any]:
    response = cpo.call("GET", url)
    body = assert_envelope(response, 200, 1000)
    body["headers"] = response.headers
    return body


def test_version_details_list_the_tokens_sender_for_a_cpo_partner(
    ocpi_base: str, partner: RoamingPartner, cpo: CpoSimulator
) -> None:
    endpoints = {(e["identifier"], e["role"]): e["url"] for e in cpo.peer_endpoints}
    assert endpoints[("tokens", "SENDER")] == f"{ocpi_base}/ocpi/emsp/2.2.1/tokens"
    assert ("tokens", "RECEIVER") not in endpoints  # we play eMSP only towards this partner


def test_the_list_is_our_tenants_own_tokens_as_ocpi_tokens_of_our_party(
    ocpi_base: str, partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    rfid = TokenFactory(
        tenant=tenant_a,
        uid="04A1B2C3D4E5F6",
        contract_id="DE-ALP-C12345678-X",
        visual_number="DE-ALP-C12345678-X",
        issuer="Alpha Charge Card",
        group_id="GROUP-1",
        language="de",
        default_profile_type="GREEN",
        energy_contract_supplier_name="Stadtwerke",
        energy_contract_id="SW-1",
        whitelist=WhitelistType.ALWAYS,
    )
    app = TokenFactory(
        tenant=tenant_a,
        uid="bdf21bce-fc97-11e8-8eb2-f2801f1b9fd1",
        type=TokenType.APP_USER,
        contract_id="",
        issuer="",
        whitelist=WhitelistType.NEVER,
    )
    ad_hoc = TokenFactory(tenant=tenant_a, uid="ADHOC-1", type=TokenType.AD_HOC_USER, whitelist=WhitelistType.NEVER)
    TokenFactory(tenant=tenant_b, uid="BETA-CARD")  # another tenant's
    TokenFactory(tenant=tenant_a, uid="NLSIM0001", source=TokenSource.ROAMING, country_code="NL", party_id="SIM")

    body = get(cpo, tokens_url(cpo))

    by_uid = {t["uid"]: t for t in body["data"]}
    assert sorted(by_uid) == sorted([rfid.uid, app.uid, ad_hoc.uid])
    for document in body["data"]:
        assert_valid("mod_tokens_token_object", document)
        assert (document["country_code"], document["party_id"]) == ("DE", "ALP")
    rfid.refresh_from_db()
    assert by_uid[rfid.uid] == {
        "country_code": "DE",
        "party_id": "ALP",
        "uid": "04A1B2C3D4E5F6",
        "type": "RFID",
        "contract_id": "DE-ALP-C12345678-X",
        "visual_number": "DE-ALP-C12345678-X",
        "issuer": "Alpha Charge Card",
        "group_id": "GROUP-1",
        "valid": True,
        "whitelist": "ALWAYS",
        "language": "de",
        "default_profile_type": "GREEN",
        "energy_contract": {"supplier_name": "Stadtwerke", "contract_id": "SW-1"},
        "last_updated": rfid.updated_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    # an app token without eMAID or issuer: its uid as contract_id (unique here), the tenant's name as issuer
    assert by_uid[app.uid]["contract_id"] == app.uid
    assert by_uid[app.uid]["issuer"] == "Alpha Charge"
    assert (by_uid[app.uid]["type"], by_uid[app.uid]["whitelist"]) == ("APP_USER", "NEVER")
    assert by_uid[ad_hoc.uid]["type"] == "AD_HOC_USER"
    assert body["headers"]["X-Total-Count"] == "3"
    assert body["headers"]["OCPI-from-party-id"] == "ALP"


def test_valid_and_whitelist_never_let_a_cpo_accept_what_our_chargers_refuse(
    ocpi_base: str, partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant
) -> None:
    now = timezone.now()
    restricted = ContractFactory(tenant=tenant_a)
    restricted.allowed_locations.set([LocationFactory(tenant=tenant_a)])
    windows = ContractFactory(
        tenant=tenant_a, time_windows=[{"days_of_week": [1], "start_time": "07:00", "end_time": "09:00"}]
    )
    future = ContractFactory(tenant=tenant_a, valid_from=now + dt.timedelta(days=3))
    ending = ContractFactory(tenant=tenant_a, valid_until=now + dt.timedelta(days=3))
    parent = TokenFactory(tenant=tenant_a, uid="PARENT", blocked=True)
    cases = {
        "PLAIN": ({}, True, "ALWAYS"),
        "BLOCKED": ({"blocked": True}, False, "ALWAYS"),
        "INVALIDATED": ({"valid": False}, False, "ALWAYS"),
        "EXPIRED": ({"expires_at": now - dt.timedelta(days=1)}, False, "ALLOWED_OFFLINE"),
        "EXPIRING": ({"expires_at": now + dt.timedelta(days=1)}, True, "ALLOWED_OFFLINE"),
        "NO-CREDIT": ({"driver": DriverFactory(tenant=tenant_a, credit_blocked=True)}, False, "ALWAYS"),
        "DRIVER-GONE": ({"driver": DriverFactory(tenant=tenant_a, is_active=False)}, False, "ALWAYS"),
        "IN-GROUP": ({"group_id": "parent"}, False, "ALWAYS"),
        "SOME-PLACES": ({"business_contract": restricted}, True, "NEVER"),
        "SOME-HOURS": ({"business_contract": windows}, True, "NEVER"),
        "NOT-YET": ({"business_contract": future}, True, "NEVER"),
        "ENDING": ({"business_contract": ending}, True, "ALLOWED_OFFLINE"),
    }
    for uid, (fields, _, _) in cases.items():
        if "business_contract" in fields:
            fields["business_customer"] = fields["business_contract"].business_customer
        TokenFactory(tenant=tenant_a, uid=uid, whitelist=WhitelistType.ALWAYS, **fields)

    body = get(cpo, tokens_url(cpo))

    found = {t["uid"]: (t["valid"], t["whitelist"]) for t in body["data"] if t["uid"] != parent.uid}
    assert found == {uid: (valid, whitelist) for uid, (_, valid, whitelist) in cases.items()}


def _walk(cpo: CpoSimulator, url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    pages = []
    next_url: str | None = url
    while next_url:
        page = get(cpo, next_url)
        pages.append(page)
        items.extend(page["data"])
        link = page["headers"].get("Link")
        next_url = LINK.match(link).group(1) if link else None  # type: ignore[union-attr]
        assert len(pages) < 50
    return items, pages


def test_pages_follow_link_headers_in_last_updated_order_with_date_filters(
    ocpi_base: str, partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant
) -> None:
    tokens = [TokenFactory(tenant=tenant_a, uid=f"PAGE-{n:02d}") for n in range(7)]
    base = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for n, token in enumerate(tokens):  # two share each minute: the order falls back on the id
        Token.objects.filter(pk=token.pk).update(updated_at=base + dt.timedelta(minutes=n // 2))

    items, pages = _walk(cpo, f"{tokens_url(cpo)}?limit=3")

    assert [t["uid"] for t in items] == [f"PAGE-{n:02d}" for n in range(7)]
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    assert all(p["headers"]["X-Total-Count"] == "7" and p["headers"]["X-Limit"] == "3" for p in pages)
    second = urlsplit(LINK.match(pages[0]["headers"]["Link"]).group(1))  # type: ignore[union-attr]
    assert parse_qs(second.query) == {"offset": ["3"], "limit": ["3"]}

    window = f"{tokens_url(cpo)}?date_from=2026-03-01T00:01:00Z&date_to=2026-03-01T00:03:00Z&limit=2"
    items, pages = _walk(cpo, window)
    assert [t["uid"] for t in items] == ["PAGE-02", "PAGE-03", "PAGE-04", "PAGE-05"]
    assert "date_from=2026-03-01T00%3A01%3A00Z" in pages[0]["headers"]["Link"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=ten", "limit must be a non-negative integer"),
        ("offset=-1", "offset must be a non-negative integer"),
        ("date_from=yesterday", "date_from must be an RFC 3339 DateTime"),
        ("country=DE", "Unknown query parameter"),
    ],
)
def test_bad_list_parameters_are_2001(
    ocpi_base: str, partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant, query: str, message: str
) -> None:
    TokenFactory(tenant=tenant_a)
    body = assert_envelope(cpo.call("GET", f"{tokens_url(cpo)}?{query}"), 200, 2001)
    assert message in body["status_message"]


def test_a_partner_of_another_tenant_sees_only_its_tenants_tokens(
    ocpi_base: str, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    TokenFactory(tenant=tenant_a, uid="ALPHA-CARD")
    TokenFactory(tenant=tenant_b, uid="BETA-CARD")
    first, second = CpoSimulator(party_id="CPA").start(), CpoSimulator(party_id="CPB").start()
    try:
        cpo_registered(ocpi_base, tenant_a, first)
        cpo_registered(ocpi_base, tenant_b, second)
        assert [t["uid"] for t in get(first, tokens_url(first))["data"]] == ["ALPHA-CARD"]
        assert [(t["uid"], t["party_id"]) for t in get(second, tokens_url(second))["data"]] == [("BETA-CARD", "BET")]
    finally:
        first.stop()
        second.stop()


def test_a_partner_we_are_not_emsp_for_gets_no_tokens(ocpi_base: str, tenant_a: Tenant) -> None:
    """An eMSP partner (we are its CPO) with the tokens module: it pushes tokens to us, it never reads ours."""
    TokenFactory(tenant=tenant_a, uid="ALPHA-CARD")
    emsp = CpoSimulator(party_id="EMP").start()
    try:
        cpo_registered(ocpi_base, tenant_a, emsp, our_roles=["CPO"])
        response = emsp.call("GET", f"{ocpi_base}/ocpi/emsp/2.2.1/tokens")
        body = assert_envelope(response, 404, 2000)
        assert "data" not in body or body["data"] is None
    finally:
        emsp.stop()


def _queries_for_page(partner: RoamingPartner, token: str, limit: int) -> tuple[int, int]:
    client = Client()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(
            f"/ocpi/emsp/2.2.1/tokens?limit={limit}", HTTP_AUTHORIZATION=authorization(token, partner.token_style)
        )
    assert response.status_code == 200, response.content
    return len(response.json()["data"]), len(captured.captured_queries)


def test_a_page_costs_the_same_queries_whatever_its_size(tenant_a: Tenant, db: None) -> None:
    """No N+1: account, contract, restricted locations and the group's parent come with the page's one query."""
    partner, _ = partner_for(
        tenant_a, roles=["CPO"], our_roles=["EMSP"], enabled_modules=["tokens"], country_code="NL", party_id="CPO"
    )
    # registered as the handshake leaves it (our token C is what they call us with)
    partner, token_c = services.partner_registered(
        partner_id=partner.pk,
        their_token="their-token",
        their_token_kind="B",
        credentials_roles=[{"role": "CPO", "country_code": "NL", "party_id": "CPO"}],
        versions_url="http://127.0.0.1:9/versions",
        version="2.2.1",
        endpoints=[],
        new_our_token_kind="C",
        expect_status="pending",
    )
    assert token_c is not None
    contract = ContractFactory(tenant=tenant_a)
    contract.allowed_locations.set([LocationFactory(tenant=tenant_a)])
    for n in range(40):
        TokenFactory(
            tenant=tenant_a,
            uid=f"Q-{n:02d}",
            driver=DriverFactory(tenant=tenant_a),
            business_customer=contract.business_customer,
            business_contract=contract,
            group_id="Q-00",
        )
    small = _queries_for_page(partner, token_c, 5)
    large = _queries_for_page(partner, token_c, 40)
    assert (small[0], large[0]) == (5, 40)
    assert small[1] == large[1], (small, large)
    assert large[1] <= 5
