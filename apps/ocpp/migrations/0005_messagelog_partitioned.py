"""The OCPP frame log becomes partitioned by day (apps/core/partitions.py): its existing rows stay where they are
(the `_legacy` partition, attached after a CHECK constraint validated while chargers keep writing), retention
drops whole days instead of deleting rows. Non-atomic: the only lock held is for the final catalog swap."""

from django.db import migrations

from apps.core.partitions import convert_to_partitioned

INDEXES = {
    "msglog_cp_recent": "(charge_point_id, created_at DESC)",
    "msglog_tenant_recent": "(tenant_id, created_at DESC)",
    "msglog_unique_id": "(unique_id)",
    "ocpp_messagelog_created_at_7f4feb8a": "(created_at)",
}


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        convert_to_partitioned(cursor, table="ocpp_messagelog", column="created_at", indexes=INDEXES)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ocpp", "0004_alter_messagelog_options"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
