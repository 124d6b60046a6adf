"""The demo history: tariffs, priced sessions with CDRs and last month's fleet invoices, seeded idempotently."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

from django.core.management import call_command
from django.db.models import Sum

from apps.analytics.models import KpiBucket
from apps.billing.models import Invoice, InvoiceLine
from apps.demo.history_demo import DEMO_FLAG
from apps.sessions.models import Cdr, ChargingSession
from apps.tariffs.models import ContractPriceList, Tariff, TariffAssignment


def history_counts() -> dict[str, int]:
    return {
        "tariffs": Tariff.objects.count(),
        "assignments": TariffAssignment.objects.count(),
        "price_lists": ContractPriceList.objects.count(),
        "sessions": ChargingSession.objects.count(),
        "cdrs": Cdr.objects.count(),
        "invoices": Invoice.objects.count(),
        "invoice_lines": InvoiceLine.objects.count(),
    }


def test_seed_demo_history_is_idempotent_priced_and_invoiced(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())
    first = history_counts()
    call_command("seed_demo", stdout=StringIO())

    assert history_counts() == first
    assert first["tariffs"] == 8  # 4 per tenant
    assert first["assignments"] == 8
    assert first["price_lists"] == 2
    for slug in ("voltnet", "fjord"):
        sessions = ChargingSession.objects.filter(tenant__slug=slug, flags__contains=[DEMO_FLAG])
        assert 150 <= sessions.count() <= 400
        assert Cdr.objects.filter(session__in=sessions).count() == sessions.count()
        assert not sessions.filter(cost_incl_vat__isnull=True).exists()
        assert not sessions.filter(tariff__isnull=True).exists()
        assert not sessions.filter(suspicious=True).exists()
        # the dashboard's figures include the history (facts backfilled, rolled up)
        day_energy = KpiBucket.objects.filter(tenant__slug=slug, granularity="day").aggregate(e=Sum("energy_wh"))["e"]
        assert day_energy == sessions.aggregate(e=Sum("energy_wh"))["e"]
        assert sessions.filter(tariff__ocpi_id__endswith="-NIGHT").exists()
        assert sessions.filter(tariff__ocpi_id__endswith="-FAST").exists()
        assert sessions.filter(tariff__ocpi_id__endswith="-ADHOC").exists()
        assert sessions.filter(tariff__ocpi_id__endswith="-STANDARD").exists()
        assert not Cdr.objects.filter(session__in=sessions, remark__startswith="not priced").exists()
        # parking is billed only from what the charger said (SuspendedEV when charging ended), after the grace
        parked = [s for s in sessions if s.cost_breakdown["idle"]]
        assert parked
        assert {span["evidence"] for s in parked for span in s.cost_breakdown["idle"]} == {"status:SuspendedEV"}
        for session in sessions.filter(cdr__total_parking_cost__isnull=False):
            assert session.cost_breakdown["idle"], session.pk  # no parking without evidence
        standard = sessions.filter(tariff__ocpi_id__endswith="-STANDARD")
        assert {s.cost_breakdown["parking_grace_minutes"] for s in standard} == {15}
        cdr = Cdr.objects.select_related("session__tariff").filter(session__in=sessions).order_by("pk").first()
        assert cdr is not None
        assert cdr.session.tariff is not None
        assert [t["id"] for t in cdr.tariffs] == [cdr.session.tariff.ocpi_id]  # the pricing tariff, stored JSON-safe
        assert Decimal(cdr.total_cost["incl_vat"]) == cdr.session.cost_incl_vat
        invoices = Invoice.objects.filter(tenant__slug=slug)
        assert sorted(invoices.values_list("business_customer__name", flat=True)) == [
            "Kurier Express",
            "Stadtwerke Fuhrpark",
        ]
        assert set(invoices.values_list("status", flat=True)) == {"issued"}
        assert set(invoices.values_list("pdf", flat=True)) == {""}  # rendered on demand, not by the seed


def test_every_demo_invoice_total_is_the_sum_of_its_lines(db: None) -> None:
    call_command("seed_demo", stdout=StringIO())

    invoices = Invoice.objects.annotate(
        lines_excl=Sum("lines__total_excl_vat"), lines_incl=Sum("lines__total_incl_vat")
    ).order_by("pk")
    assert invoices.count() == 4
    for invoice in invoices:
        assert invoice.total_excl_vat == invoice.lines_excl
        assert invoice.total_incl_vat == invoice.lines_incl
        assert invoice.total_vat == invoice.lines_incl - invoice.lines_excl
        assert invoice.total_incl_vat > 0
