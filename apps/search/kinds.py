"""What the search finds: one `Kind` per searchable table, with the columns the migration indexed.

The identifier and text columns here must match `migrations/0001_search_indexes.py`, the stemmed fields
`migrations/0005_search_languages.py` (tests compare them with the indexes in the database and the plans): the
selector's SQL uses the very expressions the indexes were built on, else PostgreSQL would scan the table."""

from __future__ import annotations

from dataclasses import dataclass

# the tenant's language (`Tenant.language`, a code of settings.LANGUAGES) -> its stemming text search configuration
# (`search_<code>`: PostgreSQL's Snowball configuration behind `unaccent`, migrations/0005_search_languages.py); a
# language without one is searched without stemming
STEMMING: tuple[str, ...] = ("en", "de", "fr")


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    area: str  # API-key scope area whose read access shows this kind
    table: str
    identifiers: tuple[str, ...]  # exact and prefix match (btree on search_norm(col) COLLATE "C")
    numeric_id: bool  # the primary key is a number people quote (transaction id, customer number)
    text: bool  # has the generated search_names (trigram) and search_document (tsvector) columns
    title: str  # SQL over alias t; a parent row is read by a scalar subquery, never a join (see `_kind_sql`)
    subtitle: str
    # the fields stemmed in the tenant's language, (SQL over the unqualified columns, weight): words of a language
    # (location names, addresses), never people's or companies' names nor identifiers; each language's GIN
    # expression index of migrations/0005_search_languages.py is built on exactly `stemmed_document`
    stemmed: tuple[tuple[str, str], ...] = ()
    admin_view: str = ""  # admin change view name
    api_view: str = ""  # API detail route name


KINDS: tuple[Kind, ...] = (
    Kind(
        name="charge_point",
        label="Charge points",
        area="stations",
        table="stations_chargepoint",
        identifiers=("identity", "serial_number", "charge_box_serial_number"),
        numeric_id=False,
        text=True,
        title="t.identity",
        subtitle=(
            "concat_ws(' · ', nullif(trim(t.vendor || ' ' || t.model), ''), nullif(t.serial_number, ''),"
            " nullif(t.charge_box_serial_number, ''),"
            " (SELECT l.name FROM stations_location l WHERE l.id = t.location_id))"
        ),
        admin_view="admin:stations_chargepoint_change",
        api_view="charge-point-detail",
    ),
    Kind(
        name="location",
        label="Locations",
        area="stations",
        table="stations_location",
        identifiers=("ocpi_id", "postal_code"),
        numeric_id=False,
        text=True,
        title="t.name",
        subtitle=(
            "concat_ws(', ', nullif(t.address, ''), nullif(trim(t.postal_code || ' ' || t.city), ''), t.country)"
        ),
        stemmed=(("name", "A"), ("address || ' ' || postal_code || ' ' || city", "B")),
        admin_view="admin:stations_location_change",
        api_view="location-detail",
    ),
    Kind(
        name="evse",
        label="EVSEs",
        area="stations",
        table="stations_evse",
        identifiers=("evse_uid",),
        numeric_id=False,
        text=False,
        title="t.evse_uid",
        subtitle=(
            "concat_ws(' · ', (SELECT cp.identity FROM stations_chargepoint cp WHERE cp.id = t.charge_point_id),"
            " t.status)"
        ),
        admin_view="admin:stations_evse_change",
        api_view="evse-detail",
    ),
    Kind(
        name="token",
        label="Tokens",
        area="tokens",
        table="customers_token",
        identifiers=("uid", "visual_number", "contract_id"),
        numeric_id=False,
        text=False,
        title="t.uid",
        subtitle=(
            "concat_ws(' · ', nullif(t.visual_number, ''), nullif(t.contract_id, ''),"
            " nullif(trim((SELECT d.first_name || ' ' || d.last_name FROM customers_driver d"
            " WHERE d.id = t.driver_id)), ''), CASE WHEN t.blocked THEN 'blocked' WHEN NOT t.valid THEN 'invalid' END)"
        ),
        admin_view="admin:customers_token_change",
        api_view="token-detail",
    ),
    Kind(
        name="driver",
        label="Drivers",
        area="customers",
        table="customers_driver",
        identifiers=("email",),
        numeric_id=True,
        text=True,
        title="trim(t.first_name || ' ' || t.last_name)",
        subtitle="concat_ws(' · ', 'no. ' || t.id, nullif(t.email, ''), nullif(t.city, ''))",
        stemmed=(("address_line || ' ' || postal_code || ' ' || city", "C"),),
        admin_view="admin:customers_driver_change",
        api_view="driver-detail",
    ),
    Kind(
        name="business_customer",
        label="Business customers",
        area="customers",
        table="customers_businesscustomer",
        identifiers=("billing_email", "vat_id", "registration_number"),
        numeric_id=True,
        text=True,
        title="t.name",
        subtitle=(
            "concat_ws(' · ', 'no. ' || t.id, nullif(t.billing_email, ''), nullif(t.vat_id, ''),"
            " nullif(t.billing_city, ''))"
        ),
        stemmed=(("billing_address_line || ' ' || billing_postal_code || ' ' || billing_city", "C"),),
        admin_view="admin:customers_businesscustomer_change",
        api_view="business-customer-detail",
    ),
    Kind(
        name="session",
        label="Charging sessions",
        area="charging",
        table="charging_chargingsession",
        identifiers=("id_tag", "cdr_ocpi_id"),
        numeric_id=True,
        text=False,
        title="'Session ' || t.id",
        subtitle=(
            "concat_ws(' · ', (SELECT cp.identity FROM stations_chargepoint cp WHERE cp.id = t.charge_point_id),"
            " t.id_tag, nullif(t.cdr_ocpi_id, ''), t.status,"
            " to_char(t.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC')"
        ),
        admin_view="admin:charging_chargingsession_change",
        api_view="session-detail",
    ),
    Kind(
        name="invoice",
        label="Invoices",
        area="billing",
        table="billing_invoice",
        identifiers=("number",),
        numeric_id=False,
        text=True,
        title="coalesce(nullif(t.number, ''), initcap(replace(t.kind, '_', ' ')) || ' draft ' || t.id)",
        subtitle="concat_ws(' · ', t.customer_name, t.status, t.total_incl_vat || ' ' || t.currency)",
        stemmed=(("customer_address", "C"),),
        admin_view="admin:billing_invoice_change",
        api_view="invoice-detail",
    ),
)


def stemmed_document(kind: Kind, language: str) -> str:
    """The kind's stemmed tsvector in `language` (one of `STEMMING`), the expression its index was built on."""
    return " || ".join(
        f"setweight(to_tsvector('search_{language}', {part}), '{weight}')" for part, weight in kind.stemmed
    )


BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
