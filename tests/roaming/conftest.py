"""OCPI tests over real HTTP: the platform served by this process's daphne (tests/asgi_server.py) and the partner
simulator (apps/roaming/partner_sim.py) on its own port, each calling the other."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.roaming.partner_sim import PartnerSimulator
from tests.asgi_server import DaphneThread


@pytest.fixture
def ocpi_base(transactional_db: None, daphne: DaphneThread, settings: object) -> str:
    base = f"http://127.0.0.1:{daphne.port}"
    settings.OCPI_BASE_URL = base  # type: ignore[attr-defined]  # what the admin/API handshake sends as ours
    return base


@pytest.fixture
def sim() -> Iterator[PartnerSimulator]:
    simulator = PartnerSimulator(country_code="NL", party_id="SIM").start()
    yield simulator
    simulator.stop()
