"""Invoices: line snapshots, issuing and numbering, immutability, void and credit notes, the monthly run, receipts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from apps.billing import services
from apps.billing.costing import SessionPrice
from apps.billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceNumberSequence, InvoiceStatus
from apps.billing.services import invoices
from apps.core.errors import ApplicationError, Conflict
from apps.sessions.models import ChargingSession
from apps.tenants.models import Tenant
from tests.billing.factories import ChargingSessionFactory, draft_invoice, issued_invoice, price
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory
from tests.stations.factories import EvseFactory

pytestmark = pytest.mark.django_db

ISSUED_AT = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)


def test_line_copies_what_it_prints_from_session_and_breakdown(tenant_a: Tenant) -> None:
    evse = EvseFactory(
        charge_point__tenant=tenant_a,
        charge_point__location__name="Parkhaus Mitte",
        charge_point__meter_type="EM340",
        charge_point__meter_serial_number="SN77",
        evse_uid="DE*ALP*E1*1",
    )
    session = ChargingSessionFactory(
        tenant=tenant_a,
        charge_point=evse.charge_point,
        evse=evse,
        started_at=dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC),
        stopped_at=dt.datetime(2026, 3, 10, 8, 45, tzinfo=dt.UTC),
    )

    invoice = services.invoice_create_draft(
        tenant=tenant_a,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=[(session, price(energy="8.10", time="0.90", flat="1.00"))],
    )

    line = invoice.lines.get()
    assert line.session_id == session.pk
    assert line.session_reference == f"{evse.charge_point.identity}-{session.pk}"
    assert line.location_name == "Parkhaus Mitte"
    assert line.location_address == "Energiestraße 1, 10115 Berlin, DE"
    assert line.evse_reference == "DE*ALP*E1*1"
    assert (line.started_at, line.stopped_at, line.duration_seconds) == (session.started_at, session.stopped_at, 2700)
    assert line.energy_wh == 22_500
    assert [(c["dimension"], c["excl_vat"], c["incl_vat"]) for c in line.components] == [
        ("ENERGY", "8.10", "9.64"),
        ("TIME", "0.90", "1.07"),
        ("FLAT", "1.00", "1.19"),
    ]
    assert (line.vat_rate, line.total_excl_vat, line.total_vat, line.total_incl_vat) == (
        Decimal("19.00"),
        Decimal("10.00"),
        Decimal("1.90"),
        Decimal("11.90"),
    )
    assert "OCMF transaction" in line.meter_verification
    assert "meter EM340 SN77" in line.meter_verification
    assert "Transparenzsoftware" in line.meter_verification
    # the line is a snapshot: changing the session later changes nothing on it
    ChargingSession.objects.filter(pk=session.pk).update(energy_wh=1)
    line.refresh_from_db()
    assert line.energy_wh == 22_500


def test_invoice_total_is_the_sum_of_its_sessions_to_the_cent_and_vat_per_rate(tenant_a: Tenant) -> None:
    priced = [
        (ChargingSessionFactory(tenant=tenant_a), price(energy="3.33", time="0.00", flat="0.00")),  # 3.96 gross
        (ChargingSessionFactory(tenant=tenant_a), price(energy="3.33", time="0.00", flat="0.00")),
        (ChargingSessionFactory(tenant=tenant_a), price(energy="5.00", time="0.00", flat="0.00", vat="7.00")),
    ]

    invoice = services.invoice_create_draft(
        tenant=tenant_a, period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31), priced_sessions=priced
    )

    assert invoice.total_incl_vat == sum((p.total_incl_vat for _, p in priced), Decimal(0)) == Decimal("13.27")
    assert invoice.total_excl_vat == Decimal("11.66")
    assert invoice.vat_breakdown == [
        {"rate": "7.00", "net": "5.00", "vat": "0.35", "gross": "5.35"},
        {"rate": "19.00", "net": "6.66", "vat": "1.26", "gross": "7.92"},
    ]


def test_issue_numbers_gapless_per_tenant_and_year(tenant_a: Tenant, tenant_b: Tenant) -> None:
    first = services.invoice_issue(invoice=draft_invoice(tenant_a), issued_at=ISSUED_AT, render=False)
    second = services.invoice_issue(invoice=draft_invoice(tenant_a), issued_at=ISSUED_AT, render=False)
    other = services.invoice_issue(invoice=draft_invoice(tenant_b), issued_at=ISSUED_AT, render=False)
    next_year = services.invoice_issue(
        invoice=draft_invoice(tenant_a), issued_at=dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC), render=False
    )

    assert [first.number, second.number, other.number] == ["ALP-2026-000001", "ALP-2026-000002", "BET-2026-000001"]
    # 23:30 UTC on 31 December is already 2027 in Berlin, the tenant's time zone
    assert next_year.number == "ALP-2027-000001"
    assert first.status == InvoiceStatus.ISSUED
    assert first.due_date == dt.date(2026, 4, 15)
    assert list(first.events.values_list("action", "from_status", "to_status")) == [
        ("created", "", "draft"),
        ("issued", "draft", "issued"),
    ]


def test_issuing_twice_is_refused_and_does_not_consume_a_number(tenant_a: Tenant) -> None:
    invoice = issued_invoice(tenant_a)

    with pytest.raises(Conflict) as exc:
        services.invoice_issue(invoice=invoice, render=False)

    assert exc.value.code == "invoice_not_draft"
    assert InvoiceNumberSequence.objects.get(tenant=tenant_a).last_number == 1


def test_failed_issue_rolls_its_number_back(tenant_a: Tenant) -> None:
    empty = Invoice.objects.create(
        tenant=tenant_a, customer_name="X", period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31)
    )

    with pytest.raises(ApplicationError):
        services.invoice_issue(invoice=empty, render=False)
    issued = services.invoice_issue(invoice=draft_invoice(tenant_a), issued_at=ISSUED_AT, render=False)

    assert issued.number == "ALP-2026-000001"
    assert Invoice.objects.get(pk=empty.pk).status == InvoiceStatus.DRAFT


def test_issued_invoice_refuses_changes_in_services_and_in_the_database(tenant_a: Tenant) -> None:
    invoice = issued_invoice(tenant_a)
    line = invoice.lines.get()

    with pytest.raises(Conflict):
        services.invoice_update_draft(invoice=invoice, notes="changed")
    with pytest.raises(Conflict):
        services.invoice_delete_draft(invoice=invoice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(total_incl_vat=Decimal("1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(pk=line.pk).update(total_excl_vat=Decimal("0.01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=invoice,
            position=99,
            description="sneaked in",
            vat_rate=19,
            total_excl_vat=1,
            total_vat=0,
            total_incl_vat=1,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).delete()

    fresh = Invoice.objects.get(pk=invoice.pk)
    assert fresh.total_incl_vat == invoice.total_incl_vat
    assert fresh.lines.count() == 1
    # life-cycle columns may still change
    assert Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.SENT) == 1


def test_draft_can_change_and_be_deleted(tenant_a: Tenant) -> None:
    invoice = draft_invoice(tenant_a)

    services.invoice_update_draft(invoice=invoice, notes="Thanks")
    assert Invoice.objects.get(pk=invoice.pk).notes == "Thanks"
    services.invoice_delete_draft(invoice=invoice)

    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    assert not InvoiceLine.objects.filter(invoice_id=invoice.pk).exists()


def test_credit_note_negates_the_original_and_gets_the_next_number(tenant_a: Tenant) -> None:
    original = issued_invoice(tenant_a, sessions=2)

    note = services.invoice_credit_note_create(invoice=original, reason="wrong tariff")

    original.refresh_from_db()
    assert note.kind == InvoiceKind.CREDIT_NOTE
    assert note.status == InvoiceStatus.ISSUED
    assert note.number.endswith("-000002")
    assert note.credited_invoice_id == original.pk
    assert note.total_incl_vat == -original.total_incl_vat
    assert note.vat_breakdown == [{"rate": "19.00", "net": "-20.00", "vat": "-3.80", "gross": "-23.80"}]
    assert [line.total_excl_vat for line in note.lines.all()] == [Decimal("-10.00"), Decimal("-10.00")]
    assert original.status == InvoiceStatus.CREDITED
    assert list(original.events.values_list("action", flat=True)) == ["created", "issued", "credited"]
    with pytest.raises(Conflict):
        services.invoice_credit_note_create(invoice=original, reason="again")


def test_partial_credit_notes_reverse_chosen_lines_until_the_invoice_is_credited(tenant_a: Tenant) -> None:
    # given an issued invoice with three sessions of 10.00 net each
    original = issued_invoice(tenant_a, sessions=3)
    lines = list(original.lines.order_by("position"))

    # when its second line is credited
    first = services.invoice_credit_note_create(invoice=original, reason="session 2 was a test", positions=[2])

    # then the note reverses that line only, and the invoice stays issued, with the lines it still bills
    original.refresh_from_db()
    assert [(x.position, x.session_id, x.total_excl_vat) for x in first.lines.all()] == [
        (1, lines[1].session_id, Decimal("-10.00"))
    ]
    assert first.lines.get().credits_line_id == lines[1].pk
    assert (first.total_excl_vat, first.total_incl_vat) == (Decimal("-10.00"), Decimal("-11.90"))
    assert first.notes == f"Credit note for invoice {original.number}, lines 2: session 2 was a test"
    assert original.status == InvoiceStatus.ISSUED
    assert invoices._billed_session_ids(tenant_a.pk, [x.session_id for x in lines]) == {
        lines[0].session_id,
        lines[2].session_id,
    }
    event = original.events.order_by("-pk").first()
    assert event is not None
    assert (event.action, event.detail["positions"]) == ("partially_credited", [2])

    # when a line is credited again, or a position does not exist: refused, nothing changed
    notes_before = Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).count()
    for positions, message in (([2], "Line 2 of invoice"), ([1, 9], "has no line 9")):
        with pytest.raises(ApplicationError) as refused:
            services.invoice_credit_note_create(invoice=original, reason="again", positions=positions)
        assert refused.value.code == "invalid_positions"
        assert message in refused.value.message
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT_NOTE).count() == notes_before
    original.refresh_from_db()
    assert original.status == InvoiceStatus.ISSUED

    # when the rest is credited without naming lines: the other two, and the invoice is credited
    rest = services.invoice_credit_note_create(invoice=original, reason="contract cancelled")
    original.refresh_from_db()
    assert [x.credits_line_id for x in rest.lines.all()] == [lines[0].pk, lines[2].pk]
    assert first.total_incl_vat + rest.total_incl_vat == -original.total_incl_vat
    assert original.status == InvoiceStatus.CREDITED
    assert rest.number.endswith("-000003")
    with pytest.raises(Conflict):
        services.invoice_credit_note_create(invoice=original, reason="once more")


def test_void_keeps_the_number_and_refuses_paid_invoices(tenant_a: Tenant) -> None:
    invoice = issued_invoice(tenant_a)
    paid = issued_invoice(tenant_a)
    services.invoice_mark_paid(invoice=paid)

    voided = services.invoice_void(invoice=invoice, reason="duplicate")
    with pytest.raises(Conflict):
        services.invoice_void(invoice=paid, reason="no")

    assert (voided.status, voided.number) == (InvoiceStatus.VOID, invoice.number)
    assert Invoice.objects.get(pk=paid.pk).status == InvoiceStatus.PAID


def test_draft_from_another_tenants_session_is_refused(tenant_a: Tenant, tenant_b: Tenant) -> None:
    with pytest.raises(ApplicationError) as exc:
        services.invoice_create_draft(
            tenant=tenant_a,
            period_start=dt.date(2026, 3, 1),
            period_end=dt.date(2026, 3, 31),
            priced_sessions=[(ChargingSessionFactory(tenant=tenant_b), price())],
        )

    assert exc.value.code == "wrong_tenant"
    assert Invoice.objects.count() == 0


# --------------------------------------------------------------------------- the monthly run


def fixed_price(n: int) -> SessionPrice:
    return price(energy=f"{n % 7 + 1}.37", time="0.45", flat="0.00")


def fleet_sessions(tenant: Tenant, count: int, when: dt.datetime) -> tuple[object, list[ChargingSession]]:
    """A business customer's sessions, as session_start links them (the customer who pays) and completion prices
    them (`fixed_price(i)` stored)."""
    customer = BusinessCustomerFactory(tenant=tenant, billing_email="ap@fleet.example")
    token = TokenFactory(tenant=tenant, business_customer=customer)
    sessions = [
        ChargingSessionFactory(
            tenant=tenant,
            id_tag=token.uid.lower(),
            token=token,
            business_customer=customer,
            started_at=when + dt.timedelta(hours=i),
            priced=fixed_price(i),
        )
        for i in range(count)
    ]
    return customer, sessions


def test_monthly_run_issues_one_invoice_per_customer_and_twice_issues_nothing_twice(tenant_a: Tenant) -> None:
    customer, sessions = fleet_sessions(tenant_a, 3, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))
    other, _others = fleet_sessions(tenant_a, 2, dt.datetime(2026, 3, 20, 10, tzinfo=dt.UTC))
    ChargingSessionFactory(tenant=tenant_a, id_tag="UNKNOWN", started_at=dt.datetime(2026, 3, 6, tzinfo=dt.UTC))
    ChargingSessionFactory(
        tenant=tenant_a, id_tag=sessions[0].id_tag, started_at=dt.datetime(2026, 4, 1, 8, tzinfo=dt.UTC)
    )

    first = services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)
    second = services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    assert len(first.issued) == 2
    assert second.issued == []
    assert second.skipped_existing == 2
    invoices = Invoice.objects.filter(tenant=tenant_a).order_by("number")
    assert [i.business_customer_id for i in invoices] == sorted([customer.pk, other.pk])  # type: ignore[attr-defined]
    mine = invoices.get(business_customer=customer)
    assert sorted(mine.lines.values_list("session_id", flat=True)) == sorted(s.pk for s in sessions)
    assert mine.total_incl_vat == sum((fixed_price(i).total_incl_vat for i in range(3)), Decimal(0))
    assert mine.total_incl_vat == sum((s.cost_incl_vat for s in sessions), Decimal(0))
    assert (mine.period_start, mine.period_end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def test_monthly_run_resumes_a_draft_left_by_a_crash(tenant_a: Tenant) -> None:
    customer, sessions = fleet_sessions(tenant_a, 2, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))
    left = services.invoice_create_draft(
        tenant=tenant_a,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=[(s, fixed_price(i)) for i, s in enumerate(sessions)],
        business_customer=customer,  # type: ignore[arg-type]
    )

    report = services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    left.refresh_from_db()
    assert report.issued == [left.number]
    assert left.status == InvoiceStatus.ISSUED
    assert Invoice.objects.count() == 1


def test_unique_constraint_stops_a_second_invoice_for_the_same_customer_and_period(tenant_a: Tenant) -> None:
    customer = BusinessCustomerFactory(tenant=tenant_a)
    draft_invoice(tenant_a, business_customer=customer)

    with pytest.raises(Conflict) as exc:
        draft_invoice(tenant_a, business_customer=customer)

    assert exc.value.code == "invoice_exists"
    assert Invoice.objects.filter(business_customer=customer).count() == 1


def test_session_receipt_for_an_ad_hoc_driver_is_issued_once(tenant_a: Tenant) -> None:
    driver = DriverFactory(tenant=tenant_a, email="dana@example.com")
    token = TokenFactory(tenant=tenant_a, driver=driver)
    session = ChargingSessionFactory(tenant=tenant_a, id_tag=token.uid, token=token, driver=driver)

    receipt = services.session_receipt_issue(session=session)
    again = services.session_receipt_issue(session=session)

    assert receipt is not None
    assert again is not None
    assert receipt.pk == again.pk
    assert receipt.kind == InvoiceKind.RECEIPT
    assert receipt.status == InvoiceStatus.ISSUED
    assert receipt.driver_id == driver.pk
    assert receipt.customer_email == "dana@example.com"
    assert receipt.total_incl_vat == session.cost_incl_vat == Decimal("11.90")


def test_fleet_sessions_get_no_receipt(tenant_a: Tenant) -> None:
    _, sessions = fleet_sessions(tenant_a, 1, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))

    assert services.session_receipt_issue(session=sessions[0]) is None
    assert Invoice.objects.count() == 0


def test_db_trigger_exists() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'billing_%' ORDER BY tgname")
        assert [r[0] for r in cursor.fetchall()] == ["billing_invoice_immutable", "billing_invoiceline_immutable"]


# --------------------------------------------------------------------------- with the real pricing engine


def test_the_contract_price_list_is_applied_at_completion_and_the_invoice_bills_that_price(tenant_a: Tenant) -> None:
    # given the tenant's default tariff 0.39/kWh + 19 % VAT and the fleet's price list: 10 % off, 0.50 per
    # session, 9.90 per month (19 % VAT); two fleet sessions of 22.5 kWh priced by completion
    from apps.sessions import completion
    from apps.sessions.models import Cdr
    from tests.tariffs.factories import ContractPriceListFactory, TariffAssignmentFactory

    TariffAssignmentFactory(tenant=tenant_a)
    customer, sessions = fleet_sessions(tenant_a, 2, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))
    ContractPriceListFactory(tenant=tenant_a, business_customer=customer, vat_rate=Decimal("19"))
    ChargingSession.objects.filter(pk__in=[s.pk for s in sessions]).update(
        cost_excl_vat=None, cost_incl_vat=None, cost_breakdown=None, currency=""
    )
    with transaction.atomic():
        for session in sessions:
            completion.session_complete(session=session)

    report = services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    # per session: 22.5 kWh x 0.351 = 7.8975 -> 7.90 excl., x 1.19 = 9.398025 -> 9.40 incl.; session fee 0.50
    # -> 0.595 -> 0.60 incl.; monthly fee 9.90 -> 11.781 -> 11.78 incl.
    # invoice: excl. 2 x (7.90 + 0.50) + 9.90 = 26.70; incl. 2 x (9.40 + 0.60) + 11.78 = 31.78
    assert report.unpriced_sessions == {}
    invoice = Invoice.objects.get(business_customer=customer)
    assert invoice.number == report.issued[0]
    assert (invoice.total_excl_vat, invoice.total_incl_vat) == (Decimal("26.70"), Decimal("31.78"))
    lines = list(invoice.lines.order_by("position"))
    assert [line.total_incl_vat for line in lines] == [Decimal("10.00"), Decimal("10.00"), Decimal("11.78")]
    assert [c["dimension"] for c in lines[0].components] == ["ENERGY", "CONTRACT_FEE"]
    assert lines[2].session_id is None
    assert lines[2].description.startswith("Monthly fee")
    assert invoice.total_incl_vat == sum((line.total_incl_vat for line in lines), Decimal(0))
    # the line is the session's and its CDR's price, to the cent
    for line in lines[:2]:
        session = ChargingSession.objects.get(pk=line.session_id)
        cdr = Cdr.objects.get(session=session)
        assert (line.total_excl_vat, line.total_incl_vat) == (session.cost_excl_vat, session.cost_incl_vat)
        assert cdr.total_cost == {"excl_vat": line.total_excl_vat, "incl_vat": line.total_incl_vat}


def test_billing_never_prices_again_a_tariff_change_after_completion_changes_no_bill(tenant_a: Tenant) -> None:
    # given a session priced and stored at completion (10.00 / 11.90) and a tariff that now says otherwise
    from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

    expensive = [{"price_components": [{"type": "ENERGY", "price": "9.99", "vat": "19", "step_size": 1}]}]
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, elements=expensive))
    TariffAssignmentFactory(tenant=tenant_a, tariff=TariffFactory(tenant=tenant_a, elements=expensive), ad_hoc=True)
    driver = DriverFactory(tenant=tenant_a)
    session = ChargingSessionFactory(tenant=tenant_a, driver=driver)
    customer, fleet = fleet_sessions(tenant_a, 1, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))

    receipt = services.session_receipt_issue(session=session)
    services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    assert receipt is not None
    assert (receipt.total_excl_vat, receipt.total_incl_vat) == (Decimal("10.00"), Decimal("11.90"))
    line = Invoice.objects.get(business_customer=customer).lines.get()
    assert (line.total_excl_vat, line.total_incl_vat) == (fleet[0].cost_excl_vat, fleet[0].cost_incl_vat)


def test_a_session_that_was_not_priced_is_never_billed_as_zero(tenant_a: Tenant) -> None:
    driver = DriverFactory(tenant=tenant_a)
    unpriced = ChargingSessionFactory(
        tenant=tenant_a,
        driver=driver,
        cost_excl_vat=None,
        cost_incl_vat=None,
        cost_breakdown=None,
        pricing_error="no tariff applies",
    )
    customer, fleet = fleet_sessions(tenant_a, 2, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))
    ChargingSession.objects.filter(pk=fleet[1].pk).update(
        cost_excl_vat=None, cost_incl_vat=None, cost_breakdown=None, pricing_error="no tariff applies"
    )

    with pytest.raises(ApplicationError) as exc:
        services.session_receipt_issue(session=unpriced)
    report = services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    assert exc.value.code == "session_not_priced"
    assert not Invoice.objects.filter(kind=InvoiceKind.RECEIPT).exists()
    assert report.unpriced_sessions == {fleet[1].pk: f"Session {fleet[1].pk} is not priced: no tariff applies."}
    invoice = Invoice.objects.get(business_customer=customer)
    assert list(invoice.lines.values_list("session_id", flat=True)) == [fleet[0].pk]
    with pytest.raises(ApplicationError) as refused:
        services.invoice_draft_for_customer(
            tenant=tenant_a,
            business_customer=customer,  # type: ignore[arg-type]
            period_start=dt.date(2026, 3, 1),
            period_end=dt.date(2026, 3, 31),
        )
    assert refused.value.code == "session_not_priced"
    assert refused.value.fields == {
        "sessions": [f"{fleet[1].pk}: Session {fleet[1].pk} is not priced: no tariff applies."]
    }


def test_a_session_priced_in_another_currency_is_not_billed_in_the_tenants(tenant_a: Tenant) -> None:
    # the tenant bills in EUR; a session was priced by a CHF tariff: it is not converted, it is reported
    driver = DriverFactory(tenant=tenant_a)
    session = ChargingSessionFactory(tenant=tenant_a, driver=driver, priced=price(currency="CHF"))
    _, fleet = fleet_sessions(tenant_a, 1, dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC))
    ChargingSession.objects.filter(pk=fleet[0].pk).update(currency="CHF")

    with pytest.raises(ApplicationError) as exc:
        services.session_receipt_issue(session=session)
    report = services.invoicing_run_month(tenant=tenant_a, year=2026, month=3, render=False)

    assert exc.value.code == "currency_mismatch"
    assert report.unpriced_sessions == {
        fleet[0].pk: f"Session {fleet[0].pk} is priced in CHF, the tenant bills in EUR."
    }
    assert not Invoice.objects.exists()


def test_the_vat_rate_of_the_supply_stays_when_the_tenants_default_changes(tenant_a: Tenant) -> None:
    # priced at completion with 19 %; the tenant's default is 7 % by the time the invoice is made
    driver = DriverFactory(tenant=tenant_a)
    session = ChargingSessionFactory(tenant=tenant_a, driver=driver)
    Tenant.objects.filter(pk=tenant_a.pk).update(default_vat_rate=Decimal("7"))

    receipt = services.session_receipt_issue(session=session)

    assert receipt is not None
    assert receipt.vat_breakdown == [{"rate": "19.00", "net": "10.00", "vat": "1.90", "gross": "11.90"}]
