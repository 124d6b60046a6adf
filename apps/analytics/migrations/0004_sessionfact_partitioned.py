"""KPI facts become partitioned by day of `at`, the time a fact counts at (the session's start for a started fact,
its stop for an ended one: the rollups' bucket time), so a query over a period reads only its days and retention
drops whole days (apps/core/partitions.py, as the frame log, status history and meter values).

On a large table, without downtime (non-atomic: each step commits on its own; none rewrites the table under a lock
that stops writers):
1. `at` is added nullable (a catalog change); a BEFORE INSERT trigger fills it for rows written meanwhile by code
   older than the column;
2. the existing rows get theirs in batches of 10,000 by id, each its own short transaction (writers wait at most
   for one batch's row locks);
3. NOT NULL is proven by a CHECK validated with a scan that lets writes go on, then set without a second scan;
4. the unique key (session, kind) becomes (session, kind, at) — PostgreSQL wants the partition key in it; `at` is
   fixed per session and kind, so it is as strict — through an index built CONCURRENTLY and swapped in;
5. `convert_to_partitioned`: a CHECK (at < cut) validated while writes go on, then one short ACCESS EXCLUSIVE
   transaction of catalog changes (rename, create the parent, attach the old table as the partition of everything
   before the cut, adopt its indexes, unique key and foreign keys; no row copied, no index rebuilt).
Rows written by code older than this migration after step 5 fail (NOT NULL `at`, the trigger stays with the old
table): the fact's subscriber runs from the outbox, which retries it until the new code takes it."""

from django.db import migrations, models, transaction

from apps.core.partitions import convert_to_partitioned

TABLE = "analytics_sessionfact"
BATCH = 10_000
AT = "CASE WHEN kind = 'started' THEN started_at ELSE stopped_at END"
TRIGGER = [
    """
CREATE OR REPLACE FUNCTION analytics_sessionfact_fill_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := coalesce(NEW.at, CASE WHEN NEW.kind = 'started' THEN NEW.started_at ELSE NEW.stopped_at END);
    RETURN NEW;
END $$""",
    f"CREATE TRIGGER sessionfact_fill_at BEFORE INSERT ON {TABLE} FOR EACH ROW"
    " EXECUTE FUNCTION analytics_sessionfact_fill_at()",
]
INDEXES = {
    "sessionfact_created": "(created_at)",
    "analytics_sessionfact_tenant_id_3ef4123d": "(tenant_id)",
}
UNIQUE = {"sessionfact_unique_kind": '(session_id, kind, "at")'}


def fill(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Step 2: the existing rows' `at`, a batch at a time (autocommit: each UPDATE commits)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM {TABLE}")  # noqa: S608
        low, high = cursor.fetchone()
        for start in range(low, high + 1, BATCH):
            cursor.execute(
                f'UPDATE {TABLE} SET "at" = {AT} WHERE id >= %s AND id < %s AND "at" IS NULL',  # noqa: S608
                [start, start + BATCH],
            )


def not_null(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE {TABLE} ADD CONSTRAINT sessionfact_at_set CHECK ("at" IS NOT NULL) NOT VALID')
        cursor.execute(f"ALTER TABLE {TABLE} VALIDATE CONSTRAINT sessionfact_at_set")  # a scan, writes go on
        cursor.execute(f'ALTER TABLE {TABLE} ALTER COLUMN "at" SET NOT NULL')  # proven by the CHECK: no scan
        cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT sessionfact_at_set")


def unique_key(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS sessionfact_unique_kind_at ON {TABLE} (session_id, kind, "at")'
        )
        with transaction.atomic(using=connection.alias):
            cursor.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT sessionfact_unique_kind")
            cursor.execute(
                f"ALTER TABLE {TABLE} ADD CONSTRAINT sessionfact_unique_kind UNIQUE USING INDEX sessionfact_unique_kind_at"
            )


def partition(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        convert_to_partitioned(cursor, table=TABLE, column="at", indexes=INDEXES, unique=UNIQUE)
        cursor.execute(f"DROP TRIGGER sessionfact_fill_at ON {TABLE}_legacy")
        cursor.execute("DROP FUNCTION analytics_sessionfact_fill_at()")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0003_security_alert_kinds"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="sessionfact",
                    name="at",
                    field=models.DateTimeField(),
                    preserve_default=False,
                ),
                migrations.RemoveConstraint(model_name="sessionfact", name="sessionfact_unique_kind"),
                migrations.AddConstraint(
                    model_name="sessionfact",
                    constraint=models.UniqueConstraint(
                        fields=("session_id", "kind", "at"), name="sessionfact_unique_kind"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(f'ALTER TABLE {TABLE} ADD COLUMN "at" timestamptz NULL'),
                migrations.RunSQL(TRIGGER),
                migrations.RunPython(fill, elidable=False),
                migrations.RunPython(not_null, elidable=False),
                migrations.RunPython(unique_key, elidable=False),
                migrations.RunPython(partition, elidable=False),
            ],
        ),
    ]
