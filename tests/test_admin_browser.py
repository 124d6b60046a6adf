"""Every admin page in a real browser: Debian's Chromium driven by Playwright, against a real daphne process serving
the test database, filled with a tenant's full history (tests/history_world.py: a row of every model).

For a tenant's operations user and for the platform superuser, at 1280 and 1440 px, the walker opens every list the
admin index links to (the ops dashboard among them) and the first object of each list, every command form of a
charge point and the site load view, and fails on any console error, any failed request (or an answer of 400 or
more), any element wider than the window, and any text squeezed into a column narrower than 80 px (a table cell
of four characters or more, under 80 px wide, whose text breaks onto a second line: the "one letter per line"
of a squeezed form). Screenshots go to `.data/screens/` (look at them)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.tenants.models import Membership, Role, User
from tests.daphne_process import daphne_process
from tests.history_world import build_world
from tests.tenants.factories import TenantFactory

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENS = ROOT / ".data" / "screens"
WIDTHS = (1280, 1440)
PASSWORD = "console-walk-2026"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium"
    ),
    pytest.mark.slow,
]

# elements wider than the window, and whether the page scrolls sideways (run in the page)
TOO_WIDE = """() => {
    const limit = window.innerWidth;
    const wide = [];
    for (const el of document.querySelectorAll('body *')) {
        const box = el.getBoundingClientRect();
        if (box.width > limit + 1) {
            const classes = typeof el.className === 'string' ? el.className.trim().split(/\\s+/).join('.') : '';
            const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (classes ? '.' + classes : '');
            wide.push(`${name} ${Math.round(box.width)}px`);
        }
    }
    return {wide: wide.slice(0, 5), scroll: document.documentElement.scrollWidth - limit};
}"""

# table cells whose text is squeezed into a column narrower than 80 px (run in the page)
SQUEEZED = """() => {
    const squeezed = [];
    for (const cell of document.querySelectorAll('#content td, #content th')) {
        const text = cell.innerText.trim();
        const box = cell.getBoundingClientRect();
        if (text.length < 4 || box.width === 0 || box.width >= 80) continue;
        const lines = new Set();  // the tops of the text's line boxes (text nodes only: not icons or sort links)
        const texts = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = texts.nextNode(); node; node = texts.nextNode()) {
            if (!node.textContent.trim()) continue;
            const range = document.createRange();
            range.selectNodeContents(node);
            for (const r of range.getClientRects()) if (r.width > 0) lines.add(Math.round(r.top));
        }
        if (lines.size > 1) squeezed.push(`${text.slice(0, 30)} (${Math.round(box.width)}px, ${lines.size} lines)`);
    }
    return squeezed.slice(0, 5);
}"""


@pytest.fixture
def served(transactional_db: None) -> Iterator[str]:
    """A real daphne process serving the project against this test's database."""
    with daphne_process() as base:
        yield base


def _people() -> list[tuple[str, str]]:
    world = build_world(TenantFactory(slug="walk", name="Walk Charge", timezone="Europe/Berlin"))
    ops = User.objects.create_user(username="walk-ops", password=PASSWORD, is_staff=True)
    Membership.objects.create(user=ops, tenant=world.tenant, role=Role.OPERATIONS)
    User.objects.create_superuser(username="walk-root", password=PASSWORD, email="root@walk.example")
    return [("walk-ops", "ops"), ("walk-root", "superuser")]


class Walk:
    """One browser context (a user at a width) and what went wrong on each page."""

    def __init__(self, page: Any, base: str, name: str) -> None:
        self.page = page
        self.base = base
        self.name = name
        self.current = ""
        self.problems: list[str] = []
        self.shots = 0
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"{self.current}: page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"{self.current}: console error: {message.text}")

    def _failed(self, request: Any) -> None:
        if request.failure == "net::ERR_ABORTED":
            return  # cancelled by the browser as the walk navigates on (e.g. a favicon still loading), not refused
        self.problems.append(f"{self.current}: request failed: {request.method} {request.url} ({request.failure})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{self.current}: {response.status} for {response.request.method} {response.url}")

    def visit(self, path: str, label: str) -> None:
        self.current = path
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None
        self.page.wait_for_timeout(150)  # scripts that run after load (charts, the live socket) have their turn
        width = self.page.evaluate(TOO_WIDE)
        if width["wide"] or width["scroll"] > 0:
            self.problems.append(f"{path}: wider than the window: {width}")
        squeezed = self.page.evaluate(SQUEEZED)
        if squeezed:
            self.problems.append(f"{path}: text in a column narrower than 80 px: {squeezed}")
        slug = re.sub(r"[^a-z0-9]+", "-", f"{label}".lower()).strip("-")
        self.page.screenshot(path=str(SCREENS / f"{self.name}-{slug}.png"), full_page=True)
        self.shots += 1


def _lists(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "#content-main a[href^='/admin/']", "links => links.map(a => a.getAttribute('href'))"
    )
    return sorted({href for href in hrefs if re.fullmatch(r"/admin/[a-z_]+/[a-z_]+/", href)})


def _first_object(page: Any) -> str | None:
    link = page.query_selector("#result_list tbody tr a[href^='/admin/']")
    return link.get_attribute("href") if link is not None else None


def _console_pages(page: Any, base: str) -> list[tuple[str, str]]:
    """The pages no list links to: every command form of the first charge point, and each site's load view."""
    from apps.stations.services import SERVER_ACTIONS

    pages: list[tuple[str, str]] = []
    page.goto(f"{base}/admin/stations/chargepoint/")
    first = _first_object(page)
    assert first is not None
    for action in SERVER_ACTIONS:
        pages.append((f"{first.removesuffix('change/')}command/{action}/", f"command-{action}"))
    page.goto(f"{base}/admin/energy/gridnode/")
    loads = page.eval_on_selector_all("a[href$='/load/']", "links => links.map(a => a.getAttribute('href'))")
    assert loads, "no site load view linked from the grid nodes"
    pages += [(href, "site-load") for href in sorted(set(loads))[:1]]
    return pages


def test_every_admin_list_and_page_in_chromium(served: str) -> None:
    from playwright.sync_api import sync_playwright

    people = _people()
    SCREENS.mkdir(parents=True, exist_ok=True)
    for old in SCREENS.glob("*.png"):
        old.unlink()
    problems: list[str] = []
    visited: dict[str, int] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            # every role at every width in English, and the operations user once more in German at 1280 px (German
            # labels are the longest of the shipped languages: they must fit too)
            runs = [(username, role, width, "en-US") for username, role in people for width in WIDTHS]
            runs += [(username, role, 1280, "de-DE") for username, role in people if role == "ops"]
            for username, role, width, locale in runs:
                context = browser.new_context(
                    viewport={"width": width, "height": 900}, timezone_id="Europe/Berlin", locale=locale
                )
                page = context.new_page()
                name = f"{role}-{width}" if locale == "en-US" else f"{role}-{width}-{locale[:2]}"
                walk = Walk(page, served, name)
                walk.current = "/admin/login/"
                page.goto(f"{served}/admin/login/")
                page.fill("#id_username", username)
                page.fill("#id_password", PASSWORD)
                page.click("input[type=submit]")
                page.wait_for_url(f"{served}/admin/")
                walk.visit("/admin/", "index")
                if locale == "de-DE":  # the browser's language, no choice made: the console answers in German
                    assert page.get_attribute("html", "lang") == "de"
                    assert "Ladepunkte" in page.inner_text("#content-main")
                lists = _lists(page)
                for path in lists:
                    walk.visit(path, path.replace("/admin/", "") + "list")
                    first = _first_object(page)
                    if first is not None:
                        walk.visit(first, path.replace("/admin/", "") + "change")
                for path, label in _console_pages(page, served):
                    walk.visit(path, label)
                problems += [f"{role} at {width} px: {problem}" for problem in walk.problems]
                visited[name] = walk.shots
                context.close()
        finally:
            browser.close()

    assert problems == [], "\n".join(problems)
    # the walk reached the pages (an index that linked nothing would pass above): lists and their objects
    assert visited["ops-1280"] >= 70, visited
    assert visited["superuser-1280"] > visited["ops-1280"], visited
    assert visited["ops-1280-de"] == visited["ops-1280"], visited
