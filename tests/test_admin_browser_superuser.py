"""Every admin page in Chromium as the platform superuser (tests/admin_walk.py), at 1280 and 1440 px: more lists
than a tenant's staff see (tenants, every tenant's rows, the platform's settings)."""

from __future__ import annotations

from tests.admin_walk import MARKS, served, walk

pytestmark = MARKS
__all__ = ["served"]


def test_every_admin_list_and_page_in_chromium_as_superuser(served: str) -> None:
    pages, problems = walk(served, "superuser")
    assert problems == [], "\n".join(problems)
    # more than the operations user's pages
    assert pages >= 140, pages
