"""Issued invoices are immutable, in the database too.

Services already refuse changes; these triggers make a bypass (raw SQL, a careless admin action, a bug)
fail loudly. Once an invoice has left `draft`, only its life-cycle columns may change (status, sent/paid
times, the rendered PDF file, updated_at); its lines can be neither added, changed nor removed; the
invoice cannot be deleted. TRUNCATE (test teardown) does not fire row triggers.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION billing_invoice_immutable() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'invoice % is issued and cannot be deleted', OLD.number USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status <> 'draft' AND (
        NEW.tenant_id, NEW.kind, NEW.number, NEW.number_year, NEW.business_customer_id, NEW.driver_id,
        NEW.customer_name, NEW.customer_address, NEW.customer_email, NEW.customer_vat_id, NEW.period_start,
        NEW.period_end, NEW.receipt_session_id, NEW.credited_invoice_id, NEW.currency, NEW.issued_at,
        NEW.due_date, NEW.total_excl_vat, NEW.total_vat, NEW.total_incl_vat, NEW.vat_breakdown, NEW.notes
    ) IS DISTINCT FROM (
        OLD.tenant_id, OLD.kind, OLD.number, OLD.number_year, OLD.business_customer_id, OLD.driver_id,
        OLD.customer_name, OLD.customer_address, OLD.customer_email, OLD.customer_vat_id, OLD.period_start,
        OLD.period_end, OLD.receipt_session_id, OLD.credited_invoice_id, OLD.currency, OLD.issued_at,
        OLD.due_date, OLD.total_excl_vat, OLD.total_vat, OLD.total_incl_vat, OLD.vat_breakdown, OLD.notes
    ) THEN
        RAISE EXCEPTION 'invoice % is issued and immutable; correct it with a credit note', OLD.number
            USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> 'draft' AND NEW.status = 'draft' THEN
        RAISE EXCEPTION 'invoice % cannot go back to draft', OLD.number USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoice_immutable
    BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_immutable();

CREATE OR REPLACE FUNCTION billing_invoiceline_immutable() RETURNS trigger AS $$
DECLARE
    invoice_status text;
BEGIN
    SELECT status INTO invoice_status FROM billing_invoice
        WHERE id = (CASE WHEN TG_OP = 'DELETE' THEN OLD.invoice_id ELSE NEW.invoice_id END);
    IF invoice_status IS NOT NULL AND invoice_status <> 'draft' THEN
        RAISE EXCEPTION 'the lines of an issued invoice are immutable' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER billing_invoiceline_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON billing_invoiceline
    FOR EACH ROW EXECUTE FUNCTION billing_invoiceline_immutable();
"""

BACKWARD = r"""
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_invoiceline_immutable();
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_invoice_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
