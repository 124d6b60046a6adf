"""The PostgreSQL search: what the database keeps up to date by itself, on the tables of the searched apps.

- `search_norm(text)`: lower case without accents (`unaccent`), IMMUTABLE so indexes and generated columns can use
  it (the extension's own `unaccent(text)` is only STABLE: it reads its dictionary by name through `search_path`;
  this wrapper names the dictionary and schema, the documented way to index it).
- `search_simple`: the `simple` text search configuration with `unaccent` in front of it (no stemming: names,
  streets and identifiers are not English prose), so `Müller` and `muller` are the same lexeme.
- Identifier columns (charge point identity and serials, EVSE ids, token uid / visual number / contract id,
  e-mails, invoice numbers, session id tags and CDR ids, location OCPI id and postcode): a btree index on
  `search_norm(column) COLLATE "C"`: exact match, and prefix match in index order
  (`LIKE 'abc%'` with an early stop, however many rows share the prefix).
- Tables with names (locations, charge points, drivers, business customers, invoices): two generated columns,
  `search_names` (normalized names, trigram GIN: typo tolerance) and `search_document` (weighted tsvector, GIN:
  full text). They are not model fields: Django never names them, PostgreSQL computes them on every write.

The selector (`apps/search/selectors.py`) writes its SQL against exactly these expressions; the two must agree.
"""

from __future__ import annotations

from django.contrib.postgres.operations import TrigramExtension, UnaccentExtension
from django.db import migrations

# table -> identifier columns (exact and prefix match)
IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "stations_location": ("ocpi_id", "postal_code"),
    "stations_chargepoint": ("identity", "serial_number", "charge_box_serial_number"),
    "stations_evse": ("evse_uid",),
    "customers_token": ("uid", "visual_number", "contract_id"),
    "customers_driver": ("email",),
    "customers_businesscustomer": ("billing_email", "vat_id", "registration_number"),
    "charging_chargingsession": ("id_tag", "cdr_ocpi_id"),
    "billing_invoice": ("number",),
}

# table -> (names for the trigram index, tsvector parts by weight A/B/C)
TEXTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stations_location": (
        "name || ' ' || address || ' ' || city",
        ("name", "address || ' ' || postal_code || ' ' || city", "ocpi_id"),
    ),
    "stations_chargepoint": (
        "identity || ' ' || vendor || ' ' || model",
        ("identity", "vendor || ' ' || model", "serial_number || ' ' || charge_box_serial_number"),
    ),
    "customers_driver": (
        "first_name || ' ' || last_name",
        ("first_name || ' ' || last_name", "email", "address_line || ' ' || postal_code || ' ' || city"),
    ),
    "customers_businesscustomer": (
        "name || ' ' || legal_name",
        (
            "name || ' ' || legal_name",
            "billing_email || ' ' || vat_id",
            "billing_address_line || ' ' || billing_postal_code || ' ' || billing_city",
        ),
    ),
    "billing_invoice": (
        "customer_name",
        ("customer_name", "number || ' ' || customer_email", "customer_address"),
    ),
}

FUNCTIONS = r"""
DO $do$
DECLARE s text;
BEGIN
    SELECT n.nspname INTO STRICT s FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'unaccent';
    EXECUTE format(
        $f$CREATE OR REPLACE FUNCTION search_norm(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
           AS $b$ SELECT lower(%1$I.unaccent(%2$L::regdictionary, $1)) $b$$f$,
        s, format('%I.unaccent', s));
    CREATE TEXT SEARCH CONFIGURATION search_simple (COPY = pg_catalog.simple);
    EXECUTE format(
        'ALTER TEXT SEARCH CONFIGURATION search_simple ALTER MAPPING FOR hword, hword_part, word WITH %I.unaccent, simple',
        s);
END
$do$;
"""

DROP_FUNCTIONS = """
DROP TEXT SEARCH CONFIGURATION IF EXISTS search_simple;
DROP FUNCTION IF EXISTS search_norm(text);
"""


def _short(table: str) -> str:
    return table.split("_", 1)[1]


def identifier_sql() -> tuple[str, str]:
    forward, backward = [], []
    for table, columns in IDENTIFIERS.items():
        for column in columns:
            name = f"search_{_short(table)}_{column}"[:63]
            forward.append(
                f'CREATE INDEX {name} ON {table} ((search_norm({column})) COLLATE "C");'
            )
            backward.append(f"DROP INDEX IF EXISTS {name};")
    return "\n".join(forward), "\n".join(backward)


def text_sql() -> tuple[str, str]:
    forward, backward = [], []
    for table, (names, parts) in TEXTS.items():
        document = " || ".join(
            f"setweight(to_tsvector('search_simple', {part}), '{weight}')"
            for part, weight in zip(parts, "ABC", strict=False)
        )
        short = _short(table)
        forward.append(
            f"ALTER TABLE {table}"
            f" ADD COLUMN search_names text GENERATED ALWAYS AS (search_norm({names})) STORED,"
            f" ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({document}) STORED;"
            f"\nCREATE INDEX search_{short}_names ON {table} USING gin (search_names gin_trgm_ops);"
            f"\nCREATE INDEX search_{short}_document ON {table} USING gin (search_document);"
        )
        backward.append(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_names, DROP COLUMN IF EXISTS search_document;")
    return "\n".join(forward), "\n".join(backward)


IDENTIFIER_FORWARD, IDENTIFIER_BACKWARD = identifier_sql()
TEXT_FORWARD, TEXT_BACKWARD = text_sql()


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("core", "0001_extensions"),
        ("stations", "0003_decommissioning_history_protected"),
        ("customers", "0004_token_wire_id"),
        ("charging", "0009_session_pricing_error"),
        ("billing", "0005_invoiceline_time_zone"),
    ]

    operations = [
        TrigramExtension(),
        UnaccentExtension(),
        migrations.RunSQL(FUNCTIONS, DROP_FUNCTIONS),
        migrations.RunSQL(IDENTIFIER_FORWARD, IDENTIFIER_BACKWARD),
        migrations.RunSQL(TEXT_FORWARD, TEXT_BACKWARD),
    ]
