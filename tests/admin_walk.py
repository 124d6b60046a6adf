"""The admin walk in a real browser: Debian's Chromium driven by Playwright, against a real daphne process serving
the test database, filled with a tenant's full history (tests/history_world.py: a row of every model).

For a user at a width in a language (`walk`), the walker opens every list the admin index links to (the ops
dashboard among them) and the first object of each list, every command form of a charge point and the site load
view, and reports any console error, any failed request (or an answer of 400 or more), any element wider than the
window, and any text squeezed into a column narrower than 80 px (a table cell of four characters or more, under
80 px wide, whose text breaks onto a second line: the "one letter per line" of a squeezed form).

Full-page screenshots go to `.data/screens/` when `ADMIN_WALK_SCREENS=1` (look at them): they cost a third of
the walk's time, and the checks above do not need them, so `make test` takes none."""

from __future__ import annotations

import os
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

SHOTS = os.environ.get("ADMIN_WALK_SCREENS") == "1"

# the marks of a test module that walks
MARKS = [
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


# a tenant's staff, one user per role (walk name -> role); the superuser is the platform's
STAFF = {"ops": Role.OPERATIONS, "admin": Role.ADMIN, "finance": Role.FINANCE, "read_only": Role.READ_ONLY}
USERS = {**{name: f"walk-{name}" for name in STAFF}, "superuser": "walk-root"}


@pytest.fixture
def served(transactional_db: None) -> Iterator[str]:
    """A tenant's full history, a user of each staff role and the platform superuser, and a real daphne process
    serving the project against this test's database."""
    world = build_world(TenantFactory(slug="walk", name="Walk Charge", timezone="Europe/Berlin"))
    for name, role in STAFF.items():
        user = User.objects.create_user(username=USERS[name], password=PASSWORD, is_staff=True)
        Membership.objects.create(user=user, tenant=world.tenant, role=role)
    User.objects.create_superuser(username=USERS["superuser"], password=PASSWORD, email="root@walk.example")
    with daphne_process() as base:
        yield base


class Walk:
    """One browser context (a user in a language) and what went wrong on each page, at each width."""

    def __init__(self, page: Any, base: str, name: str, widths: tuple[int, ...]) -> None:
        self.page = page
        self.base = base
        self.name = name
        self.widths = widths
        self.current = ""
        self.problems: list[str] = []
        self.pages = 0
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
        """Open the page at the narrowest width, check it, then widen the window and check it again (the layout
        is recomputed in place: one request per page, every width checked)."""
        self.current = path
        if self.page.viewport_size["width"] != self.widths[0]:
            self.page.set_viewport_size({"width": self.widths[0], "height": 900})
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None
        self.page.wait_for_timeout(150)  # scripts that run after load (charts, the live socket) have their turn
        for index, width in enumerate(self.widths):
            if index:
                self.page.set_viewport_size({"width": width, "height": 900})
                self.page.wait_for_timeout(30)  # resize handlers (charts) have their turn
            found = self.page.evaluate(TOO_WIDE)
            if found["wide"] or found["scroll"] > 0:
                self.problems.append(f"{path} at {width} px: wider than the window: {found}")
            squeezed = self.page.evaluate(SQUEEZED)
            if squeezed:
                self.problems.append(f"{path} at {width} px: text in a column narrower than 80 px: {squeezed}")
            if SHOTS:
                slug = re.sub(r"[^a-z0-9]+", "-", f"{label}".lower()).strip("-")
                self.page.screenshot(path=str(SCREENS / f"{self.name}-{width}-{slug}.png"), full_page=True)
        self.pages += 1


def _lists(page: Any) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "#content-main a[href^='/admin/']", "links => links.map(a => a.getAttribute('href'))"
    )
    return sorted({href for href in hrefs if re.fullmatch(r"/admin/[a-z_]+/[a-z_]+/", href)})


def _first_object(page: Any) -> str | None:
    link = page.query_selector("#result_list tbody tr a[href^='/admin/']")
    return link.get_attribute("href") if link is not None else None


def _console_pages(page: Any, base: str) -> list[tuple[str, str]]:
    """The pages no list links to: every command form the first charge point's page offers (none to a role that may
    not send commands: finance, read-only), and each site's load view."""
    pages: list[tuple[str, str]] = []
    page.goto(f"{base}/admin/stations/chargepoint/")
    first = _first_object(page)
    assert first is not None
    page.goto(base + first)
    commands = page.eval_on_selector_all("a[href*='/command/']", "links => links.map(a => a.getAttribute('href'))")
    for href in sorted(set(commands)):
        action = href.rstrip("/").rsplit("/", 1)[-1]
        pages.append((href, f"command-{action.lower()}"))
    page.goto(f"{base}/admin/energy/gridnode/")
    loads = page.eval_on_selector_all("a[href$='/load/']", "links => links.map(a => a.getAttribute('href'))")
    assert loads, "no site load view linked from the grid nodes"
    pages += [(href, "site-load") for href in sorted(set(loads))[:1]]
    return pages


def walk(base: str, role: str, widths: tuple[int, ...] = WIDTHS, locale: str = "en-US") -> tuple[int, list[str]]:
    """Log in as the role's user in the browser's language and walk every page at each width: (pages, problems)."""
    from playwright.sync_api import sync_playwright

    name = f"{role}-{locale[:2]}"
    if SHOTS:
        SCREENS.mkdir(parents=True, exist_ok=True)
        for old in SCREENS.glob(f"{name}-*.png"):
            old.unlink()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            context = browser.new_context(
                viewport={"width": widths[0], "height": 900}, timezone_id="Europe/Berlin", locale=locale
            )
            page = context.new_page()
            walker = Walk(page, base, name, widths)
            walker.current = "/admin/login/"
            page.goto(f"{base}/admin/login/")
            page.fill("#id_username", USERS[role])
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base}/admin/")
            walker.visit("/admin/", "index")
            if locale == "de-DE":  # the browser's language, no choice made: the console answers in German
                assert page.get_attribute("html", "lang") == "de"
                assert "Ladepunkte" in page.inner_text("#content-main")
            for path in _lists(page):
                walker.visit(path, path.replace("/admin/", "") + "list")
                first = _first_object(page)
                if first is not None:
                    walker.visit(first, path.replace("/admin/", "") + "change")
            for path, label in _console_pages(page, base):
                walker.visit(path, label)
            context.close()
        finally:
            browser.close()
    return walker.pages, [f"{role} ({locale}): {problem}" for problem in walker.problems]
