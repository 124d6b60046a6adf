"""The words of the searched names, per tenant, for the typo tier (`selectors.search`): pg_trgm's documented way to
correct spelling over full text (a separate table of the distinct words with a trigram index).

- `search_word (tenant_id, word)`: every distinct lexeme of a text kind's `search_names` (as `search_simple` parses
  it, the same lexemes as the names' part of `search_document`), without the words with digits (identifiers and
  house numbers: the typo tier looks those up exactly). A trigram GIN index on `word` finds a query word's
  look-alikes among a few tens of thousands of words instead of the names of 220k drivers; the selector then asks
  `search_document` (GIN, exact lexemes) for the rows with those words.
- Kept up to date by the database: on INSERT, one statement-level trigger per table with the inserted rows
  (a bulk insert adds its words in one statement); on UPDATE, a row trigger only when the row's `search_names`
  or tenant changed (its WHEN is tested without calling any function: other updates, such as a charger's status
  on the OCPP path, cost nothing more). Words are added, never removed: a stale word matches no row, and the rows
  found are read from the tenant's own table, so it can only cost a little time.
- Per tenant, so that another tenant's words never take the place of this tenant's among a query word's nearest
  look-alikes (nothing from another tenant is returned either way: the rows come from the searched tables with
  the tenant condition). No unique constraint: a word is inserted when missing (NOT EXISTS), so two writers adding
  the same new word never wait for each other (ON CONFLICT would make the second wait for the first's commit, and
  two transactions adding new words in opposite orders could deadlock); a race leaves a duplicate row, which the
  selector's lookup folds (GROUP BY).
- Filled from the existing rows when migrated (47k words from 220k drivers, 110k charge points, 110k invoices, 22k
  locations, 11k business customers of the search benchmark: ~7 s).

Cost on writes, measured on the benchmark's database (with 0003's `fastupdate = off`): 1,000 drivers inserted one
statement each, every one with a new last name (so every insert adds a word), took 268 ms, 164 ms without these
triggers, 95 ms + 14 ms of pending-list merge before both changes; the benchmark's bulk generation took 258 s
instead of 220 s (200k drivers in one INSERT: 36.7 s instead of 10.5 s).
"""

from __future__ import annotations

from django.db import migrations

TABLES = (
    "stations_location",
    "stations_chargepoint",
    "customers_driver",
    "customers_businesscustomer",
    "billing_invoice",
)

WORDS = "unnest(tsvector_to_array(to_tsvector('search_simple', {names})))"

TABLE = f"""
CREATE TABLE search_word (tenant_id bigint NOT NULL, word text NOT NULL);
CREATE INDEX search_word_tenant_word ON search_word (tenant_id, word);
CREATE INDEX search_word_trgm ON search_word USING gin (word gin_trgm_ops) WITH (fastupdate = off);  -- see 0003

CREATE FUNCTION search_words_inserted() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO search_word (tenant_id, word)
    SELECT DISTINCT r.tenant_id, w.word FROM search_rows r, {WORDS.format(names="r.search_names")} AS w(word)
    WHERE w.word !~ '[0-9]'
      AND NOT EXISTS (SELECT FROM search_word s WHERE s.tenant_id = r.tenant_id AND s.word = w.word);
    RETURN NULL;
END
$f$;

CREATE FUNCTION search_words_updated() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO search_word (tenant_id, word)
    SELECT DISTINCT NEW.tenant_id, w.word FROM {WORDS.format(names="NEW.search_names")} AS w(word)
    WHERE w.word !~ '[0-9]'
      AND NOT EXISTS (SELECT FROM search_word s WHERE s.tenant_id = NEW.tenant_id AND s.word = w.word);
    RETURN NULL;
END
$f$;
"""

DROP_TABLE = """
DROP TABLE IF EXISTS search_word;
DROP FUNCTION IF EXISTS search_words_inserted();
DROP FUNCTION IF EXISTS search_words_updated();
"""


def triggers_sql() -> tuple[str, str]:
    forward, backward = [], []
    for table in TABLES:
        short = table.split("_", 1)[1]
        forward.append(
            f"CREATE TRIGGER search_words_{short}_inserted AFTER INSERT ON {table}"
            " REFERENCING NEW TABLE AS search_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_inserted();"
            f"\nCREATE TRIGGER search_words_{short}_updated AFTER UPDATE ON {table} FOR EACH ROW"
            " WHEN (OLD.search_names IS DISTINCT FROM NEW.search_names OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)"
            " EXECUTE FUNCTION search_words_updated();"
        )
        backward.append(
            f"DROP TRIGGER IF EXISTS search_words_{short}_inserted ON {table};"
            f"\nDROP TRIGGER IF EXISTS search_words_{short}_updated ON {table};"
        )
    return "\n".join(forward), "\n".join(reversed(backward))


def fill_sql() -> str:
    rows = " UNION ".join(
        f"SELECT DISTINCT t.tenant_id, w.word FROM {table} t, {WORDS.format(names='t.search_names')} AS w(word)"
        " WHERE w.word !~ '[0-9]'"
        for table in TABLES
    )
    return f"INSERT INTO search_word (tenant_id, word) {rows}; ANALYZE search_word;"


TRIGGERS_FORWARD, TRIGGERS_BACKWARD = triggers_sql()


class Migration(migrations.Migration):
    dependencies = [
        ("search", "0003_gin_pending_lists"),
    ]

    operations = [
        migrations.RunSQL(TABLE, DROP_TABLE),
        # the triggers before the fill, in one transaction (the migration's): no row written in between is missed
        migrations.RunSQL(TRIGGERS_FORWARD, TRIGGERS_BACKWARD),
        migrations.RunSQL(fill_sql(), migrations.RunSQL.noop),
    ]
