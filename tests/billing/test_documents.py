"""The branded PDF (rendered to PNG and inspected), the Excel annex and the e-mail that delivers them."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from django.core import mail
from openpyxl import load_workbook
from PIL import Image

from apps.billing import services, tasks
from apps.billing.documents import XLSX_COLUMNS, render_invoice_pdf
from apps.billing.models import Invoice, InvoiceStatus
from apps.tenants.models import Tenant
from tests.billing.factories import ChargingSessionFactory, price
from tests.customers.factories import BusinessCustomerFactory
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db

BRAND = (0xC2, 0x18, 0x5B)  # a colour nothing else on the page uses
PNG_OUT = Path(__file__).resolve().parents[2] / ".data" / "test-artifacts" / "invoice-page1.png"


@pytest.fixture
def branded(tenant_a: Tenant) -> Tenant:
    tenant_a.primary_colour = "#C2185B"
    tenant_a.legal_name = "Alpha Charge GmbH"
    tenant_a.address_line = "Stromweg 5"
    tenant_a.postal_code = "80331"
    tenant_a.city = "München"
    tenant_a.vat_id = "DE123456789"
    tenant_a.bank_name = "Volksbank"
    tenant_a.iban = "DE89370400440532013000"
    tenant_a.bic = "COBADEFFXXX"
    tenant_a.sender_email = "billing@alpha.example"
    tenant_a.save()
    return tenant_a


def issued(
    tenant: Tenant, sessions: int = 4, issued_at: dt.datetime = dt.datetime(2026, 4, 1, 8, tzinfo=dt.UTC)
) -> Invoice:
    customer = BusinessCustomerFactory(
        tenant=tenant,
        legal_name="Fleet Logistics GmbH",
        billing_address_line="Hafenstraße 2",
        billing_postal_code="20457",
        billing_city="Hamburg",
        billing_country="DE",
        vat_id="DE999999999",
        billing_email="ap@fleet.example",
    )
    charge_point = ChargePointFactory(
        tenant=tenant, location__name="Parkhaus Mitte", meter_type="EM340", meter_serial_number="SN-0042"
    )
    priced = [
        (
            ChargingSessionFactory(
                tenant=tenant, charge_point=charge_point, started_at=dt.datetime(2026, 3, 2 + i, 7, 30, tzinfo=dt.UTC)
            ),
            price(energy=f"{7 + i}.20", time="0.60", flat="1.00"),
        )
        for i in range(sessions)
    ]
    draft = services.invoice_create_draft(
        tenant=tenant,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=priced,
        business_customer=customer,
    )
    return services.invoice_issue(invoice=draft, issued_at=issued_at, render=False)


def page_one_png(pdf: bytes) -> Image.Image:
    """Page 1 rendered to PNG by poppler's pdftoppm (108 dpi), kept in .data/test-artifacts/ to look at;
    by pypdfium2 where poppler-utils is not installed (`make test` installs it as root)."""
    PNG_OUT.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("pdftoppm"):
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "invoice.pdf"
            source.write_bytes(pdf)
            subprocess.run(
                ["pdftoppm", "-png", "-r", "108", "-f", "1", "-l", "1", "-singlefile", str(source), str(PNG_OUT)[:-4]],
                check=True,
                timeout=60,
            )
    else:
        pypdfium2.PdfDocument(pdf)[0].render(scale=1.5).to_pil().save(PNG_OUT)
    with Image.open(PNG_OUT) as image:
        return image.convert("RGB")


def test_pdf_page_one_renders_with_the_tenant_colour_and_content(branded: Tenant) -> None:
    invoice = issued(branded)

    pdf = render_invoice_pdf(invoice)

    document = pypdfium2.PdfDocument(pdf)
    assert len(document) == 1
    text = document[0].get_textpage().get_text_range()
    image = page_one_png(pdf)
    pixels = list(image.get_flattened_data())
    non_white = sum(1 for p in pixels if min(p) < 240)
    brand = sum(1 for p in pixels if all(abs(a - b) <= 6 for a, b in zip(p, BRAND, strict=True)))
    assert non_white > 0.05 * len(pixels)
    assert brand > 5_000  # the header band and table heads in the tenant's primary colour
    assert invoice.number in text
    assert "Fleet Logistics GmbH" in text
    assert "Parkhaus Mitte" in text
    assert "DE89370400440532013000" in text
    assert "Eichrecht" in text
    assert "SN-0042" in text
    assert f"{invoice.total_incl_vat:,.2f}" in text
    # the @page margin boxes rendered (their font is set in @page), with the number as plain text
    assert f"{invoice.number} · page 1 of 1" in text
    assert "Alpha Charge GmbH · Stromweg 5 · 80331 München · VAT id DE123456789" in text


def test_xlsx_annex_has_one_row_per_session(branded: Tenant) -> None:
    invoice = issued(branded, sessions=3)

    from apps.billing.documents import render_invoice_xlsx

    workbook = load_workbook(io.BytesIO(render_invoice_xlsx(invoice)))
    rows = list(workbook["Sessions"].iter_rows(values_only=True))
    columns = [str(column) for column in XLSX_COLUMNS]  # the tenant and customer read English

    assert list(rows[0]) == columns
    assert len(rows) == 4
    first = dict(zip(columns, rows[1], strict=True))
    assert first["Invoice"] == invoice.number
    assert first["Start (local)"] == dt.datetime(2026, 3, 2, 8, 30)  # Berlin time, naive for Excel
    assert first["Energy (kWh)"] == 22.5
    assert first["Energy cost excl. VAT"] == 7.2
    assert first["Total incl. VAT"] == 10.47
    assert first["Time zone"] == "Europe/Berlin"
    assert sum(Decimal(str(r[columns.index("Total incl. VAT")])) for r in rows[1:]) == invoice.total_incl_vat
    assert first["Meter data verification (Eichrecht)"].startswith("OCMF transaction ")


def test_delivery_mails_the_pdf_from_the_tenant_sender_and_marks_sent_once(branded: Tenant) -> None:
    invoice = issued(branded, sessions=1)

    tasks.invoice_deliver_email(invoice.pk)
    tasks.invoice_deliver_email(invoice.pk)  # a re-run sends nothing twice

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.from_email == "Alpha Charge <billing@alpha.example>"
    assert message.to == ["ap@fleet.example"]
    assert message.subject == f"Invoice {invoice.number} from Alpha Charge"
    name, content, mimetype = message.attachments[0]
    assert (name, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content[:5] == b"%PDF-"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.SENT
    assert invoice.sent_at is not None
    assert list(invoice.events.values_list("action", flat=True)) == ["created", "issued", "sent"]


def test_per_tenant_mail_template_wins(branded: Tenant, tmp_path: Path, settings: object) -> None:
    folder = tmp_path / "billing" / "email" / branded.slug
    folder.mkdir(parents=True)
    (folder / "invoice_subject.txt").write_text("Ihre Rechnung {{ invoice.number }}")
    engine = settings.TEMPLATES[0]  # type: ignore[attr-defined]
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path, *engine["DIRS"]]}]  # type: ignore[attr-defined]
    invoice = issued(branded, sessions=1)

    services.invoice_deliver_email(invoice=invoice)

    assert mail.outbox[0].subject == f"Ihre Rechnung {invoice.number}"


def test_render_task_stores_the_pdf_and_a_draft_has_none(branded: Tenant) -> None:
    invoice = issued(branded, sessions=1)

    tasks.invoice_render_pdf(invoice.pk)

    invoice.refresh_from_db()
    assert invoice.pdf.name.endswith(f"{invoice.number}.pdf")
    assert services.invoice_pdf_bytes(invoice=invoice)[:5] == b"%PDF-"


def test_tenant_logo_is_printed(branded: Tenant) -> None:
    from django.core.files.base import ContentFile

    buffer = io.BytesIO()
    Image.new("RGB", (240, 80), (0x1E, 0xC8, 0x3C)).save(buffer, format="PNG")  # a green no one else uses
    branded.logo.save("logo.png", ContentFile(buffer.getvalue()), save=True)
    invoice = issued(branded, sessions=1)

    image = pypdfium2.PdfDocument(render_invoice_pdf(invoice))[0].render(scale=1).to_pil().convert("RGB")

    green = sum(
        1
        for p in image.get_flattened_data()
        if all(abs(a - b) <= 6 for a, b in zip(p, (0x1E, 0xC8, 0x3C), strict=True))
    )
    assert green > 1_000


def _count_colour(image: Any, colour: tuple[int, int, int]) -> int:
    return sum(1 for p in image.get_flattened_data() if all(abs(a - b) <= 6 for a, b in zip(p, colour, strict=True)))


def test_every_page_of_a_long_invoice_carries_its_number_in_the_footer(branded: Tenant) -> None:
    invoice = issued(branded, sessions=30)

    document = pypdfium2.PdfDocument(render_invoice_pdf(invoice))

    pages = len(document)
    assert pages == 4
    for index in range(pages):
        text = document[index].get_textpage().get_text_range()
        assert f"{invoice.number} · page {index + 1} of {pages}" in text
        assert "Alpha Charge GmbH · Stromweg 5 · 80331 München · VAT id DE123456789" in text


def test_brand_stylesheets_are_kept_per_brand_and_follow_a_colour_change(branded: Tenant, tenant_b: Tenant) -> None:
    tenant_b.primary_colour = "#1EC83C"  # green, nothing else on the page is
    tenant_b.save()
    alpha = issued(branded, sessions=1)
    beta = issued(tenant_b, sessions=1)

    alpha_page = pypdfium2.PdfDocument(render_invoice_pdf(alpha))[0].render(scale=1).to_pil().convert("RGB")
    beta_page = pypdfium2.PdfDocument(render_invoice_pdf(beta))[0].render(scale=1).to_pil().convert("RGB")
    branded.primary_colour = "#1E3CC8"  # the tenant re-brands: blue
    branded.save()
    alpha.tenant.refresh_from_db()
    rebranded = pypdfium2.PdfDocument(render_invoice_pdf(alpha))[0].render(scale=1).to_pil().convert("RGB")

    assert _count_colour(alpha_page, BRAND) > 2_000
    assert _count_colour(alpha_page, (0x1E, 0xC8, 0x3C)) == 0
    assert _count_colour(beta_page, (0x1E, 0xC8, 0x3C)) > 2_000
    assert _count_colour(beta_page, BRAND) == 0
    assert _count_colour(rebranded, (0x1E, 0x3C, 0xC8)) > 2_000
    assert _count_colour(rebranded, BRAND) == 0


def test_a_replaced_logo_is_printed_not_the_one_read_before(branded: Tenant) -> None:
    from django.core.files.base import ContentFile

    def logo(colour: tuple[int, int, int]) -> ContentFile[bytes]:
        buffer = io.BytesIO()
        Image.new("RGB", (240, 80), colour).save(buffer, format="PNG")
        return ContentFile(buffer.getvalue())

    green, blue = (0x1E, 0xC8, 0x3C), (0x1E, 0x3C, 0xC8)
    branded.logo.save("logo.png", logo(green), save=True)
    invoice = issued(branded, sessions=1)
    first = pypdfium2.PdfDocument(render_invoice_pdf(invoice))[0].render(scale=1).to_pil().convert("RGB")

    branded.logo.save("logo.png", logo(blue), save=True)  # a new upload (the storage picks a new name)
    invoice.tenant.refresh_from_db()
    second = pypdfium2.PdfDocument(render_invoice_pdf(invoice))[0].render(scale=1).to_pil().convert("RGB")

    assert _count_colour(first, green) > 1_000
    assert _count_colour(second, blue) > 1_000
    assert _count_colour(second, green) == 0


def test_an_unreadable_logo_prints_the_tenant_name_instead(branded: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    branded.logo.name = "tenants/logos/missing.png"  # the row names a file the storage no longer has
    branded.save()
    invoice = issued(branded, sessions=1)

    text = pypdfium2.PdfDocument(render_invoice_pdf(invoice))[0].get_textpage().get_text_range()

    assert text.splitlines()[0].startswith("Alpha Charge")
    assert f"logo of tenant {branded.pk} cannot be read: tenants/logos/missing.png" in caplog.messages


def test_the_renderer_fetches_nothing_but_logos_in_memory_and_inline_data() -> None:
    from apps.billing.documents import _local_only_fetcher

    fetcher = _local_only_fetcher()
    refused = ["http://127.0.0.1:9/logo.png", "https://example.com/x.css", "file:///etc/hostname", "evp-logo:nope"]

    for url in refused:
        with pytest.raises(ValueError):
            fetcher.fetch(url)
    assert fetcher.fetch("data:text/plain,ok").read() == b"ok"


def test_renders_from_another_thread_use_their_own_resources(branded: Tenant) -> None:
    import threading

    from django.db.models import prefetch_related_objects

    invoice = issued(branded, sessions=1)
    prefetch_related_objects([invoice], "lines")  # the thread's own connection would not see this test's rows
    here = render_invoice_pdf(invoice)
    there: list[bytes] = []
    worker = threading.Thread(target=lambda: there.append(render_invoice_pdf(invoice)))

    worker.start()
    worker.join()

    assert there[0][:5] == b"%PDF-"
    text = pypdfium2.PdfDocument(there[0])[0].get_textpage().get_text_range()
    assert text == pypdfium2.PdfDocument(here)[0].get_textpage().get_text_range()


def test_session_references_of_production_length_stay_on_one_line(branded: Tenant) -> None:
    customer = BusinessCustomerFactory(tenant=branded)
    charge_point = ChargePointFactory(tenant=branded, identity="ALP-BERLIN-0042")  # + "-<session id>"
    priced = [(ChargingSessionFactory(tenant=branded, charge_point=charge_point), price()) for _ in range(2)]
    draft = services.invoice_create_draft(
        tenant=branded,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=priced,
        business_customer=customer,
    )
    invoice = services.invoice_issue(invoice=draft, issued_at=dt.datetime(2026, 4, 1, 8, tzinfo=dt.UTC), render=False)
    lines = list(invoice.lines.order_by("position").values_list("position", "session_reference"))

    text = pypdfium2.PdfDocument(render_invoice_pdf(invoice))[0].get_textpage().get_text_range()

    printed = text.replace("\ufffe", "-").split("\r\n")  # pdfium reports some hyphens as U+FFFE
    assert [len(r) for _, r in lines] == [len("ALP-BERLIN-0042-") + len(str(s.pk)) for s, _ in priced]
    for position, reference in lines:
        assert f"{position} {reference}" in printed  # the cell's first line, not broken before its end


# --------------------------------------------------------------------------- times, positions, pages, receipts

ARTIFACTS = PNG_OUT.parent


def pages_png(pdf: bytes, name: str) -> list[Path]:
    """Every page rendered to PNG (poppler's pdftoppm, 80 dpi) in .data/test-artifacts/, to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "doc.pdf"
        source.write_bytes(pdf)
        if shutil.which("pdftoppm"):
            subprocess.run(["pdftoppm", "-png", "-r", "80", str(source), str(ARTIFACTS / name)], check=True, timeout=60)
        else:
            for index, page in enumerate(pypdfium2.PdfDocument(pdf)):
                page.render(scale=80 / 72).to_pil().save(ARTIFACTS / f"{name}-{index + 1}.png")
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def page_texts(pdf: bytes) -> list[str]:
    return [page.get_textpage().get_text_range().replace("\ufffe", "-") for page in pypdfium2.PdfDocument(pdf)]


def flat(text: str) -> str:
    """The page's words with single spaces (cells wrap their text where the column ends)."""
    return " ".join(text.split())


def test_times_are_printed_in_the_locations_time_zone_which_is_named(branded: Tenant) -> None:
    # 07:30 UTC on 2 March is 08:30 in Berlin (CET); the invoice is issued at 23:30 UTC on 31 March, which is
    # 1 April in Berlin (CEST)
    invoice = issued(branded, sessions=1, issued_at=dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC))

    pdf = render_invoice_pdf(invoice)

    text = flat(page_texts(pdf)[0])
    pages_png(pdf, "invoice-berlin")
    assert "Start \u2013 stop (Europe/Berlin)" in text
    assert "2026-03-02 08:30" in text
    assert "2026-03-02 09:15" in text  # 45 minutes later
    assert "07:30" not in text  # not UTC under a Berlin heading
    assert "Date 2026-04-01" in text


def test_lines_at_locations_in_several_zones_each_name_their_zone(branded: Tenant) -> None:
    customer = BusinessCustomerFactory(tenant=branded)
    berlin = ChargePointFactory(tenant=branded, location__name="Berlin Mitte")
    helsinki = ChargePointFactory(tenant=branded, location__name="Helsinki Port", location__timezone="Europe/Helsinki")
    start = dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC)
    priced = [
        (ChargingSessionFactory(tenant=branded, charge_point=cp, started_at=start), price())
        for cp in (berlin, helsinki)
    ]
    draft = services.invoice_create_draft(
        tenant=branded,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=priced,
        business_customer=customer,
    )
    invoice = services.invoice_issue(invoice=draft, render=False)

    pdf = render_invoice_pdf(invoice)

    text = flat(page_texts(pdf)[0])
    pages_png(pdf, "invoice-two-zones")
    assert "Start \u2013 stop (local time)" in text
    assert "2026-03-02 08:30 2026-03-02 09:15 Europe/Berlin" in text
    assert "2026-03-02 09:30 2026-03-02 10:15 Europe/Helsinki" in text


def test_a_long_invoice_keeps_positions_whole_and_each_line_with_its_breakdown_on_one_page(branded: Tenant) -> None:
    invoice = issued(branded, sessions=27)
    lines = list(invoice.lines.order_by("position"))

    pdf = render_invoice_pdf(invoice)

    texts = page_texts(pdf)
    pages_png(pdf, "invoice-27-lines")
    assert len(texts) >= 3
    for line in lines:
        # the position and the session reference start the row's first line ("12 CP-00003-57"), not "1" / "2"
        row = f"{line.position} {line.session_reference}"
        holding = [i for i, text in enumerate(texts) if row in text.split("\r\n")]
        assert len(holding) == 1, (row, holding)
        # the breakdown and the Eichrecht reference of the line are on the same page as the line
        page = texts[holding[0]]
        assert f"OCMF transaction {line.session_reference};" in page
        assert line.components[0]["description"] in page
    # the totals and the payment request are not torn apart either
    closing = [i for i, text in enumerate(texts) if "Total excl. VAT" in text]
    assert closing == [i for i, text in enumerate(texts) if "Total incl. VAT" in text]
    assert closing == [i for i, text in enumerate(texts) if "Please transfer" in text]


def test_component_energies_print_at_most_three_decimals(branded: Tenant) -> None:
    from apps.billing.costing import PricedDimension, SessionPrice

    customer = BusinessCustomerFactory(tenant=branded)
    # what the engine writes for 5.490123 kWh (volumes exact to 0.001 Wh) and what it used to
    from apps.tariffs.pricing import CostGroup, CostLine, TariffDimensionType

    line = CostLine(
        group=CostGroup.ENERGY,
        dimension=TariffDimensionType.ENERGY,
        element_index=0,
        price=Decimal("0.39"),
        vat=Decimal(19),
        step_size=1,
        volume=Decimal("5490.123"),
        billed_volume=Decimal("5490.123"),
        excl_vat=Decimal("2.14"),
        incl_vat=Decimal("2.55"),
    )
    dim = PricedDimension("ENERGY", line.description, Decimal("2.14"), Decimal("19.00"), Decimal("2.55"))
    session = ChargingSessionFactory(tenant=branded, priced=SessionPrice("EUR", (dim,)))
    draft = services.invoice_create_draft(
        tenant=branded,
        period_start=dt.date(2026, 3, 1),
        period_end=dt.date(2026, 3, 31),
        priced_sessions=[(session, SessionPrice("EUR", (dim,)))],
        business_customer=customer,
    )
    invoice = services.invoice_issue(invoice=draft, render=False)

    text = page_texts(render_invoice_pdf(invoice))[0]

    assert line.description == "5.49 kWh at 0.39/kWh"
    assert "Energy: 5.49 kWh at 0.39/kWh = 2.14 EUR" in text
    assert "22.500" in text  # the line's energy column: kWh to the Wh


def receipt_for(tenant: Tenant, **payment: Any) -> Invoice:
    from tests.billing.factories import PaymentFactory
    from tests.customers.factories import DriverFactory

    driver = DriverFactory(
        tenant=tenant, first_name="Dana", last_name="Fahrer", email="dana@example.com", language="en"
    )  # the receipt in English
    session = ChargingSessionFactory(
        tenant=tenant,
        driver=driver,
        charge_point=ChargePointFactory(tenant=tenant, location__name="Parkhaus Mitte"),
        started_at=dt.datetime(2026, 3, 2, 7, 30, tzinfo=dt.UTC),
    )
    if payment:
        PaymentFactory(tenant=tenant, session_id=session.pk, **payment)
    receipt = services.session_receipt_issue(session=session)
    assert receipt is not None
    return receipt


def test_a_one_line_receipt_asks_for_a_transfer(branded: Tenant) -> None:
    receipt = receipt_for(branded)

    pdf = render_invoice_pdf(receipt)

    text = page_texts(pdf)[0]
    pages_png(pdf, "receipt-transfer")
    assert len(page_texts(pdf)) == 1
    assert "Receipt" in text
    assert "Please transfer 11.90 EUR by" in text
    assert "IBAN DE89370400440532013000" in text
    assert "Due" in text


def test_a_receipt_paid_by_card_does_not_ask_for_a_transfer(branded: Tenant) -> None:
    from apps.billing.models import PaymentStatus

    receipt = receipt_for(
        branded,
        status=PaymentStatus.CAPTURED,
        amount_authorized=Decimal("30.00"),
        amount_captured=Decimal("11.90"),
        merchant_reference="PA-card0001",
    )

    pdf = render_invoice_pdf(receipt)

    text = page_texts(pdf)[0]
    pages_png(pdf, "receipt-card")
    assert receipt.status == InvoiceStatus.PAID  # the captured card payment settles it
    assert list(receipt.payments.values_list("merchant_reference", flat=True)) == ["PA-card0001"]
    assert "Paid by card (payment PA-card0001). Nothing to transfer." in text
    assert "Please transfer" not in text
    assert "IBAN" not in text
    assert "Due" not in text


def test_a_receipt_whose_card_is_only_authorised_says_the_card_will_be_charged(branded: Tenant) -> None:
    from apps.billing.models import PaymentStatus

    receipt = receipt_for(
        branded, status=PaymentStatus.AUTHORIZED, amount_authorized=Decimal("30.00"), merchant_reference="PA-card0002"
    )

    text = page_texts(render_invoice_pdf(receipt))[0]

    assert receipt.status == InvoiceStatus.ISSUED
    assert "11.90 EUR will be charged to the card used for this session (payment PA-card0002)." in text
    assert "Please transfer" not in text
