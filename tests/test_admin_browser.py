"""Every admin page in Chromium as a tenant's operations user (tests/admin_walk.py): at 1280 and 1440 px, and once
more in German at 1280 px (German labels are the longest of the shipped languages: they must fit too). The
superuser's walk is tests/test_admin_browser_superuser.py, a file of its own so that the two run on different
workers."""

from __future__ import annotations

import pytest

from tests.admin_walk import MARKS, served, walk

pytestmark = MARKS
__all__ = ["served"]


@pytest.mark.parametrize(("widths", "locale"), [((1280, 1440), "en-US"), ((1280,), "de-DE")], ids=["en", "de"])
def test_every_admin_list_and_page_in_chromium_as_operations(served: str, widths: tuple[int, ...], locale: str) -> None:
    pages, problems = walk(served, "ops", widths, locale)
    assert problems == [], "\n".join(problems)
    # the walk reached the pages (an index that linked nothing would pass above): lists and their objects
    assert pages >= 130, pages
