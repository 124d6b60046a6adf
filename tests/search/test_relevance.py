"""Relevance: for a fixed set of queries the expected object comes first, and nothing comes from another tenant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.search.selectors import search
from tests.search.conftest import World

pytestmark = pytest.mark.django_db

# (query, the object expected first: attribute of the world, its kind, the match tier)
EXPECTED_FIRST: list[tuple[Callable[[World], str], str, str, str]] = [
    # exact identifiers, whatever their case
    (lambda w: w.hub.identity, "hub", "charge_point", "exact"),
    (lambda w: w.hub.identity.lower(), "hub", "charge_point", "exact"),
    (lambda w: w.hub.serial_number, "hub", "charge_point", "exact"),
    (lambda w: w.hub.charge_box_serial_number, "hub", "charge_point", "exact"),
    (lambda w: w.evse.evse_uid, "evse", "evse", "exact"),
    (lambda w: w.location.ocpi_id, "location", "location", "exact"),
    (lambda _: "04aabbccdd0001", "card", "token", "exact"),
    (lambda _: "DE-VLT-C12345678", "card", "token", "exact"),
    (lambda _: "Juergen.Mueller@example.com", "mueller", "driver", "exact"),
    (lambda _: "DE123456789", "fleet", "business_customer", "exact"),
    (lambda w: w.session.cdr_ocpi_id, "session", "session", "exact"),
    (lambda w: w.invoice.number, "invoice", "invoice", "exact"),
    # an exact identifier beats a name: the card printed "SCHMIDT" before the driver Anna Schmidt
    (lambda _: "schmidt", "card", "token", "exact"),
    # prefixes: the shortest identifier with that beginning first
    (lambda w: w.hub.identity[:-1], "hub", "charge_point", "prefix"),
    (lambda _: "04AABBCCDD000", "card", "token", "prefix"),
    (lambda _: "juergen.mue", "mueller", "driver", "prefix"),
    # words of names and addresses, accents ignored
    (lambda _: "Jürgen Müller", "mueller", "driver", "text"),
    (lambda _: "jurgen muller", "mueller", "driver", "text"),
    (lambda _: "JÜRG", "mueller", "driver", "text"),
    (lambda _: "gorlitzer strasse berlin", "location", "location", "text"),
    (lambda _: "Görlitzer Str", "location", "location", "text"),
    (lambda _: "Europaplatz", "other_location", "location", "text"),
    (lambda _: "Alfen Eve", "hub", "charge_point", "text"),
    (lambda _: "Stadtwerke Gorlitz", "fleet", "business_customer", "text"),
    # typos
    (lambda _: "Muler", "mueller", "driver", "fuzzy"),
    (lambda _: "Jürgen Mülller", "mueller", "driver", "fuzzy"),
    (lambda _: "Schmitd", "schmidt", "driver", "fuzzy"),
    (lambda _: "Görlizer", "location", "location", "fuzzy"),
    (lambda _: "Stadtwrke", "fleet", "business_customer", "fuzzy"),
    (lambda _: "Mai Keller", "keller", "driver", "fuzzy"),  # a short word's typo: no look-alike word, the trigram tier
]


@pytest.mark.parametrize(("query", "name", "kind", "match"), EXPECTED_FIRST)
def test_the_expected_object_comes_first(
    worlds: tuple[World, World], query: Callable[[World], str], name: str, kind: str, match: str
) -> None:
    world_a, _ = worlds

    results = search(query=query(world_a), tenant_ids={world_a.tenant.pk})

    first = results.hits[0]
    assert (first.kind, first.id, first.match) == (kind, getattr(world_a, name).pk, match), results.hits[:3]


def test_a_session_is_found_by_its_transaction_id_and_a_driver_by_customer_number(
    worlds: tuple[World, World],
) -> None:
    world_a, _ = worlds

    by_session = search(query=str(world_a.session.pk), tenant_ids={world_a.tenant.pk}, kinds=["session"])
    by_driver = search(query=str(world_a.mueller.pk), tenant_ids={world_a.tenant.pk}, kinds=["driver"])

    assert [(h.id, h.match) for h in by_session.hits][:1] == [(world_a.session.pk, "exact")]
    assert [(h.id, h.match) for h in by_driver.hits][:1] == [(world_a.mueller.pk, "exact")]


def test_a_session_is_found_by_its_token(worlds: tuple[World, World]) -> None:
    world_a, _ = worlds

    results = search(query="04AABBCCDD0001", tenant_ids={world_a.tenant.pk}, kinds=["session"])

    assert [h.id for h in results.hits] == [world_a.session.pk]


def test_results_are_grouped_by_kind_best_group_first(worlds: tuple[World, World]) -> None:
    world_a, _ = worlds

    results = search(query="Görlitz", tenant_ids={world_a.tenant.pk})

    kinds = [group.kind for group in results.groups]
    assert len(kinds) == len(set(kinds))
    assert {"location", "business_customer"} <= set(kinds)
    bests = [group.best for group in results.groups]
    assert bests == sorted(bests, reverse=True)
    for group in results.groups:
        assert all(hit.kind == group.kind for hit in group.hits)


def test_limit_per_kind_and_has_more(worlds: tuple[World, World]) -> None:
    world_a, _ = worlds

    results = search(query="ALP-HUB", tenant_ids={world_a.tenant.pk}, kinds=["charge_point"], limit=2)

    (group,) = results.groups
    assert len(group.hits) == 2
    assert group.has_more is True
    assert [h.id for h in group.hits] == [world_a.hub.pk, world_a.hub_2.pk]  # the closest (shortest) first


def test_nothing_found_is_an_empty_result(worlds: tuple[World, World]) -> None:
    world_a, _ = worlds

    assert search(query="zzqqxxyy", tenant_ids={world_a.tenant.pk}).groups == []
    assert search(query="%", tenant_ids={world_a.tenant.pk}).groups == []  # LIKE's wildcard is a character
    assert search(query="_", tenant_ids={world_a.tenant.pk}).groups == []


def test_changes_are_searchable_at_once(worlds: tuple[World, World]) -> None:
    # the generated columns follow every write: the database keeps them, no job to wait for
    world_a, _ = worlds
    driver = world_a.keller
    driver.last_name = "Østergård"
    driver.save()

    renamed = search(query="ostergard", tenant_ids={world_a.tenant.pk}, kinds=["driver"])
    old_name = search(query="Keller", tenant_ids={world_a.tenant.pk}, kinds=["driver"])

    assert [h.id for h in renamed.hits] == [driver.pk]
    assert driver.pk not in [h.id for h in old_name.hits if h.match != "fuzzy"]


QUERIES: list[Callable[[World], str]] = [q for q, *_ in EXPECTED_FIRST] + [
    lambda w: str(w.session.pk),
    lambda w: str(w.mueller.pk),
    lambda _: "Berlin",
    lambda _: "04",
    lambda _: "e",
]


@pytest.mark.parametrize("query", QUERIES)
def test_no_result_ever_comes_from_another_tenant(worlds: tuple[World, World], query: Callable[[World], str]) -> None:
    world_a, world_b = worlds
    for mine, other in ((world_a, world_b), (world_b, world_a)):
        results = search(query=query(mine), tenant_ids={mine.tenant.pk}, limit=50)

        assert {hit.tenant_id for hit in results.hits} <= {mine.tenant.pk}
        others = {(kind, obj.pk) for kind, obj in _objects(other)}
        assert not {(hit.kind, hit.id) for hit in results.hits} & others


def test_every_tenant_for_platform_superusers_and_none_for_no_tenant(worlds: tuple[World, World]) -> None:
    world_a, world_b = worlds

    everywhere = search(query="Jürgen Müller", tenant_ids=None, kinds=["driver"])
    nowhere = search(query="Jürgen Müller", tenant_ids=set())

    assert {h.id for h in everywhere.hits} >= {world_a.mueller.pk, world_b.mueller.pk}
    assert nowhere.groups == []


def _objects(world: World) -> list[tuple[str, Any]]:
    kinds = {
        "location": "location",
        "other_location": "location",
        "hub": "charge_point",
        "hub_10": "charge_point",
        "hub_2": "charge_point",
        "evse": "evse",
        "mueller": "driver",
        "schmidt": "driver",
        "keller": "driver",
        "fleet": "business_customer",
        "card": "token",
        "card_2": "token",
        "session": "session",
        "other_session": "session",
        "invoice": "invoice",
    }
    return [(kind, world.objects[name]) for name, kind in kinds.items()]


def test_the_best_look_alike_is_found_among_more_candidates_than_are_ranked(
    tenant_a: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More rows are like the misspelt query than the fuzzy tier ranks (`CANDIDATES`): the best one is still first,
    whatever the order the index returns them in (the decoys are written first, so a scan in table order meets
    them before the best look-alike). The decoys' last names ("Ehrbalich", ...) are look-alike words of the query's
    (similarity 0.36) and the decoys are like the query (word similarity 0.6, the best 0.87): every one is among the
    rows with look-alike words, more of them than are ranked."""
    from apps.search import selectors
    from tests.customers.factories import DriverFactory

    monkeypatch.setattr(selectors, "CANDIDATES", 5)
    infixes = [a + b for a in "bdfgkmnp" for b in "aeou"][:30]
    for n, infix in enumerate(infixes):
        DriverFactory(tenant=tenant_a, first_name="Lukas", last_name=f"Ehr{infix}lich", email=f"lw{n}@example.com")
    best = DriverFactory(tenant=tenant_a, first_name="Lukas", last_name="Ehrlich", email="le@example.com")

    results = search(query="Lukas Ehrlichh", tenant_ids={tenant_a.pk}, kinds=["driver"])

    first = results.hits[0]
    assert (first.id, first.match) == (best.pk, "fuzzy"), results.hits[:3]
    assert len(results.hits) == selectors.DEFAULT_LIMIT  # the next best still listed after it
