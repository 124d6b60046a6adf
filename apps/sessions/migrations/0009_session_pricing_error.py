"""A completed session that could not be priced keeps an empty cost and says why (`pricing_error`), instead of a
cost of 0 that billing would bill. Sessions completed before: their CDR's remark "not priced: ..." tells."""

from typing import Any

from django.db import migrations, models

NOT_PRICED = "not priced: "


def mark_not_priced(apps: Any, schema_editor: Any) -> None:
    ChargingSession = apps.get_model("charging", "ChargingSession")
    Cdr = apps.get_model("charging", "Cdr")
    for session_id, remark in Cdr.objects.filter(remark__startswith=NOT_PRICED).values_list("session_id", "remark"):
        ChargingSession.objects.filter(pk=session_id).update(
            cost_excl_vat=None,
            cost_incl_vat=None,
            cost_breakdown=None,
            pricing_error=remark[len(NOT_PRICED) :][:255] or "not priced",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("charging", "0008_history_protected"),
    ]

    operations = [
        migrations.AddField(
            model_name="chargingsession",
            name="pricing_error",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.RunPython(mark_not_priced, migrations.RunPython.noop),
    ]
