"""The stored export lines (apps/reports/lines.py): the triggers queue what changed, the renderer stores it, an
export of stored lines is byte for byte the export rendered live, and a change that commits while a batch
renders is never lost. Real commits (other connections read them), hence `transactional_db`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import psycopg
import pytest
from django.db import connection

from apps.reports import lines, services
from apps.reports.models import ExportJob, ExportStatus, PendingLine, SessionLine
from apps.sessions.models import ChargingSession, SessionStatus
from apps.stations.models import ChargePoint, Location
from apps.tenants.models import Tenant
from tests.customers.factories import BusinessCustomerFactory, DriverFactory, TokenFactory, VehicleFactory
from tests.reports.factories import ExportJobFactory, make_sessions
from tests.stations.factories import EvseFactory
from tests.tariffs.factories import TariffFactory
from tests.tenants.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tenant() -> Tenant:
    return TenantFactory(name='Alpha "Charge", Süd', slug="alpha", timezone="Europe/Berlin")


def run(job: ExportJob) -> ExportJob:
    done = services.export_job_run(job_id=job.pk)
    assert done is not None
    assert done.status == ExportStatus.DONE, done.error
    return done


def queued() -> set[int]:
    return set(PendingLine.objects.values_list("session_id", flat=True))


def stored() -> set[int]:
    return set(SessionLine.objects.values_list("session_id", flat=True))


def content(path: Path, separator: str = ",") -> tuple[int, list[object]]:
    """The file's size and its records in a stable order (rows come in storage order, which differs between
    stored and live lines): a CSV's parsed records, an XLSX's parts with its sheet's <row> elements sorted."""
    if path.suffix != ".xlsx":
        text = path.read_bytes().decode("utf-8-sig")
        return path.stat().st_size, sorted(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    with zipfile.ZipFile(path) as archive:
        parts: list[object] = []
        for name in sorted(archive.namelist()):
            data = archive.read(name)
            rows = re.findall(rb"<row>.*?</row>", data, re.DOTALL)
            parts.append((name, re.sub(rb"<row>.*?</row>\n?", b"", data, flags=re.DOTALL), sorted(rows)))
        return sum(info.file_size for info in archive.infolist()), parts


def tricky_sessions(tenant: Tenant) -> list[ChargingSession]:
    """Text that CSV must quote (separators, quotes, line breaks), XML must escape, a spreadsheet would run as a
    formula, control characters, non-ASCII; empty cells; numbers, times and a duration past a day."""
    evse = EvseFactory(
        charge_point__tenant=tenant,
        charge_point__identity="DE*ALP*E1",
        charge_point__location__tenant=tenant,
        charge_point__location__name='Müller & Söhne; <Garage> "Nord"\r\nEbene\x0b2',
        charge_point__location__address='=HYPERLINK("http://x")',
    )
    customer = BusinessCustomerFactory(tenant=tenant, name="@Fleet, Nord")
    driver = DriverFactory(tenant=tenant, first_name="Zoë", last_name="+49 O'Brien", business_customer=customer)
    token = TokenFactory(tenant=tenant, uid="04A1B2C3D4", driver=driver, contract_id="DE-VLT-C00000042")
    vehicle = VehicleFactory(tenant=tenant, driver=driver, make="Kia", model="EV6", licence_plate="-B XY 1")
    tariff = TariffFactory(tenant=tenant, ocpi_id="AC;1")
    sessions = make_sessions(tenant, 3, evse=evse, token=token, vehicle=vehicle, tariff=tariff)
    ChargingSession.objects.filter(pk=sessions[1].pk).update(
        stopped_at=sessions[1].started_at + dt.timedelta(days=1, hours=2, seconds=5),
        roaming_partner="NL*EMS",
        suspicious=True,
        suspicious_reasons=["too_long"],
        flags=["meter_backwards"],
    )
    ChargingSession.objects.filter(pk=sessions[2].pk).update(
        status=SessionStatus.ACTIVE, stopped_at=None, meter_stop_wh=None, energy_wh=None, cost_excl_vat=None
    )
    return sessions


@pytest.mark.parametrize(
    ("fmt", "separator", "personal_data"),
    [("csv", ",", True), ("csv", ";", True), ("csv", ",", False), ("xlsx", ",", True), ("xlsx", ",", False)],
)
def test_stored_lines_export_exactly_what_live_rendering_exports(
    tenant: Tenant, export_dir: Path, fmt: str, separator: str, personal_data: bool
) -> None:
    # given sessions with every kind of awkward value, still queued: the export renders them live
    sessions = tricky_sessions(tenant)
    assert queued() >= {s.pk for s in sessions}
    live = run(ExportJobFactory(tenant=tenant, format=fmt, csv_separator=separator, personal_data=personal_data))

    # when their lines are stored (the running one stays queued) and the same export runs again
    assert services.session_lines_render() == 2
    assert stored() == {sessions[0].pk, sessions[1].pk}
    assert queued() == {sessions[2].pk}
    again = run(ExportJobFactory(tenant=tenant, format=fmt, csv_separator=separator, personal_data=personal_data))

    # then both files hold the same bytes (in another order)
    assert content(export_dir / again.file_name, separator) == content(export_dir / live.file_name, separator)
    assert again.row_count == live.row_count == 3


def test_awkward_values_come_out_right_in_csv_and_xlsx(tenant: Tenant, export_dir: Path) -> None:
    sessions = tricky_sessions(tenant)
    services.session_lines_render()
    csv_done = run(ExportJobFactory(tenant=tenant, format="csv", csv_separator=";", personal_data=True))
    xlsx_done = run(ExportJobFactory(tenant=tenant, format="xlsx", personal_data=True))

    text = (export_dir / csv_done.file_name).read_bytes().decode("utf-8-sig")  # as is: no newline translation
    rows = {int(r["Session id"]): r for r in csv.DictReader(io.StringIO(text, newline=""), delimiter=";")}
    first, long, running = (rows[s.pk] for s in sessions)
    assert first["Tenant"] == 'Alpha "Charge", Süd'
    assert first["Location"] == 'Müller & Söhne; <Garage> "Nord"\r\nEbene2'  # the control character dropped
    assert first["Location address"].startswith('\'=HYPERLINK("http://x")')  # not a formula in a spreadsheet
    assert first["Business customer"] == "'@Fleet, Nord"
    assert first["Driver"] == "Zoë +49 O'Brien"
    assert first["Vehicle"] == "Kia EV6 -B XY 1"
    assert first["Contract id (eMAID)"] == "DE-VLT-C00000042"
    assert first["Tariff"] == "AC;1"
    assert (first["Energy (kWh)"], first["Cost excl. VAT"], first["Max power (kW)"]) == ("1,500", "0,60", "11,0")
    assert (first["Start (Europe/Berlin)"], first["Duration"]) == ("2025-01-15 10:00:00", "01:02:03")
    assert (long["Duration"], long["Roaming partner"], long["Suspicious reasons"]) == ("26:00:05", "NL*EMS", "too_long")
    assert long["Flags"] == "meter_backwards"
    assert (running["Status"], running["Stop (Europe/Berlin)"], running["Energy (kWh)"]) == ("active", "", "")

    sheet = openpyxl.load_workbook(export_dir / xlsx_done.file_name).worksheets[0]
    header = [c.value for c in sheet[1]]
    cells = {row[0].value: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)}
    first_x = cells[sessions[0].pk]
    assert first_x["Tenant"].value == 'Alpha "Charge", Süd'
    assert first_x["Location"].value == 'Müller & Söhne; <Garage> "Nord"\r\nEbene2'
    assert first_x["Location address"].value.startswith('=HYPERLINK("http://x")')  # text, not a formula
    assert first_x["Location address"].data_type == "s"
    assert first_x["Business customer"].value == "@Fleet, Nord"
    assert first_x["Start (Europe/Berlin)"].value == dt.datetime(2025, 1, 15, 10, 0)
    assert first_x["Cost excl. VAT"].value == pytest.approx(0.60)
    assert cells[sessions[1].pk]["Duration"].value == dt.timedelta(days=1, hours=2, seconds=5)
    assert cells[sessions[2].pk]["Stop (Europe/Berlin)"].value is None
    assert cells[sessions[2].pk]["Suspicious"].value == "no"


def test_triggers_queue_new_and_changed_final_sessions_but_not_running_or_unrelated_changes(tenant: Tenant) -> None:
    # given two completed sessions and a running one, all rendered but the running one
    evse = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    done_a, done_b, running = make_sessions(tenant, 3, evse=evse)
    ChargingSession.objects.filter(pk=running.pk).update(status=SessionStatus.ACTIVE)
    assert queued() == {done_a.pk, done_b.pk, running.pk}  # queued at insert
    services.session_lines_render()
    assert queued() == {running.pk}

    # when the running one takes a meter value, a charge point heartbeat is written, a completed one is updated
    ChargingSession.objects.filter(pk=running.pk).update(last_meter_wh=123)
    ChargePoint.objects.filter(pk=evse.charge_point_id).update(last_seen_at=dt.datetime.now(dt.UTC))
    assert queued() == {running.pk}
    ChargingSession.objects.filter(pk=done_a.pk).update(stop_reason="Remote")

    # then only the changed completed session is queued again, and rendered with its change
    assert queued() == {running.pk, done_a.pk}
    services.session_lines_render()
    assert queued() == {running.pk}
    line = "".join(SessionLine.objects.get(session_id=done_a.pk).parts)
    assert "Remote" in line
    assert "EVDisconnected" not in line


def test_renaming_a_location_or_a_driver_or_changing_the_time_zone_queues_their_sessions(
    tenant: Tenant, export_dir: Path
) -> None:
    # given rendered sessions at two locations, one with a driver
    evse_a = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    evse_b = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    driver = DriverFactory(tenant=tenant, first_name="Dana", last_name="Berg")
    at_a = make_sessions(tenant, 2, evse=evse_a)
    at_b = make_sessions(tenant, 1, evse=evse_b, token=TokenFactory(tenant=tenant, driver=driver), first=10)
    services.session_lines_render()
    assert queued() == set()

    # when location A is renamed
    Location.objects.filter(pk=evse_a.charge_point.location_id).update(name="Renamed Garage")
    # then its sessions are queued, and the export shows the new name before and after they are rendered again
    assert queued() == {s.pk for s in at_a}
    for _ in range(2):
        done = run(ExportJobFactory(tenant=tenant, personal_data=True))
        rows = list(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))
        assert {r["Location"] for r in rows if int(r["Session id"]) in {s.pk for s in at_a}} == {"Renamed Garage"}
        assert len(rows) == 3
        services.session_lines_render()
    assert queued() == set()

    # and the same for a driver's new name (personal data) and the tenant's time zone (every stored time)
    driver.last_name = "Berg-Nord"
    driver.save(update_fields=["last_name"])
    assert queued() == {at_b[0].pk}
    services.session_lines_render()
    Tenant.objects.filter(pk=tenant.pk).update(timezone="UTC")
    assert queued() == {s.pk for s in [*at_a, *at_b]}
    Tenant.objects.filter(pk=tenant.pk).update(name="Alpha Renamed")  # rendered per export: nothing queued
    services.session_lines_render()
    assert queued() == set()


def test_a_change_committed_while_a_batch_renders_is_never_lost(tenant: Tenant, export_dir: Path) -> None:
    # given a completed session, queued
    evse = EvseFactory(charge_point__tenant=tenant, charge_point__location__tenant=tenant)
    (session,) = make_sessions(tenant, 1, evse=evse)

    # when a batch renders it (not committed yet) while another writer renames its location
    with services.export_connection() as renderer:
        renderer.execute("SET DateStyle = 'ISO, YMD'")
        rendered = renderer.execute(lines.render_batch_sql(100)).fetchall()
        assert [r[0] for r in rendered] == [session.pk]

        with services.export_connection() as writer:
            writer.execute("SET lock_timeout = '2s'")  # the rename's trigger only inserts: it never waits
            writer.execute(
                "UPDATE stations_location SET name = 'New name' WHERE id = %s", [evse.charge_point.location_id]
            )
            writer.commit()
        renderer.commit()  # the batch stored the old name, and took off the queue only the rows it saw

    # then the session is queued again, the export shows the new name, and the next render stores it
    assert queued() == {session.pk}
    done = run(ExportJobFactory(tenant=tenant))
    row = next(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))
    assert (row["Session id"], row["Location"]) == (str(session.pk), "New name")
    assert done.row_count == 1  # once: the stale stored line is not exported beside the live one
    services.session_lines_render()
    assert queued() == set()
    assert "New name" in "".join(SessionLine.objects.get(session_id=session.pk).parts)


def test_a_deleted_session_leaves_the_export_at_once_and_its_line_at_the_next_render(
    tenant: Tenant, export_dir: Path
) -> None:
    # given two rendered sessions
    kept, deleted = make_sessions(tenant, 2)
    services.session_lines_render()
    assert stored() == {kept.pk, deleted.pk}

    # when one is deleted
    ChargingSession.objects.filter(pk=deleted.pk).delete()

    # then the export no longer has it, before and after the renderer removed its line
    for _ in range(2):
        done = run(ExportJobFactory(tenant=tenant))
        rows = list(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))
        assert [r["Session id"] for r in rows] == [str(kept.pk)]
        services.session_lines_render()
    assert (stored(), queued()) == ({kept.pk}, set())


def test_a_new_layout_renders_live_until_installed_then_queues_everything(tenant: Tenant, export_dir: Path) -> None:
    # given rendered sessions, and a database whose lines follow another (older) layout
    sessions = make_sessions(tenant, 3)
    services.session_lines_render()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION reports_line_layout_version() RETURNS text AS $$ SELECT 'old' $$ LANGUAGE sql"
        )
    try:
        # when exported, the stored lines are not used
        done = run(ExportJobFactory(tenant=tenant))
        rows = list(csv.DictReader(io.StringIO((export_dir / done.file_name).read_text(encoding="utf-8-sig"))))
        assert sorted(int(r["Session id"]) for r in rows) == sorted(s.pk for s in sessions)

        # when the layout is installed: every session is queued, once
        assert services.session_lines_layout_install() is True
        assert queued() == {s.pk for s in sessions}
        assert services.session_lines_layout_install() is False
        services.session_lines_render()
        assert queued() == set()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(lines.install_sql())


def test_watched_columns_are_the_ones_the_stored_cells_read() -> None:
    assert lines._watched("loc") == ["name", "address", "postal_code", "city", "country"]
    assert lines._watched("cp") == ["identity"]
    assert lines._watched("drv") == ["first_name", "last_name"]
    assert lines._watched("car") == ["make", "model", "licence_plate"]
    assert lines._watched("tn") == ["timezone"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_without_sessions_holds_the_header_only(tenant: Tenant, export_dir: Path, fmt: str) -> None:
    done = run(ExportJobFactory(tenant=tenant, format=fmt, personal_data=True))

    assert done.row_count == 0
    if fmt == "csv":
        text = (export_dir / done.file_name).read_text(encoding="utf-8-sig")
        assert text.startswith("Session id,Status,Tenant,")
        assert text.count("\n") == 1
    else:
        workbook = openpyxl.load_workbook(export_dir / done.file_name)
        assert workbook.sheetnames == ["Sessions"]
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        assert len(rows) == 1
        assert rows[0][:2] == ("Session id", "Status")


def test_copy_lines_reads_blocks_and_a_stream_closed_early_leaves_the_connection_usable() -> None:
    from apps.reports.exporter import CopyLines

    query = "COPY (SELECT i::text || chr(22) FROM generate_series(1, {}) i) TO STDOUT (FORMAT binary)"
    with services.export_connection() as conn:
        conn.autocommit = True
        with CopyLines(conn, psycopg.sql.SQL(query.format(5))) as copy:  # type: ignore[arg-type]
            assert copy.read(3) == (b"1\x162\x163\x16", 3)
            assert copy.read(3) == (b"4\x165\x16", 2)
            assert copy.read(3) == (b"", 0)
        with CopyLines(conn, psycopg.sql.SQL(query.format(1_000_000))) as copy:  # type: ignore[arg-type]
            assert copy.read(2) == (b"1\x162\x16", 2)  # then closed with ~a million lines unread
        assert conn.execute("SELECT 42").fetchone() == (42,)


def test_the_beat_task_renders_the_queue_and_only_one_runs_at_a_time(tenant: Tenant) -> None:
    from apps.reports import tasks

    sessions = make_sessions(tenant, 4)
    with services.export_connection() as other:  # another worker is rendering
        other.autocommit = True
        other.execute("SELECT pg_advisory_lock(hashtext('reports.session_lines.render'))")
        assert tasks.render_lines.run() == 0
        assert queued() == {s.pk for s in sessions}
        other.execute("SELECT pg_advisory_unlock(hashtext('reports.session_lines.render'))")  # it is done
    assert tasks.render_lines.run() == 4
    assert queued() == set()
    assert stored() == {s.pk for s in sessions}


def test_the_markers_are_distinct_control_characters_that_text_values_never_keep() -> None:
    cleaned = re.compile(lines._CONTROL)  # what rendering removes from every text value

    assert len(set(lines.MARKERS)) == len(lines.MARKERS)
    assert not set(lines.MARKERS) & {"\x01", "\x02", "\t", "\n", "\r"}  # COPY's quote/delimiter; allowed text
    assert all(cleaned.fullmatch(marker) for marker in lines.MARKERS)
