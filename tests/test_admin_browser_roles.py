"""Every admin page in Chromium as each of a tenant's other staff roles (tests/admin_walk.py), at 1280 and 1440 px:
the tenant admin (every page the tenant has, with its write forms), finance and read-only (what their role lets them
see: other pages, other buttons, other inlines than the operations user's walk in tests/test_admin_browser.py).
One served world for the three, so the history is built once."""

from __future__ import annotations

from tests.admin_walk import MARKS, served, walk

pytestmark = MARKS
__all__ = ["served"]


def test_every_admin_list_and_page_in_chromium_as_each_other_staff_role(served: str) -> None:
    problems: list[str] = []
    pages = {}
    for role in ("admin", "finance", "read_only"):
        pages[role], found = walk(served, role)
        problems += found
    assert problems == [], "\n".join(problems)
    # each walk reached its role's pages (an index that linked nothing would pass above)
    assert pages["admin"] >= 130, pages
    assert min(pages.values()) >= 60, pages
