"""The files themselves: XLSX across sheet boundaries read back with openpyxl, CSV (BOM, separator, gzip),
a consistent snapshot while sessions are written, and what a role without personal data gets.

These run the real export (its own connection, REPEATABLE READ): the data must be committed, hence
`transactional_db`. Each runs twice: with the sessions' export lines stored (rendered before the export), and
with them still queued (the export renders them live); both must give the same files."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import pytest
from django.db.models import F
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from apps.reports import services
from apps.reports.lines import FINAL_STATUSES
from apps.reports.models import ExportJob, ExportStatus, PendingLine
from apps.sessions import services as charging
from apps.sessions.models import Cdr, ChargingSession
from apps.tenants.models import Tenant
from tests.charging.factories import CdrFactory
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory, VehicleFactory
from tests.reports.factories import ExportJobFactory, make_sessions
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant() -> Tenant:
    return TenantFactory(name="Alpha Charge", slug="alpha", timezone="Europe/Berlin")


LINES = "stored"


@pytest.fixture(autouse=True, params=["stored", "live"])
def lines_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Whether `run` renders the queued export lines before it exports (else they are rendered live)."""
    global LINES  # read by `run`, which the tests call directly
    LINES = request.param
    yield request.param
    LINES = "stored"


def run(job: ExportJob, after_snapshot: Callable[[], None] | None = None) -> ExportJob:
    if LINES == "stored":
        services.session_lines_render()
        final = ChargingSession.objects.filter(status__in=FINAL_STATUSES).values("pk")
        assert not PendingLine.objects.filter(session_id__in=final).exists()
    done = services.export_job_run(job_id=job.pk, after_snapshot=after_snapshot)
    assert done is not None
    assert done.status == ExportStatus.DONE, done.error
    return done


def test_xlsx_across_sheet_boundaries_reads_back_with_types(
    tenant: Tenant, settings: SettingsWrapper, export_dir: Path
) -> None:
    # given 25 sessions, and 10 data rows per sheet
    settings.REPORTS_XLSX_ROWS_PER_SHEET = 10
    sessions = make_sessions(tenant, 25)
    other = TenantFactory()
    make_sessions(other, 3)  # another tenant's sessions never appear
    job = ExportJobFactory(tenant=tenant, format="xlsx", personal_data=True)

    # when exported
    done = run(job)

    # then three sheets, header on each, frozen below it, every session exactly once, with real types
    assert done.row_count == 25
    assert done.sheet_count == 3
    workbook = openpyxl.load_workbook(export_dir / done.file_name)
    assert workbook.sheetnames == ["Sessions", "Sessions 2", "Sessions 3"]
    ids: list[int] = []
    for sheet, expected_rows in zip(workbook.worksheets, (10, 10, 5), strict=True):
        rows = list(sheet.iter_rows(values_only=True))
        header = rows[0]
        assert header[:3] == ("Session id", "Status", "Tenant")
        assert "Start (Europe/Berlin)" in header
        assert sheet.freeze_panes == "A2"
        assert len(rows) - 1 == expected_rows
        ids += [row[0] for row in rows[1:]]  # type: ignore[misc]
    assert sorted(ids) == sorted(s.pk for s in sessions)

    header = [c.value for c in workbook.worksheets[0][1]]
    first = dict(zip(header, list(workbook.worksheets[0][2]), strict=True))
    by_id = {s.pk: s for s in sessions}
    session = by_id[first["Session id"].value]
    i = sessions.index(session)
    assert isinstance(first["Session id"].value, int)
    assert first["Start (Europe/Berlin)"].value == dt.datetime(2025, 1, 15, 10, i)  # UTC+1 in January
    assert first["Start (Europe/Berlin)"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert first["Stop (Europe/Berlin)"].value == dt.datetime(2025, 1, 15, 11, i + 2, 3)
    assert first["Duration"].value == dt.timedelta(hours=1, minutes=2, seconds=3)
    assert first["Energy (kWh)"].value == pytest.approx(1.5 * (i + 1))
    assert first["Energy (kWh)"].number_format == "0.000"
    assert first["Meter stop (Wh)"].value == 1000 * i + 1500 * (i + 1)
    assert first["Tenant"].value == "Alpha Charge"
    assert first["Charge point"].value == session.charge_point.identity
    assert first["Stop reason"].value == "EVDisconnected"
    assert first["Suspicious"].value == "no"


def test_xlsx_escapes_text_and_keeps_empty_cells_in_place(tenant: Tenant, export_dir: Path) -> None:
    evse = EvseFactory(
        charge_point__tenant=tenant,
        charge_point__location__tenant=tenant,
        charge_point__location__name='Müller & Söhne <Garage> "Nord"\nEbene\x0b2',
    )
    make_sessions(tenant, 1, evse=evse)
    ChargingSession.objects.update(stop_reason="", stopped_at=None, energy_wh=None, meter_stop_wh=None)
    job = ExportJobFactory(tenant=tenant, format="xlsx", personal_data=True)

    done = run(job)

    sheet = openpyxl.load_workbook(export_dir / done.file_name).worksheets[0]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert row["Location"] == 'Müller & Söhne <Garage> "Nord"\nEbene2'
    assert row["Stop (Europe/Berlin)"] is None
    assert row["Duration"] is None
    assert row["Energy (kWh)"] is None
    assert row["Stop reason"] is None
    assert row["Suspicious"] == "no"  # the cells after the empty ones did not shift


def test_links_cost_cdr_and_quality_columns_come_from_the_session(tenant: Tenant, export_dir: Path) -> None:
    # given a priced, suspicious session on a CCS connector with a CDR, and an unpriced one without links
    evse = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    ConnectorFactory(evse=evse, standard="IEC_62196_T2_COMBO")
    tariff = TariffFactory(tenant=tenant, ocpi_id="AC-STANDARD")
    priced, unpriced = make_sessions(tenant, 2, evse=evse, tariff=tariff)
    ChargingSession.objects.filter(pk=priced.pk).update(
        evse_connector=evse.connectors.get(),
        suspicious=True,
        suspicious_reasons=["too_short", "zero_energy"],
        cdr_ocpi_id="VLT1234",  # stored with the CDR at completion
        roaming_partner="NL*EMS",
    )
    ChargingSession.objects.filter(pk=unpriced.pk).update(
        stopped_at=F("started_at") + dt.timedelta(days=1, hours=2, seconds=5),
        tariff=None,
        currency="",
        cost_excl_vat=None,
        cost_incl_vat=None,
        max_power_w=None,
        location=None,
    )
    CdrFactory(tenant=tenant, session=priced, ocpi_id="VLT1234")
    csv_job = ExportJobFactory(tenant=tenant, format="csv", csv_separator=";", personal_data=True)
    xlsx_job = ExportJobFactory(tenant=tenant, format="xlsx", personal_data=True)

    # when exported to CSV (German Excel) and XLSX
    csv_done, xlsx_done = run(csv_job), run(xlsx_job)

    # then the CSV holds the links and the cost as text, decimal comma
    text = (export_dir / csv_done.file_name).read_text(encoding="utf-8-sig")
    rows = {int(r["Session id"]): r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    first, second = rows[priced.pk], rows[unpriced.pk]
    assert first["CDR id"] == "VLT1234"
    assert first["Location"] == evse.charge_point.location.name
    assert first["Connector type"] == "IEC_62196_T2_COMBO"
    assert first["Tariff"] == "AC-STANDARD"
    assert (first["Cost excl. VAT"], first["VAT"], first["Cost incl. VAT"]) == ("0,60", "0,11", "0,71")
    assert first["Currency"] == "EUR"
    assert first["Max power (kW)"] == "11,0"
    assert (first["Suspicious"], first["Suspicious reasons"]) == ("yes", "too_short zero_energy")
    assert (first["Roaming partner"], second["Roaming partner"]) == ("NL*EMS", "")
    assert (second["CDR id"], second["Location"], second["Connector type"], second["Tariff"]) == ("", "", "", "")
    assert (second["Cost excl. VAT"], second["VAT"], second["Currency"], second["Max power (kW)"]) == ("", "", "", "")
    assert (second["Suspicious"], second["Suspicious reasons"]) == ("no", "")
    assert second["Duration"] == "26:00:05"  # past a day: hours keep counting

    # and the XLSX holds numbers with two (money) and one (kW) decimals
    sheet = openpyxl.load_workbook(export_dir / xlsx_done.file_name).worksheets[0]
    header = [c.value for c in sheet[1]]
    cells = {row[0].value: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)}
    cost = cells[priced.pk]
    assert cost["Cost excl. VAT"].value == pytest.approx(0.60)
    assert cost["Cost incl. VAT"].value == pytest.approx(0.71)
    assert cost["VAT"].value == pytest.approx(0.11)
    assert cost["Cost incl. VAT"].number_format == "0.00"
    assert cost["Max power (kW)"].value == pytest.approx(11.0)
    assert cost["Max power (kW)"].number_format == "0.0"
    assert cost["CDR id"].value == "VLT1234"
    assert cells[unpriced.pk]["Cost excl. VAT"].value is None


@pytest.mark.parametrize("separator", [",", ";"])
def test_csv_has_bom_header_and_separator(tenant: Tenant, export_dir: Path, separator: str) -> None:
    make_sessions(tenant, 3)
    job = ExportJobFactory(tenant=tenant, format="csv", csv_separator=separator, personal_data=True)

    done = run(job)

    raw = (export_dir / done.file_name).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw[3:].decode()), delimiter=separator))
    assert len(rows) == 3
    first = min(rows, key=lambda r: int(r["Session id"]))
    assert first["Start (Europe/Berlin)"] == "2025-01-15 10:00:00"
    assert first["Duration"] == "01:02:03"
    assert first["Energy (kWh)"] == ("1.500" if separator == "," else "1,500")
    assert first["Token"] == "04A1B2C3D4"
    assert done.row_count == 3
    assert done.file_size == len(raw)


def test_csv_gz_reads_back(tenant: Tenant, export_dir: Path) -> None:
    make_sessions(tenant, 4)
    job = ExportJobFactory(tenant=tenant, format="csv.gz", personal_data=True)

    done = run(job)

    assert done.file_name.endswith(".csv.gz")
    text = gzip.decompress((export_dir / done.file_name).read_bytes()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Session id"
    assert len(rows) == 5


def test_export_is_a_consistent_snapshot_while_sessions_are_written(tenant: Tenant, export_dir: Path) -> None:
    # given 5 sessions, and an export that has taken its snapshot
    evse = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    before = make_sessions(tenant, 5, evse=evse)
    job = ExportJobFactory(tenant=tenant, format="csv", personal_data=True)
    written: list[ChargingSession] = []

    def sessions_arrive_meanwhile() -> None:
        # another connection (Django's, autocommit) writes and commits while the export runs
        written.extend(make_sessions(tenant, 7, evse=evse, first=100))
        ChargingSession.objects.filter(pk=before[0].pk).update(stop_reason="Remote")

    # when the export runs while sessions are written
    done = run(job, after_snapshot=sessions_arrive_meanwhile)

    # then the file holds exactly the snapshot: no new rows, the old value
    assert ChargingSession.objects.filter(tenant=tenant).count() == 12
    text = (export_dir / done.file_name).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(int(r["Session id"]) for r in rows) == sorted(s.pk for s in before)
    assert {r["Stop reason"] for r in rows} == {"EVDisconnected"}
    assert done.row_count == 5
    assert done.rows_total == 5


def test_role_without_personal_data_gets_no_names_and_masked_tokens(tenant: Tenant, export_dir: Path) -> None:
    customer = BusinessCustomerFactory(tenant=tenant, name="Fleet Nord GmbH")
    driver = DriverFactory(tenant=tenant, first_name="Dana", last_name="Berg", business_customer=customer)
    token = TokenFactory(tenant=tenant, uid="04A1B2C3D4", driver=driver, contract_id="DEVLTC00000042")
    vehicle = VehicleFactory(tenant=tenant, driver=driver, make="Kia", model="EV6", licence_plate="B-XY 123")
    make_sessions(tenant, 1, token=token, vehicle=vehicle)
    allowed = ExportJobFactory(tenant=tenant, format="csv", personal_data=True)
    restricted = ExportJobFactory(tenant=tenant, format="xlsx", personal_data=False)

    full = run(allowed)
    masked = run(restricted)

    row = next(csv.DictReader(io.StringIO((export_dir / full.file_name).read_text(encoding="utf-8-sig"))))
    assert row["Driver"] == "Dana Berg"
    assert row["Business customer"] == "Fleet Nord GmbH"
    assert row["Token"] == "04A1B2C3D4"
    assert row["Contract id (eMAID)"] == "DEVLTC00000042"
    assert row["Vehicle"] == "Kia EV6 B-XY 123"
    sheet = openpyxl.load_workbook(export_dir / masked.file_name).worksheets[0]
    header = [c.value for c in sheet[1]]
    values = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert "Driver" not in header
    assert "Business customer" not in header
    assert "Vehicle" not in header
    assert values["Token"] == "******C3D4"
    assert values["Contract id (eMAID)"] == "**********0042"
    assert values["Token type"] == "RFID"


def test_filters_select_sessions(tenant: Tenant, export_dir: Path) -> None:
    evse_a = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    evse_b = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    in_a = make_sessions(tenant, 3, evse=evse_a)
    make_sessions(tenant, 2, evse=evse_b, first=10)
    job = ExportJobFactory(
        tenant=tenant,
        location_ids=[evse_a.charge_point.location_id],
        date_from=in_a[1].started_at,
        date_to=in_a[2].started_at + dt.timedelta(seconds=1),
    )

    done = run(job)

    rows = list(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))
    assert sorted(int(r["Session id"]) for r in rows) == [in_a[1].pk, in_a[2].pk]


def test_run_is_idempotent_and_cancel_stops_a_running_export(
    tenant: Tenant, settings: SettingsWrapper, export_dir: Path
) -> None:
    settings.REPORTS_PROGRESS_EVERY = 2
    make_sessions(tenant, 6)
    done = run(ExportJobFactory(tenant=tenant))
    assert services.export_job_run(job_id=done.pk) is None  # a second delivery does nothing

    job = ExportJobFactory(tenant=tenant)
    cancelled = services.export_job_run(
        job_id=job.pk, after_snapshot=lambda: ExportJob.objects.filter(pk=job.pk).update(status="cancelled")
    )

    assert cancelled is not None
    assert cancelled.status == ExportStatus.CANCELLED
    assert cancelled.file_name == ""
    assert sorted(p.name for p in export_dir.iterdir()) == [done.file_name]


def test_the_cdr_id_comes_from_the_completed_session_without_joining_cdrs(tenant: Tenant, export_dir: Path) -> None:
    # given a session started and stopped through the charging services (which write its CDR)
    cp = ChargePointFactory(tenant=tenant)
    ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=1), max_electric_power=22_000)
    TariffAssignmentFactory(tenant=tenant, tariff=TariffFactory(tenant=tenant))
    TokenFactory(tenant=tenant, uid="CDR-1")
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=2)
    session, info = charging.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="CDR-1", meter_start=1_000, timestamp=start
    )
    assert info.status == "Accepted"
    charging.session_stop(
        charge_point_id=cp.pk, transaction_id=session.pk, meter_stop=11_000, timestamp=start + dt.timedelta(hours=1)
    )
    cdr = Cdr.objects.get(session=session)

    # when exported
    done = run(ExportJobFactory(tenant=tenant, format="csv", personal_data=True))

    # then the session carries its CDR's id, and the export shows it
    session.refresh_from_db()
    assert session.cdr_ocpi_id == cdr.ocpi_id != ""
    rows = list(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))
    assert [(r["Session id"], r["CDR id"]) for r in rows] == [(str(session.pk), cdr.ocpi_id)]
