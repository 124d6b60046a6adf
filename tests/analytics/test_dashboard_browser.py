"""End to end: the ops dashboard in headless Chromium (Debian's), served by a real daphne process against the
test database. The tiles fill, a chart is drawn, and a status change sent by a simulated OCPP charger to that
daphne shows on the open page without a reload (WebSocket /ws/dashboard/)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from apps.analytics import services
from apps.sessions import services as session_services
from apps.stations import services as station_services
from apps.tenants.models import Membership, Role, User
from tests.admin_walk import ARGS, CHROMIUM
from tests.customers.factories import TokenFactory
from tests.daphne_process import daphne_process
from tests.ocpp.conftest import open_charger
from tests.stations.factories import ConnectorFactory, EvseFactory, LocationFactory
from tests.tenants.factories import TenantFactory

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / ".data" / "dashboard.png"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed: apt-get install -y chromium"),
    pytest.mark.slow,
]


@pytest.fixture
def daphne(transactional_db: None) -> Iterator[str]:
    """A real daphne process serving the project against this test's database."""
    with daphne_process() as base:
        yield base


def _history() -> tuple[int, str, str]:
    tenant = TenantFactory(slug="dash", name="Dash Charge")
    location = LocationFactory(tenant=tenant, name="Depot Nord")
    charge_point, password = station_services.charge_point_register(
        tenant=tenant, identity="DASH-CP-1", location=location, heartbeat_interval=60
    )
    assert password is not None
    for n in (1, 2):
        ConnectorFactory(evse=EvseFactory(charge_point=charge_point, connector_id=n, evse_uid=f"DE*DSH*E1*{n}"))
        station_services.status_record(charge_point_id=charge_point.pk, connector_id=n, status="Available")
    TokenFactory(tenant=tenant, uid="DASHTAG")
    now = timezone.now()
    for hours_ago, energy in ((5, 12_400), (3, 8_100), (1, 21_000)):
        began = now - dt.timedelta(hours=hours_ago, minutes=40)
        session, _ = session_services.session_start(
            charge_point_id=charge_point.pk, connector_id=1, id_tag="DASHTAG", meter_start=0, timestamp=began
        )
        session_services.session_stop(
            charge_point_id=charge_point.pk,
            transaction_id=session.pk,
            meter_stop=energy,
            timestamp=began + dt.timedelta(minutes=30),
            reason="EVDisconnected",
        )
    services.rollup_run(lag=dt.timedelta(0))
    user = User.objects.create_user(username="ops-dash", password="pw-dash-2026", is_staff=True)
    Membership.objects.create(user=user, tenant=tenant, role=Role.OPERATIONS)
    return charge_point.pk, password, charge_point.identity


def _send_status(base: str, identity: str, password: str, status: str, error: str) -> None:
    """A simulated charger connects to daphne, boots and reports a status (in its own thread and loop)."""

    async def drive() -> None:
        charger = await open_charger(base.replace("http", "ws"), identity, password)
        try:
            await charger.ok("BootNotification", {"chargePointVendor": "SimCo", "chargePointModel": "Sim-22"})
            await charger.ok(
                "StatusNotification",
                {"connectorId": 1, "errorCode": error, "status": status},
            )
        finally:
            await charger.close()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(drive())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not failure, failure


def test_dashboard_live_in_chromium(daphne: str) -> None:
    from playwright.sync_api import sync_playwright

    cp_id, password, identity = _history()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
            page.goto(f"{daphne}/admin/login/?next=/admin/analytics/dashboard/")
            page.fill("#id_username", "ops-dash")
            page.fill("#id_password", "pw-dash-2026")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/analytics/dashboard/")
            page.wait_for_function("document.getElementById('ws-state').textContent === 'live'", timeout=15_000)

            tiles = {
                name: page.inner_text(f"#tile-{name}")
                for name in ("power", "active", "today", "month", "online", "faulted", "alerts")
            }
            assert "\u2013" not in tiles.values(), tiles  # the placeholder before data arrives
            assert tiles["month"] == "41.5 kWh"
            assert tiles["active"] == "0"
            drawn = page.evaluate(
                """() => {
                    const canvas = document.getElementById('chart-energy');
                    const chart = Chart.getChart(canvas);
                    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                    let painted = 0;
                    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                    return {painted, total: chart.data.datasets[0].data.reduce((a, b) => a + b, 0)};
                }"""
            )
            assert drawn["painted"] > 1000, drawn
            assert drawn["total"] == pytest.approx(41.5), drawn
            assert page.get_attribute(f"#conn-{cp_id}-1", "data-status") == "Available"
            # the charger links to its page; the counts axis has whole numbers; the success rate stands apart
            assert page.get_attribute(f"#cp-{cp_id} a", "href") == f"/admin/stations/chargepoint/{cp_id}/change/"
            ticks = page.evaluate(
                "() => Chart.getChart(document.getElementById('chart-sessions')).scales.y.ticks.map(t => t.value)"
            )
            assert ticks, ticks
            assert all(float(t).is_integer() for t in ticks), ticks
            assert (page.inner_text("#tile-success"), page.inner_text("#tile-success-sub")) == (
                "100 %",
                "3 of 3 sessions",
            )
            first_update = page.get_attribute("#updated", "data-at")
            assert page.inner_text("#updated").startswith("updated "), page.inner_text("#updated")
            assert page.inner_text("#updated").endswith("(Europe/Berlin)")
            page.evaluate("window.__not_reloaded = true")

            _send_status(daphne, identity, password, "Faulted", "GroundFailure")

            page.wait_for_selector(f"#conn-{cp_id}-1[data-status='Faulted']", timeout=15_000)
            assert page.inner_text(f"#conn-{cp_id}-1") == "1: Faulted (GroundFailure)"
            assert page.evaluate("window.__not_reloaded") is True
            page.wait_for_function("document.getElementById('tile-faulted').textContent === '1'", timeout=15_000)
            assert page.get_attribute("#updated", "data-at") != first_update  # the live update's time
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
