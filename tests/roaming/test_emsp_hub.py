"""A hub partner (mod_hub_client_info, routing headers of transport_and_format) over real HTTP: it tells us the
parties behind it (hubclientinfo Receiver: PUT/GET ClientInfo), and what it relays from them (OCPI-from-* naming a
CPO behind it) is taken as from a direct partner, stored on the hub partner under the CPO's own party."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import HubClientInfo, RoamingPartner
from apps.stations.models import PartnerLocation
from apps.tenants.models import Tenant
from tests.roaming import emsp_rig as rig


class HubSimulator(CpoSimulator):
    role = "HUB"


@pytest.fixture
def hub() -> Iterator[HubSimulator]:
    simulator = HubSimulator(country_code="DE", party_id="HUB", name="Simulated hub").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, hub: HubSimulator, tenant_a: Tenant) -> RoamingPartner:
    return rig.cpo_registered(
        ocpi_base, hub, tenant_a, roles=["HUB"], enabled_modules=[*rig.EMSP_MODULES, "hubclientinfo"]
    )


def client_info(country_code: str = "NL", party_id: str = "CPO", **fields: Any) -> dict[str, Any]:
    return {
        "country_code": country_code,
        "party_id": party_id,
        "role": "CPO",
        "status": "CONNECTED",
        "last_updated": "2026-01-01T00:00:00Z",
        **fields,
    }


def relayed(hub: HubSimulator, method: str, url: str, body: Any, sender: tuple[str, str]) -> requests.Response:
    """A request the hub relays from `sender` to our party (routing headers)."""
    headers = {
        "Authorization": hub.auth_header(hub.client_token),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": str(uuid.uuid4()),
        "OCPI-from-country-code": sender[0],
        "OCPI-from-party-id": sender[1],
        "OCPI-to-country-code": "DE",
        "OCPI-to-party-id": "ALP",
    }
    return requests.request(method, url, json=body, headers=headers, timeout=30)


def info_url(hub: HubSimulator, path: str) -> str:
    return f"{hub.peer_endpoint('hubclientinfo', 'RECEIVER')}{path}"


def test_the_hub_puts_and_gets_client_info(partner: RoamingPartner, hub: HubSimulator) -> None:
    answer = hub.call("PUT", info_url(hub, "/NL/CPO"), client_info())

    assert (answer.status_code, answer.json()["status_code"]) == (200, 1000), answer.text
    row = HubClientInfo.objects.get(partner=partner)
    assert (row.country_code, row.party_id, row.role, row.status) == ("NL", "CPO", "CPO", "CONNECTED")
    assert hub.call("GET", info_url(hub, "/NL/CPO")).json()["data"] == client_info()

    # the spec's own example has no last_updated: stamped on receipt, and it is newer
    example = {"country_code": "NL", "party_id": "CPO", "role": "CPO", "status": "SUSPENDED"}
    assert hub.call("PUT", info_url(hub, "/NL/CPO"), example).json()["status_code"] == 1000
    assert HubClientInfo.objects.get().status == "SUSPENDED"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/NL/CPO", client_info(status="ONLINE"), "client_info.status"),
        ("/NL/CPO", client_info(role="DRIVER"), "client_info.role"),
        ("/NL/CPO", client_info(party_id="OTH"), "differ from the URL"),
        ("/NL/CPO", client_info(last_updated="soon"), "client_info.last_updated"),
        ("/NL/CPO", [client_info()], "client_info"),
    ],
)
def test_bad_client_info_is_2001_and_changes_nothing(
    partner: RoamingPartner, hub: HubSimulator, path: str, body: Any, field: str
) -> None:
    hub.call("PUT", info_url(hub, "/NL/CPO"), client_info())
    before = list(HubClientInfo.objects.values_list())

    answer = hub.call("PUT", info_url(hub, path), body)

    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001), answer.text
    assert field in answer.json()["status_message"]
    assert list(HubClientInfo.objects.values_list()) == before


def test_only_a_hub_sends_client_info(ocpi_base: str, tenant_a: Tenant) -> None:
    cpo = CpoSimulator(country_code="NL", party_id="CPO").start()
    try:
        rig.cpo_registered(ocpi_base, cpo, tenant_a, enabled_modules=[*rig.EMSP_MODULES, "hubclientinfo"])
        answer = cpo.call("PUT", f"{ocpi_base}/ocpi/2.2.1/hubclientinfo/NL/CPO", client_info())
    finally:
        cpo.stop()

    assert (answer.status_code, answer.json()["status_code"]) == (404, 2000)
    assert not HubClientInfo.objects.exists()


def test_objects_relayed_by_the_hub_work_as_direct_ones(partner: RoamingPartner, hub: HubSimulator) -> None:
    hub.call("PUT", info_url(hub, "/NL/CPO"), client_info())
    body = {**rig.location(hub, "LOC1"), "country_code": "NL", "party_id": "CPO"}
    url = f"{hub.peer_endpoint('locations', 'RECEIVER')}/NL/CPO/LOC1"

    answer = relayed(hub, "PUT", url, body, ("NL", "CPO"))

    assert (answer.status_code, answer.json()["status_code"]) == (200, 1000), answer.text
    assert (answer.headers["OCPI-to-country-code"], answer.headers["OCPI-to-party-id"]) == ("NL", "CPO")
    assert (answer.headers["OCPI-from-country-code"], answer.headers["OCPI-from-party-id"]) == ("DE", "ALP")
    row = PartnerLocation.objects.get()
    assert (row.partner_id, row.country_code, row.party_id) == (partner.pk, "NL", "CPO")
    status = relayed(
        hub, "PATCH", f"{url}/EVSE1", {"status": "CHARGING", "last_updated": "2026-02-01T00:00:00Z"}, ("NL", "CPO")
    )
    assert status.json()["status_code"] == 1000
    assert row.evses.get().status == "CHARGING"


def test_a_party_the_hub_did_not_announce_is_refused(partner: RoamingPartner, hub: HubSimulator) -> None:
    hub.call("PUT", info_url(hub, "/NL/CPO"), client_info())
    body = {**rig.location(hub, "LOC1"), "country_code": "BE", "party_id": "XYZ"}
    url = f"{hub.peer_endpoint('locations', 'RECEIVER')}/BE/XYZ/LOC1"

    by_header = relayed(hub, "PUT", url, body, ("BE", "XYZ"))
    by_url = relayed(hub, "PUT", url, body, ("NL", "CPO"))

    for answer in (by_header, by_url):
        assert (answer.status_code, answer.json()["status_code"]) == (200, 2001), answer.text
    assert not PartnerLocation.objects.exists()
