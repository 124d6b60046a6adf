"""Screenshots of the live demo (`make run`) as an operations user: the pages the demo is meant to show alive.

    .venv/bin/python scripts/demo_screens.py http://127.0.0.1:8000 [username] [password]

Saves `.data/screens/demo/<width>-<page>.png` at 1280 and 1440 px (Debian's /usr/bin/chromium via Playwright)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".data" / "screens" / "demo"
PAGES = [
    ("dashboard", "/admin/analytics/dashboard/"),
    ("charge-points", "/admin/stations/chargepoint/"),
    ("sessions", "/admin/charging/chargingsession/"),
    ("alerts", "/admin/analytics/alert/"),
    ("grid-nodes", "/admin/energy/gridnode/"),
    ("commands", "/admin/stations/command/"),
]


def main() -> None:
    base = sys.argv[1].rstrip("/")
    username = sys.argv[2] if len(sys.argv) > 2 else "voltnet-ops"
    password = sys.argv[3] if len(sys.argv) > 3 else "demo-password"
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"], headless=True
        )
        for width in (1280, 1440):
            page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
            page.goto(f"{base}/admin/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")
            pages = list(PAGES)
            page.goto(f"{base}/admin/energy/gridnode/?parent__isnull=True")
            site = page.query_selector("a[href$='/load/']")
            if site is not None:
                pages.append(("site-load", site.get_attribute("href") or ""))
            for name, listing in (
                ("charge-point", "/admin/stations/chargepoint/?q=SIM-01"),
                ("session", "/admin/charging/chargingsession/?status__exact=active"),
            ):
                page.goto(base + listing)
                first = page.query_selector("#result_list tbody tr a[href^='/admin/']")
                if first is not None:
                    pages.append((name, first.get_attribute("href") or ""))
            for name, path in pages:
                page.goto(base + path, wait_until="load")
                page.wait_for_timeout(1500)
                shot = OUT / f"{width}-{re.sub(r'[^a-z0-9-]', '', name)}.png"
                page.screenshot(path=str(shot), full_page=True)
                print(shot)
        browser.close()


if __name__ == "__main__":
    main()
