"""Export lines without locks against chargers (issue 20 item 2): the queue becomes insert-only (its own id, no
unique session, no foreign key: a trigger in a charger's transaction never waits), the stored lines lose their
foreign key to the session (the renderer's commit no longer locks session rows), and the triggers are reinstalled
(insert-only, plus a tombstone when a session is deleted). The queued sessions are carried over."""

from django.db import migrations, models


def install(apps, schema_editor):
    from apps.reports import lines

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(lines.triggers_sql())  # the layout version stays what it was


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0003_session_lines"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE TEMPORARY TABLE reports_pendingline_carried AS "
            "SELECT session_id, tenant_id, queued_at FROM reports_pendingline",
            reverse_sql=(
                "CREATE TEMPORARY TABLE reports_pendingline_carried AS "
                "SELECT DISTINCT ON (session_id) session_id, tenant_id, queued_at FROM reports_pendingline "
                "ORDER BY session_id, queued_at DESC"
            ),
        ),
        migrations.DeleteModel(name="PendingLine"),
        migrations.CreateModel(
            name="PendingLine",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("session_id", models.BigIntegerField(db_index=True)),
                ("tenant_id", models.BigIntegerField(db_index=True)),
                ("queued_at", models.DateTimeField()),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO reports_pendingline (session_id, tenant_id, queued_at) "
            "SELECT session_id, tenant_id, queued_at FROM reports_pendingline_carried; "
            "DROP TABLE reports_pendingline_carried",
            reverse_sql=(
                "INSERT INTO reports_pendingline (session_id, tenant_id, queued_at) "
                "SELECT c.session_id, c.tenant_id, c.queued_at FROM reports_pendingline_carried c "
                "WHERE EXISTS (SELECT 1 FROM charging_chargingsession s WHERE s.id = c.session_id); "
                "DROP TABLE reports_pendingline_carried"
            ),
        ),
        migrations.AlterField(
            model_name="sessionline",
            name="session",
            field=models.BigIntegerField(db_column="session_id", primary_key=True, serialize=False),
        ),
        migrations.RenameField(model_name="sessionline", old_name="session", new_name="session_id"),
        migrations.AlterField(
            model_name="sessionline",
            name="session_id",
            field=models.BigIntegerField(primary_key=True, serialize=False),
        ),
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
