"""Meter values (the biggest table: ~1 row per measurand per minute per charging connector) become partitioned by
day of their sample timestamp (apps/core/partitions.py), like the frame log (ocpp 0005) and status history
(stations 0009); a session records the span of its samples so its reads touch only those days.

On a large table, without downtime:
- the session's two new columns are added with a constant default and the default dropped again: both catalog
  changes (PostgreSQL keeps the default as the "missing value" of the rows that existed, no rewrite), so every
  existing session reads 1970..9999 (its samples may be anywhere: read unbounded) and new ones start with NULL;
- the existing meter values stay where they are: a CHECK (timestamp < cut) is added NOT VALID and validated by a
  scan that holds only SHARE UPDATE EXCLUSIVE (chargers keep inserting meanwhile), then one short transaction
  under ACCESS EXCLUSIVE renames the table to `charging_metervalue_legacy`, creates the partitioned parent,
  attaches the old table as the partition of everything before the cut (the validated CHECK spares the scan),
  and re-creates the indexes, the unique sample key (ON CONFLICT dedup of resent frames) and the foreign keys on
  the parent: each adopts the legacy table's existing index/constraint instead of building one. No row is
  copied; the lock lasts as long as those catalog changes (milliseconds), whatever the table's size.
- new rows land in day partitions (made a week ahead, beat keeps them ahead); the legacy partition is dropped
  whole by retention once its whole range is past METER_VALUE_RETENTION_DAYS.

Non-atomic, so the validation scan does not run inside the transaction that takes the final lock."""

from django.db import migrations, models

from apps.core.partitions import convert_to_partitioned

TABLE = "charging_metervalue"
INDEXES = {
    "metervalue_session_ts": '(session_id, "timestamp")',
    "charging_metervalue_session_id_77358bed": "(session_id)",
    "charging_metervalue_charge_point_id_e5c09874": "(charge_point_id)",
}
UNIQUE = {
    "metervalue_unique_sample": '(charge_point_id, connector_id, "timestamp", measurand, phase, location, context)',
}
# existing sessions: their samples may lie anywhere, so their span is "everything" (read unbounded)
SPAN = """
ALTER TABLE charging_chargingsession
    ADD COLUMN samples_from timestamptz NULL DEFAULT '1970-01-01T00:00:00Z',
    ADD COLUMN samples_until timestamptz NULL DEFAULT '9999-12-31T00:00:00Z';
ALTER TABLE charging_chargingsession ALTER COLUMN samples_from DROP DEFAULT, ALTER COLUMN samples_until DROP DEFAULT;
"""
SPAN_BACK = "ALTER TABLE charging_chargingsession DROP COLUMN samples_from, DROP COLUMN samples_until;"


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        convert_to_partitioned(cursor, table=TABLE, column="timestamp", indexes=INDEXES, unique=UNIQUE)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("charging", "0015_partner_session_command_states"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="chargingsession",
                    name="samples_from",
                    field=models.DateTimeField(blank=True, editable=False, null=True),
                ),
                migrations.AddField(
                    model_name="chargingsession",
                    name="samples_until",
                    field=models.DateTimeField(blank=True, editable=False, null=True),
                ),
            ],
            database_operations=[migrations.RunSQL(SPAN, SPAN_BACK)],
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False),
    ]
