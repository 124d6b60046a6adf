"""The charge point page is live (headless Chromium against a real daphne process): a status a charger reports
shows on the open page without a reload, with the frame it came in, through the tenant's live WebSocket group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.stations import services as station_services
from apps.tenants.models import Membership, Role, User
from tests.analytics.test_dashboard_browser import ARGS, CHROMIUM, _send_status
from tests.daphne_process import daphne_process
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory

SCREENS = Path(__file__).resolve().parents[2] / ".data" / "screens"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed: apt-get install -y chromium"),
    pytest.mark.slow,
]


@pytest.fixture
def daphne(transactional_db: None) -> Iterator[str]:
    with daphne_process() as base:
        yield base


def _charger() -> tuple[int, str, str]:
    tenant = TenantFactory(slug="live", name="Live Charge")
    cp, password = station_services.charge_point_register(
        tenant=tenant, identity="LIVE-CP-1", location=LocationFactory(tenant=tenant), heartbeat_interval=60
    )
    assert password is not None
    for n in (1, 2):
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*LIV*E1*{n}"))
        station_services.status_record(charge_point_id=cp.pk, connector_id=n, status="Available")
    user = User.objects.create_user(username="ops-live", password="pw-live-2026", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Role.OPERATIONS)
    return cp.pk, password, cp.identity


@pytest.mark.parametrize("width", [1280, 1440])
def test_a_status_the_charger_reports_shows_on_its_open_page(daphne: str, width: int) -> None:
    from playwright.sync_api import sync_playwright

    cp_id, password, identity = _charger()
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900}, timezone_id="Europe/Berlin")
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{daphne}/admin/login/?next=/admin/stations/chargepoint/{cp_id}/change/")
            page.fill("#id_username", "ops-live")
            page.fill("#id_password", "pw-live-2026")
            page.click("input[type=submit]")
            page.wait_for_url(f"**/admin/stations/chargepoint/{cp_id}/change/")
            page.wait_for_function(
                "document.getElementById('cp-live-state').textContent === 'connected'", timeout=15_000
            )
            page.wait_for_selector("#cp-live-conn-1[data-status='Available']", timeout=15_000)
            assert page.inner_text("#cp-live-connection") == "offline"
            page.evaluate("window.__not_reloaded = true")

            _send_status(daphne, identity, password, "Charging", "NoError")

            page.wait_for_selector("#cp-live-conn-1[data-status='Charging']", timeout=15_000)
            page.wait_for_function(
                "document.getElementById('cp-frames').textContent.includes('StatusNotification')", timeout=15_000
            )
            assert page.inner_text("#cp-live-conn-1") == "Connector 1: Charging"
            assert page.inner_text("#cp-live-updated").endswith("(Europe/Berlin)")
            assert page.evaluate("window.__not_reloaded") is True
            SCREENS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENS / f"charge-point-live-{width}.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
