"""Every frame of a charger updates its row (`last_seen_at`, a status, a heartbeat), and an index on `last_seen_at`
made each of those updates non-HOT: PostgreSQL wrote a new entry into all 16 indexes of the table, the search's two
GIN indexes included, instead of none. On the OCPP benchmark's database 626 of 455,983 charge point updates were
HOT. Nothing needs that index: the offline sweep compares `last_seen_at` with each row's own heartbeat interval
(an index cannot serve that) and runs once a minute over a table of chargers (a sequential scan of 100,000 rows
takes milliseconds); the dashboard's offline list goes by tenant and `online` (`cp_tenant_online`).

A fill factor of 85 leaves room on each page for the new version of a row, which a HOT update needs (it applies
to pages written from now on; VACUUM FULL would apply it to existing ones, and is not needed). Both are short
catalog changes: `DROP INDEX` takes its lock for the time of the catalog update only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stations", "0012_command_status_labels"),
    ]

    operations = [
        migrations.AlterField(
            model_name="chargepoint",
            name="last_seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            "ALTER TABLE stations_chargepoint SET (fillfactor = 85)",
            "ALTER TABLE stations_chargepoint RESET (fillfactor)",
        ),
    ]
