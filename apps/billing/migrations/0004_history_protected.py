"""History is never deleted by a delete: invoice lines and payment events are PROTECT; a deleted draft's audit
events stay (their link is cleared, `invoice_ref` keeps the invoice's id, filled here for existing rows)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_invoice_line_credits_line"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="invoiceevent",
            name="invoice_ref",
            field=models.IntegerField(null=True),
        ),
        migrations.RunSQL(
            "UPDATE billing_invoiceevent SET invoice_ref = invoice_id",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="invoiceevent",
            name="invoice_ref",
            field=models.IntegerField(help_text="The invoice's id, kept after a deleted draft's link is cleared."),
        ),
        migrations.AlterField(
            model_name="invoiceevent",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="invoiceevent",
            name="invoice",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="events",
                to="billing.invoice",
            ),
        ),
        migrations.AlterField(
            model_name="invoiceline",
            name="invoice",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="lines", to="billing.invoice"
            ),
        ),
        migrations.AlterField(
            model_name="paymentevent",
            name="payment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="events", to="billing.payment"
            ),
        ),
    ]
