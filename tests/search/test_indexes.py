"""The search's SQL runs on the indexes the migration installed (the expressions must agree), and the highlighting."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.search.highlight import mark
from apps.search.kinds import KINDS
from apps.search.selectors import search

pytestmark = pytest.mark.django_db


def test_every_identifier_and_text_kind_has_its_indexes() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexdef FROM pg_indexes WHERE indexname LIKE 'search\\_%%'")
        indexes = cursor.fetchall()
    for kind in KINDS:
        defs = [d for table, d in indexes if table == kind.table]
        for column in kind.identifiers:
            assert any(f'search_norm(({column})::text) COLLATE "C"' in d for d in defs), (kind.name, column, defs)
        if kind.text:
            assert any("gin (search_names gin_trgm_ops)" in d for d in defs), kind.name
            assert any("gin (search_document)" in d for d in defs), kind.name


@pytest.mark.parametrize("query", ["ALP-HUB-0001", "Jürgen Müller", "Muler", "42", "gorlitzer str"])
def test_no_searched_table_is_read_in_full(query: str, tenant_a: object) -> None:
    # with every access path but bitmap scans priced out, a scan without an index condition is one no index serves
    with CaptureQueriesContext(connection) as captured:
        search(query=query, tenant_ids=None)  # no tenant condition: the tenant_id index could hide a full scan
    (sql,) = [q["sql"] for q in captured.captured_queries if "UNION ALL" in q["sql"]]
    with transaction.atomic(), connection.cursor() as cursor:
        for path in ("seqscan", "indexscan", "indexonlyscan"):  # leaves bitmap scans, which need a condition
            cursor.execute(f"SET LOCAL enable_{path} = off")
        cursor.execute("SET LOCAL pg_trgm.word_similarity_threshold = 0.4")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        (plan,) = cursor.fetchone()
    unbounded = [
        (n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _scans(plan[0]["Plan"]) if _unbounded(n)
    ]
    assert unbounded == []


def _scans(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node] if "Relation Name" in node or "Index Name" in node else []
    for child in node.get("Plans", []):
        found += _scans(child)
    return found


def _unbounded(node: dict[str, Any]) -> bool:
    """A scan that reads a whole table or index: PostgreSQL plans one (even disabled) only when no index serves."""
    return node["Node Type"] != "Bitmap Heap Scan" and "Index Cond" not in node


@pytest.mark.parametrize(
    ("text", "query", "html"),
    [
        ("Jürgen Müller", "muller", "Jürgen <mark>Müller</mark>"),
        ("Görlitzer Straße 12", "gorlitzer", "<mark>Görlitzer</mark> Straße 12"),
        ("ALP-HUB-0001", "alp-hub", "<mark>ALP-HUB</mark>-0001"),
        ("Mia <b>Keller</b>", "keller", "Mia &lt;b&gt;<mark>Keller</mark>&lt;/b&gt;"),
        ("Anna Schmidt", "Schmitd", "Anna <mark>Schmidt</mark>"),
        ("Anna Schmidt", "zzz", "Anna Schmidt"),
        ("", "x", ""),
    ],
)
def test_highlighting(text: str, query: str, html: str) -> None:
    assert mark(text, query) == html


def test_the_planner_settings_of_the_search_do_not_outlive_it(tenant_a: object) -> None:
    # inside a caller's transaction (the tests run in one), the search's SET LOCALs would last to its end
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = on")
        search(query="Müller", tenant_ids={1})
        cursor.execute("SELECT current_setting('enable_seqscan'), current_setting('pg_trgm.word_similarity_threshold')")
        assert cursor.fetchone() == ("on", "0.6")
