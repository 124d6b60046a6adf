"""Stemming in the tenant's language (issue 17, migration `search` 0005): a query's words stemmed by the Snowball
stemmer of the tenant's language match the stemmed names and addresses of its rows, on that language's GIN index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.search.kinds import KINDS, STEMMING
from apps.search.selectors import search
from tests.customers.factories import BusinessCustomerFactory, DriverFactory
from tests.search.test_indexes import _generic_plan, _scans, _statements
from tests.stations.factories import LocationFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _text_hits(query: str, tenant_ids: Any, kind: str = "location") -> list[tuple[int, str]]:
    """The hits of the full-text tier (`text`): what a stemmed match counts as."""
    results = search(query=query, tenant_ids=tenant_ids, kinds=[kind])
    return [(hit.id, hit.tenant_id) for hit in results.hits if hit.match == "text"]


@pytest.mark.parametrize(
    ("language", "query", "name", "other"),
    [
        # English: charging, charge and charger share the stem `charg`; German and French leave `charging` as it is
        ("en", "charging", "Riverside Charger", "de"),
        ("en", "charging", "Charge Hub Mill Lane", "fr"),
        # German: Ladestationen is `ladestation`; English and French keep the `en` (and stem Ladestation `ladest`)
        ("de", "Ladestationen", "Ladestation Marktplatz", "en"),
        ("de", "Ladestationen", "Ladestation Marktplatz", "fr"),
        # French: municipaux is `municipal` (the -aux plural); English and German keep municipaux
        ("fr", "municipaux", "Parking municipal", "en"),
        ("fr", "municipaux", "Parking municipal", "de"),
    ],
)
def test_a_stemmed_query_finds_the_row_in_its_tenants_language_only(
    language: str, query: str, name: str, other: str
) -> None:
    mine = TenantFactory(language=language)
    theirs = TenantFactory(language=other)
    found = LocationFactory(tenant=mine, name=name, address="Nowhere 1", city="Testville")
    LocationFactory(tenant=theirs, name=name, address="Nowhere 1", city="Testville")

    assert _text_hits(query, {mine.pk}) == [(found.pk, mine.pk)]
    assert _text_hits(query, {theirs.pk}) == []  # (a look-alike name may still be a `fuzzy` hit there)
    assert _text_hits(query, None) == [(found.pk, mine.pk)]  # both tenants at once: each in its own language


def test_bornes_finds_borne_for_a_french_tenant() -> None:
    # (`bornes` is `born` in English and German too: the plural s of all three)
    tenant = TenantFactory(language="fr")
    borne = LocationFactory(tenant=tenant, name="Borne de recharge Gare", address="Place de la Gare 2", city="Lyon")

    assert _text_hits("bornes", {tenant.pk}) == [(borne.pk, tenant.pk)]


@pytest.mark.parametrize(
    ("kind", "factory", "fields"),
    [
        ("location", LocationFactory, {"name": "Depot", "address": "Gartenstraße 5", "city": "Essen"}),
        ("driver", DriverFactory, {"address_line": "Gartenstraße 5", "city": "Essen", "email": "d@example.com"}),
        (
            "business_customer",
            BusinessCustomerFactory,
            {"billing_address_line": "Gartenstraße 5", "billing_city": "Essen", "billing_email": "b@example.com"},
        ),
    ],
)
def test_addresses_are_stemmed_in_every_kind_that_has_one(kind: str, factory: Any, fields: dict[str, str]) -> None:
    german = TenantFactory(language="de")
    english = TenantFactory(language="en")
    row = factory(tenant=german, **fields)
    factory(tenant=english, **fields)

    # German `Gartenstraßen` is `gartenstrass`, the stem of `Gartenstraße`; in English it stays `gartenstrassen`
    assert _text_hits("Gartenstraßen Essen", {german.pk, english.pk}, kind) == [(row.pk, german.pk)]


def test_peoples_names_are_not_stemmed_but_their_addresses_are() -> None:
    # French stems Keller to `kel`, a prefix of Kelsey: names are matched as they are, never by their stem
    tenant = TenantFactory(language="fr")
    kelsey = DriverFactory(
        tenant=tenant, first_name="Mia", last_name="Kelsey", email="mk@example.com", address_line="Rue de l'École 3"
    )

    assert _text_hits("Keller", {tenant.pk}, "driver") == []
    assert _text_hits("Kellers", {tenant.pk}, "driver") == []
    assert _text_hits("écoles", {tenant.pk}, "driver") == [(kelsey.pk, tenant.pk)]  # the address is stemmed


def test_a_literal_match_ranks_above_a_stemmed_one() -> None:
    tenant = TenantFactory(language="de")
    stemmed = LocationFactory(tenant=tenant, name="Ladestation Süd", address="Hafen 1", city="Kiel")
    literal = LocationFactory(tenant=tenant, name="Ladestationen Nord", address="Hafen 2", city="Kiel")

    hits = search(query="Ladestationen", tenant_ids={tenant.pk}, kinds=["location"]).hits

    assert [(hit.id, hit.match) for hit in hits] == [(literal.pk, "text"), (stemmed.pk, "text")]
    assert 2 < hits[1].score < hits[0].score < 3


def test_a_change_of_the_tenants_language_applies_to_its_rows_at_once(
    client_for: Callable[..., APIClient],
) -> None:
    tenant = TenantFactory(language="de")
    other = TenantFactory(language="de")
    row = LocationFactory(tenant=tenant, name="Ladestation Marktplatz", address="Markt 1", city="Bonn")
    kept = LocationFactory(tenant=other, name="Ladestation Marktplatz", address="Markt 1", city="Bonn")
    assert _text_hits("Ladestationen", {tenant.pk}) == [(row.pk, tenant.pk)]
    assert _text_hits("charging", {tenant.pk}) == []

    response = client_for(tenant).patch(f"/api/v1/tenants/{tenant.pk}/", {"language": "en"}, format="json")

    assert response.status_code == 200, response.content
    assert _text_hits("Ladestationen", {tenant.pk}) == []  # English does not stem it
    row.name = "Charger Marktplatz"  # and English stems now apply to what the tenant writes, and to what it had
    row.save(update_fields=["name"])
    assert _text_hits("charging", {tenant.pk}) == [(row.pk, tenant.pk)]
    assert _text_hits("Ladestationen", {tenant.pk, other.pk}) == [(kept.pk, other.pk)]  # the other tenant's: German


def test_nothing_from_another_tenant_of_the_same_language() -> None:
    mine = TenantFactory(language="de")
    theirs = TenantFactory(language="de")
    row = LocationFactory(tenant=mine, name="Ladestation Marktplatz", address="Markt 1", city="Bonn")
    LocationFactory(tenant=theirs, name="Ladestation Marktplatz", address="Markt 1", city="Bonn")

    assert _text_hits("Ladestationen", {mine.pk}) == [(row.pk, mine.pk)]


STEMMED_INDEXES = sorted(
    {
        (kind.name, f"search_{kind.table.split('_', 1)[1]}_stem_{language}")
        for kind in KINDS
        if kind.stemmed
        for language in STEMMING
    }
)


@pytest.mark.parametrize("language", STEMMING)
def test_the_stemmed_tier_reads_its_languages_index_in_the_generic_plan(
    language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the statement as the selector prepares it (a generic plan, every access path but bitmap scans priced out):
    # each stemmed kind's match in the tenant's language is a bitmap scan of that language's expression index
    tenant = TenantFactory(language=language)
    LocationFactory(tenant=tenant, name="Ladestation Marktplatz")
    statements = [(sql, params) for sql, params in _statements(monkeypatch, "ladestationen markt", {tenant.pk})]
    (sql, params) = next((sql, params) for sql, params in statements if f"%(stems_{language})s" in sql)
    plan = _generic_plan(sql, params, "seqscan", "indexscan", "indexonlyscan")

    used = {scan.get("Index Name") for scan in _scans(plan) if scan["Node Type"] == "Bitmap Index Scan"}
    wanted = {index for _, index in STEMMED_INDEXES if index.endswith(f"_stem_{language}")}
    assert len(wanted) == 4
    assert wanted <= used
    assert not {index for index in used if "_stem_" in (index or "") and not index.endswith(language)}


def test_the_stemmed_indexes_exist_without_a_pending_list() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions, i.indisvalid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid"
            " WHERE c.relname LIKE 'search\\_%%\\_stem\\_%%'"
        )
        indexes = {name: (options, valid) for name, options, valid in cursor.fetchall()}

    assert indexes == {index: (["fastupdate=off"], True) for _, index in STEMMED_INDEXES}
