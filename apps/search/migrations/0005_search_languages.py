"""Stemming in the tenant's language (issue 17): `charging` finds `Charger` for an English tenant, `Ladestationen`
finds `Ladestation` for a German one, `municipaux` finds `municipal` for a French one.

- Text search configurations `search_en`, `search_de`, `search_fr`: PostgreSQL's `english`, `german` and `french`
  (their Snowball stemmers and stop words) with `unaccent` in front, as `search_simple` (0001) is `simple` with it.
- Per searched table and language, a GIN expression index on the stemmed document of the fields that are words of
  a language (location names, addresses; `STEMMED`), never people's or companies' names nor identifiers: `Keller`
  is `kel` in French and `Müller` `mull` in German, a prefix of other people's names. Nothing is taken away: the
  simple `search_document` (0001) still matches everything it matched.
- Why an index per language and not a per-row column in the tenant's language: a row cannot read its tenant's
  language in a generated column, so a stored stemmed document would need a trigger on every searched table, and
  every row of a tenant re-stemmed (rewritten, with every index of the table) when its language changes, from the
  tenants app, a layer below the tables it would write. With one expression index per language the rows hold
  nothing that depends on the tenant: the selector reads the tenant's language when it searches and asks that
  language's index, so a change of language applies at once, with no writes. The price is three small GIN indexes
  per table instead of one (the documents are a name and an address: a few words), measured on writes in
  `benchmarks/search_bench.py --write-cost`.
- Charge points are left out: their vendor and model are brand and product names (as people's names: `Easee` is
  `ease` in English and German, `Mennekes` `mennek`), and their table is written on the OCPP path, whose non-HOT
  updates would write three more GIN indexes (migration 0003).

Measured on the search benchmark's database at `--scale 0.05` (11k drivers, 1.1k locations; `search_bench.py
--reuse --write-cost 1000`, five rounds, each with the indexes and without them, dropped in the same rolled-back
transaction): 1,000 single-row driver inserts 376-425 ms against 226-330 ms, 1,000 locations 501-667 ms against
448-542 ms (~0.15 ms more per row); `manage.py migrate search` took 2.2 s there; each index is a quarter of the
size of the table's `search_document` index (drivers: 688 kB against 2,784 kB).

The selector (`kinds.Kind.stemmed`) must use exactly these expressions (tests/search/test_language.py checks that
each index is used). Safe on large tables: `CREATE INDEX CONCURRENTLY` (writes go on while an index is built; no
column is added, so no table is rewritten and nothing is filled), hence a non-atomic migration, one statement per
operation; an index left invalid by an interrupted build is dropped and built again when the migration is re-run.
`fastupdate = off` as for the other search indexes of these tables (0003: no pending list for a search to read).
"""

from __future__ import annotations

from django.db import migrations

# the codes of settings.LANGUAGES -> PostgreSQL's Snowball configuration (its stemmer and its stop words)
LANGUAGES: dict[str, str] = {"en": "english", "de": "german", "fr": "french"}

# table -> the stemmed document's parts with their weights (as in 0001's search_document: names A, addresses B/C)
STEMMED: dict[str, tuple[tuple[str, str], ...]] = {
    "stations_location": (("name", "A"), ("address || ' ' || postal_code || ' ' || city", "B")),
    "customers_driver": (("address_line || ' ' || postal_code || ' ' || city", "C"),),
    "customers_businesscustomer": (
        ("billing_address_line || ' ' || billing_postal_code || ' ' || billing_city", "C"),
    ),
    "billing_invoice": (("customer_address", "C"),),
}

CONFIGS = r"""
DO $do$
DECLARE s text; pair text[];
BEGIN
    SELECT n.nspname INTO STRICT s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'unaccent';
    FOREACH pair SLICE 1 IN ARRAY ARRAY[%(languages)s] LOOP
        CONTINUE WHEN EXISTS (SELECT FROM pg_ts_config WHERE cfgname = 'search_' || pair[1]);  -- a re-run
        EXECUTE format('CREATE TEXT SEARCH CONFIGURATION %%I (COPY = pg_catalog.%%I)', 'search_' || pair[1], pair[2]);
        EXECUTE format(
            'ALTER TEXT SEARCH CONFIGURATION %%I ALTER MAPPING FOR hword, hword_part, word WITH %%I.unaccent, %%I',
            'search_' || pair[1], s, pair[2] || '_stem');
    END LOOP;
END
$do$;
""" % {"languages": ", ".join(f"ARRAY['{code}', '{config}']" for code, config in LANGUAGES.items())}

DROP_CONFIGS = "\n".join(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS search_{code};" for code in LANGUAGES)


def document(table: str, language: str) -> str:
    """The stemmed document of `table` in `language`, over its unqualified columns (the selector's expression)."""
    return " || ".join(
        f"setweight(to_tsvector('search_{language}', {part}), '{weight}')" for part, weight in STEMMED[table]
    )


def index_name(table: str, language: str) -> str:
    return f"search_{table.split('_', 1)[1]}_stem_{language}"


def index_operations() -> list[migrations.RunSQL]:
    operations = []
    for table in STEMMED:
        for language in LANGUAGES:
            name = index_name(table, language)
            operations.append(
                migrations.RunSQL(
                    [
                        f"DROP INDEX CONCURRENTLY IF EXISTS {name};",
                        f"CREATE INDEX CONCURRENTLY {name} ON {table} USING gin (({document(table, language)}))"
                        " WITH (fastupdate = off);",
                    ],
                    [f"DROP INDEX CONCURRENTLY IF EXISTS {name};"],
                )
            )
    return operations


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("search", "0004_search_words"),
    ]

    operations = [
        migrations.RunSQL(CONFIGS, DROP_CONFIGS),
        *index_operations(),
    ]
