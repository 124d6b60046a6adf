"""The local Hubject (apps/roaming/oicp/hub_sim.py) over real HTTPS with mutual TLS: a CA made per test, the hub's
server certificate for 127.0.0.1, client certificates for a CPO and an EMP."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.roaming.oicp import schema
from apps.roaming.oicp.hub_sim import CertPair, HubSimulator, LocalCA
from apps.stations.models import ChargePoint, Connector, Location
from apps.tenants.models import Tenant
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory, LocationFactory

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


def hubject_site(tenant_a: Tenant) -> dict[str, Any]:
    """A published location with a charger of two EVSEs of our OperatorID (DE*ABC) and one of another operator."""
    location = LocationFactory(
        tenant=tenant_a,
        name="Parkhaus Mitte",
        address="Energiestraße 12a",
        postal_code="10115",
        city="Berlin",
        country="DE",
        latitude=Decimal("52.520008"),
        longitude=Decimal("13.404954"),
        parking_type=Location.ParkingType.PARKING_GARAGE,
    )
    charge_point = ChargePointFactory(tenant=tenant_a, location=location, identity="CP-HBS-1", vendor="Alpitronic")
    ChargePoint.objects.filter(pk=charge_point.pk).update(online=True)
    ac = EvseFactory(charge_point=charge_point, connector_id=1, evse_uid="DE*ABC*E1001*1", status="Available")
    ConnectorFactory(evse=ac, power_type=Connector.PowerType.AC_3_PHASE, max_voltage=230, max_amperage=32)
    dc = EvseFactory(charge_point=charge_point, connector_id=2, evse_uid="DE*ABC*E1001*2", status="Charging")
    ConnectorFactory(
        evse=dc,
        standard=Connector.Standard.IEC_62196_T2_COMBO,
        format=Connector.Format.CABLE,
        power_type=Connector.PowerType.DC,
        max_voltage=920,
        max_amperage=400,
        max_electric_power=300_000,
    )
    foreign = EvseFactory(charge_point=charge_point, connector_id=3, evse_uid="DE*XYZ*E77*1")
    return {"location": location, "charge_point": charge_point, "ac": ac, "dc": dc, "foreign": foreign}
