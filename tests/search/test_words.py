"""The words table of the typo tier (`migrations/0004_search_words.py`): kept by the database, per tenant, filled
when migrated."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.db import connection, transaction

from apps.search import selectors
from apps.search.selectors import search
from apps.tenants.models import Tenant
from tests.customers.factories import DriverFactory
from tests.search.conftest import World
from tests.stations.factories import LocationFactory

pytestmark = pytest.mark.django_db

words_migration = importlib.import_module("apps.search.migrations.0004_search_words")


def _words(tenant: Tenant) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT word FROM search_word WHERE tenant_id = %s", [tenant.pk])
        return {word for (word,) in cursor.fetchall()}


def _forget_words() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM search_word")


def test_the_words_of_a_new_row_are_added_for_its_tenant_accents_and_case_ignored(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    DriverFactory(tenant=tenant_a, first_name="Zoë", last_name="Østergård-Nüßler", email="zoe@example.com")
    LocationFactory(tenant=tenant_a, name="Ladepark 42", address="Kirchplatz 7", city="Göttingen")

    words = _words(tenant_a)

    assert {"zoe", "ostergard", "nussler", "ladepark", "kirchplatz", "gottingen"} <= words
    assert not {w for w in words if any(c.isdigit() for c in w)}  # identifiers and numbers are looked up as they are
    assert not {"zoe", "ostergard", "kirchplatz"} & _words(tenant_b)


def test_a_rename_adds_the_new_words_and_other_updates_do_not_touch_the_table(tenant_a: Tenant) -> None:
    driver = DriverFactory(tenant=tenant_a, first_name="Mia", last_name="Keller", email="mia@example.com")
    _forget_words()

    driver.email = "mia.keller@example.com"  # the names stay: the row trigger's WHEN is false
    driver.save()
    unchanged = _words(tenant_a)
    driver.last_name = "Quellmalz"
    driver.save()

    assert unchanged == set()
    assert _words(tenant_a) == {"mia", "quellmalz"}


def test_the_migration_fills_the_words_of_existing_rows(worlds: tuple[World, World]) -> None:
    world_a, world_b = worlds
    before = (_words(world_a.tenant), _words(world_b.tenant))
    _forget_words()

    with connection.cursor() as cursor:
        cursor.execute(words_migration.fill_sql())

    assert (_words(world_a.tenant), _words(world_b.tenant)) == before
    assert {"jurgen", "muller", "stadtwerke", "gorlitzer", "alfen"} <= before[0]


def test_a_misspelt_name_is_found_through_look_alike_words_of_its_own_tenant(
    tenant_a: Tenant, tenant_b: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one look-alike per query word: another tenant's closer word ("brandstatter", similarity 0.79 to the query's
    # "brandstater") must not take the place of this tenant's "brandstetter" (0.56), or no row would have
    # look-alike words and the trigram index of every name would be read instead
    monkeypatch.setattr(selectors, "ALIKE_WORDS", 1)
    mine = DriverFactory(tenant=tenant_a, first_name="Lukas", last_name="Brandstetter", email="lb@example.com")
    DriverFactory(tenant=tenant_b, first_name="Lukas", last_name="Brandstätter", email="lb@example.com")
    sent: list[str] = []
    prepared_cursor = selectors._prepared_cursor

    class Recording:
        def __init__(self, cursor: Any) -> None:
            self.cursor = cursor

        def execute(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
            sent.append(sql)
            return self.cursor.execute(sql, params, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.cursor, name)

    monkeypatch.setattr(selectors, "_prepared_cursor", lambda django_cursor: Recording(prepared_cursor(django_cursor)))

    results = search(query="Lukas Brandstater", tenant_ids={tenant_a.pk}, kinds=["driver"])

    assert [(hit.id, hit.match) for hit in results.hits] == [(mine.pk, "fuzzy")]
    assert any("%(alike)s" in sql for sql in sent)
    assert not any("<%% t.search_names" in sql for sql in sent)  # the trigram tier did not run


def test_the_look_alike_words_are_read_through_their_trigram_index(tenant_a: Tenant) -> None:
    DriverFactory(tenant=tenant_a, first_name="Lukas", last_name="Brandstätter", email="lb@example.com")
    sql = selectors._words_sql(selectors._tenant_condition(frozenset({tenant_a.pk})))
    prepared = sql.replace("%(tenants)s", "$1").replace("%(alike_words)s", "$2").replace("%(words)s", "$3")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute("PREPARE words_plan AS " + prepared.replace("%%", "%"))
        try:
            cursor.execute(
                "EXPLAIN (FORMAT JSON) EXECUTE words_plan(ARRAY[%s]::bigint[], 20, ARRAY['brandstater'])", [tenant_a.pk]
            )
            (plan,) = cursor.fetchone()
            cursor.execute(
                "EXECUTE words_plan(ARRAY[%s]::bigint[], 20, ARRAY['brandstater', 'lukas', '42'])", [tenant_a.pk]
            )
            rows = cursor.fetchall()
        finally:
            cursor.execute("DEALLOCATE words_plan")

    assert '"Index Name": "search_word_trgm"' in str(plan).replace("'", '"')
    assert rows == [("brandstater", ["brandstatter"]), ("lukas", ["lukas"]), ("42", None)]


def test_the_look_alike_threshold_of_the_search_does_not_outlive_it(tenant_a: Tenant) -> None:
    # the lookup sets pg_trgm.similarity_threshold for its transaction: inside a caller's, it is put back
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL pg_trgm.similarity_threshold = 0.55")
        search(query="Jurgen Mulr", tenant_ids={tenant_a.pk})
        cursor.execute("SELECT current_setting('pg_trgm.similarity_threshold')")
        assert cursor.fetchone() == ("0.55",)
