"""Status history partitioned by day on the status's timestamp (apps/core/partitions.py): the existing rows become
the `_legacy` partition after a CHECK validated while chargers keep writing; availability reports over a period
read only its days. Non-atomic: the only lock held is for the final catalog swap."""

from django.db import migrations

from apps.core.partitions import convert_to_partitioned

INDEXES = {
    "statusevent_cp_ts": '(charge_point_id, "timestamp" DESC)',
    "stations_statusevent_charge_point_id_18af7232": "(charge_point_id)",
}


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    with schema_editor.connection.cursor() as cursor:
        convert_to_partitioned(cursor, table="stations_statusevent", column="timestamp", indexes=INDEXES)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("stations", "0008_signed_firmware"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
