"""Values and labels in the admin written for a person (apps/core/admin_display.py), and the console's time zone
(apps/tenants/middleware.py): what a page and a list show, from the stored Wh, W, Decimal, JSON and UTC."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.billing.models import Invoice
from apps.core import admin_display
from apps.energy.models import GridNode
from apps.ocpp.models import MessageLog
from apps.reports.models import ExportJob
from apps.sessions.models import ChargingSession
from apps.stations.models import ChargePoint
from apps.tenants.models import Role, Tenant
from tests.billing.factories import ChargingSessionFactory, issued_invoice
from tests.stations.factories import ChargePointFactory

pytestmark = pytest.mark.django_db


def _field(model: Any, name: str) -> Any:
    return model._meta.get_field(name)


@pytest.mark.parametrize(
    ("model", "name", "value", "shown"),
    [
        (ChargingSession, "energy_wh", 17817, "17.82 kWh"),
        (ChargingSession, "energy_wh", 0, "0.00 kWh"),
        (ChargingSession, "meter_stop_wh", 12_345_678, "12,345.7 kWh"),
        (ChargePoint, "max_power_w", 22000, "22 kW"),
        (ChargePoint, "max_power_w", 3700, "3.7 kW"),
        (MessageLog, "latency_ms", 23.420004000399786, "23 ms"),
        (MessageLog, "latency_ms", 0.42, "0.4 ms"),
        (ExportJob, "duration", dt.timedelta(seconds=0.103868), "104 ms"),
        (ExportJob, "duration", dt.timedelta(hours=26, minutes=3, seconds=9, microseconds=5), "26:03:09"),
        (ChargingSession, "cost_incl_vat", Decimal("6.3100"), "6.31"),
        (ChargingSession, "cost_incl_vat", Decimal("1234.5000"), "1,234.50"),
        (GridNode, "safety_margin_pct", 10, "10 %"),
    ],
)
def test_a_stored_value_is_shown_for_a_person(model: Any, name: str, value: Any, shown: str) -> None:
    for in_list in (True, False):
        assert admin_display.human_value(value, _field(model, name), in_list=in_list) == shown


@pytest.mark.parametrize(
    ("language", "energy", "money", "latency", "power"),
    [
        ("en", "12,345.7 kWh", "1,234.50 EUR", "1,234 ms", "3.7 kW"),
        ("de", "12.345,7 kWh", "1.234,50 EUR", "1.234 ms", "3,7 kW"),
        ("fr", "12\xa0345,7 kWh", "1\xa0234,50 EUR", "1\xa0234 ms", "3,7 kW"),
    ],
)
def test_numbers_are_written_in_the_readers_language(
    language: str, energy: str, money: str, latency: str, power: str
) -> None:
    # the German session page showed "1,000.00 kWh" and "10.00" (English separators in a German console)
    from django.utils import translation

    with translation.override(language):
        assert admin_display.energy(12_345_678) == energy
        assert admin_display.money(Decimal("1234.5"), "EUR") == money
        assert admin_display.milliseconds(1234.4) == latency
        assert admin_display.power(3700) == power


def test_choices_keep_their_labels() -> None:
    assert admin_display.human_value("equal_share", _field(GridNode, "strategy"), in_list=True) is None
    assert str(dict(_field(GridNode, "phase_rotation").flatchoices)["RST"]) == "RST (L1-L2-L3)"
    assert str(dict(_field(ChargePoint, "status").flatchoices)["SuspendedEVSE"]) == "Suspended by the charger"


def test_a_cost_breakdown_is_a_table_of_the_tariff_elements() -> None:
    breakdown = {
        "currency": "NOK",
        "lines": [
            {"dimension": "ENERGY", "description": "0.54 kWh at 4.40/kWh", "excl_vat": "2.38", "vat": "25",
             "incl_vat": "2.97"},
            {"dimension": "PARKING_TIME", "description": "12 min at 0.10/min", "excl_vat": "1.2", "vat": "25",
             "incl_vat": "1.5"},
        ],
        "total_excl_vat": "3.58",
        "total_incl_vat": "4.47",
    }  # fmt: skip

    html = str(admin_display.human_value(breakdown, _field(ChargingSession, "cost_breakdown"), in_list=False))

    rows = re.findall(r"<tr>(.*?)</tr>", html)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row) for row in rows]
    assert cells == [
        ["Element", "Applied", "Excl. VAT", "VAT", "Incl. VAT"],
        ["Energy", "0.54 kWh at 4.40/kWh", "2.38", "25 %", "2.97"],
        ["Parking time", "12 min at 0.10/min", "1.20", "25 %", "1.50"],
        ["Total (NOK)", "3.58", "", "4.47"],
    ]


def test_a_vat_breakdown_is_a_table() -> None:
    html = str(
        admin_display.human_value(
            [{"net": "2329.33", "vat": "582.34", "rate": "25.00", "gross": "2911.67"}],
            _field(Invoice, "vat_breakdown"),
            in_list=False,
        )
    )

    assert re.findall(r"<td[^>]*>(.*?)</td>", html) == ["25 %", "2,329.33", "582.34", "2,911.67"]


def test_other_json_is_a_table_on_a_page_and_short_in_a_list() -> None:
    payload = {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "value": "12" * 60}]}
    field = _field(MessageLog, "payload")

    page = str(admin_display.human_value(payload, field, in_list=False))
    listed = admin_display.human_value(payload, field, in_list=True)

    assert "<th>Connector ID</th><td>1</td>" in page
    assert "<th>Meter value</th><td><table" in page
    assert "<script" not in str(admin_display.human_value({"x": "<script>"}, field, in_list=False))
    assert len(listed) == 80
    assert listed.endswith("…")


@pytest.mark.parametrize(
    ("name", "editable", "label"),
    [
        ("max_power_w", False, "Max power"),
        ("max_power_w", True, "Max power (W)"),
        ("energy_wh", False, "Energy"),
        ("limit_energy_wh", True, "Limit energy (Wh)"),
        ("latency_ms", False, "Latency"),
        ("evse_uid", False, "EVSE UID"),
        ("vat_rate", False, "VAT rate"),
        ("max_current_a", False, "Max current (A)"),
        ("safety_margin_pct", True, "Safety margin (%)"),
        ("ocpi_id", False, "OCPI ID"),
    ],
)
def test_labels_from_field_names(name: str, editable: bool, label: str) -> None:
    assert admin_display.human_label(name, editable=editable) == label


AT = dt.datetime(2026, 7, 1, 12, 0, 5, tzinfo=dt.UTC)


def _session(tenant: Tenant) -> ChargingSession:
    session = ChargingSessionFactory(tenant=tenant, energy_wh=17817, started_at=AT, stopped_at=AT)
    return session


@pytest.mark.parametrize(
    ("cookie", "tenant_zone", "shown"),
    [
        ("America/New_York", "Europe/Berlin", "2026-07-01 08:00:05 EDT"),  # the browser's zone first
        ("", "Europe/Oslo", "2026-07-01 14:00:05 CEST"),  # else the tenant's
        ("Not/AZone", "Asia/Tokyo", "2026-07-01 21:00:05 JST"),  # a zone that does not exist is ignored
    ],
)
def test_a_page_shows_times_in_the_users_zone_with_the_zone_named(
    cookie: str, tenant_zone: str, shown: str, tenant_a: Tenant, make_staff: Callable[..., Any]
) -> None:
    Tenant.objects.filter(pk=tenant_a.pk).update(timezone=tenant_zone)
    session = _session(tenant_a)
    client = Client()
    client.force_login(make_staff(tenant_a, Role.OPERATIONS))
    if cookie:
        client.cookies["evp_tz"] = cookie

    page = client.get(reverse("admin:charging_chargingsession_change", args=[session.pk])).content.decode()

    assert f'<time datetime="2026-07-01T12:00:05Z" title="2026-07-01 12:00:05 UTC">{shown}</time>' in page
    assert "17.82 kWh" in page
    assert "17817" not in page


def test_a_superuser_of_several_tenants_gets_the_console_zone(
    tenant_a: Tenant, tenant_b: Tenant, superuser: Any, settings: Any
) -> None:
    settings.CONSOLE_TIME_ZONE = "Europe/Lisbon"
    Tenant.objects.filter(pk=tenant_b.pk).update(timezone="Asia/Tokyo")
    _session(tenant_a)
    client = Client()
    client.force_login(superuser)

    page = client.get(reverse("admin:charging_chargingsession_changelist")).content.decode()

    assert ">2026-07-01 13:00 WEST</time>" in page  # a list: to the minute


def test_an_invoice_page_shows_its_vat_as_a_table(tenant_a: Tenant, make_staff: Callable[..., Any]) -> None:
    invoice = issued_invoice(tenant_a)
    client = Client()
    client.force_login(make_staff(tenant_a, Role.FINANCE))

    page = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk])).content.decode()

    assert '<table class="console-table vat-table">' in page
    assert '<td class="num">19 %</td><td class="num">10.00</td><td class="num">1.90</td>' in page


def test_a_charge_point_form_labels_its_units(tenant_a: Tenant, make_staff: Callable[..., Any]) -> None:
    cp = ChargePointFactory(tenant=tenant_a, max_power_w=22000)
    client = Client()
    client.force_login(make_staff(tenant_a, Role.OPERATIONS))

    page = client.get(reverse("admin:stations_chargepoint_change", args=[cp.pk])).content.decode()

    assert '<label for="id_max_power_w">Max power (W):</label>' in page
    assert "Max power w" not in page
