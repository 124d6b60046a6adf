"""The local Hubject (apps/roaming/oicp/hub_sim.py) over real HTTPS with mutual TLS: a CA made per test, the hub's
server certificate for 127.0.0.1, client certificates for a CPO and an EMP."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.roaming.oicp import schema
from apps.roaming.oicp.hub_sim import CertPair, HubSimulator, LocalCA

OPERATOR_ID = "DE*ABC"
PROVIDER_ID = "DE-DCB"


@pytest.fixture
def pki(tmp_path: Path) -> LocalCA:
    return LocalCA(tmp_path / "pki")


@dataclass
class Client:
    """A partner calling the hub with its client certificate."""

    hub: HubSimulator
    pair: CertPair | None
    ca_file: Path

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(
            self.hub.url + path,
            json=body,
            cert=self.pair.as_requests() if self.pair else None,
            verify=str(self.ca_file),
            timeout=20,
            **kwargs,
        )


@pytest.fixture
def hub(pki: LocalCA) -> Iterator[HubSimulator]:
    simulator = HubSimulator(
        ca_file=pki.ca_file,
        server=pki.issue("127.0.0.1", server=True),
        client_pair=pki.issue("hubject-hbs"),
        partner_verify=str(pki.ca_file),
    ).start()
    yield simulator
    simulator.stop()
    assert simulator.errors == []  # every answer and forward of the hub matched the files


@pytest.fixture
def cpo(hub: HubSimulator, pki: LocalCA) -> Client:
    hub.add_party("cpo.voltnet", operator_id=OPERATOR_ID)
    return Client(hub, pki.issue("cpo.voltnet"), pki.ca_file)


@pytest.fixture
def emp(hub: HubSimulator, pki: LocalCA) -> Client:
    hub.add_party("emp.fjord", provider_id=PROVIDER_ID)
    return Client(hub, pki.issue("emp.fjord"), pki.ca_file)


def example(side: schema.Side, name: str) -> dict[str, Any]:
    return copy.deepcopy(schema.spec(side)["components"]["schemas"][name]["example"])


def evse_record(evse_id: str, **changes: Any) -> dict[str, Any]:
    """Hubject's own EvseDataRecord example, for one of our EVSEs."""
    record = example("cpo", "eRoamingPushEvseData")["OperatorEvseData"]["EvseDataRecord"][0]
    record.pop("deltaType")
    record.pop("lastUpdate")
    record.update(EvseID=evse_id, **changes)
    return record


def push_evse_data(action: str, *records: dict[str, Any], operator_id: str = OPERATOR_ID) -> dict[str, Any]:
    return {
        "ActionType": action,
        "OperatorEvseData": {"OperatorID": operator_id, "OperatorName": "Voltnet", "EvseDataRecord": list(records)},
    }
