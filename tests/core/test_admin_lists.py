"""The admin's key lists carry what an operator scans for, in columns that fit (sessions: energy, cost, quality;
exports: the file link; invoices: PDF/Excel; charge points: model, firmware and a status that says Charging when a
connector charges), and staff of one tenant get no tenant column."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.reports.models import ExportStatus
from apps.sessions.models import SessionStatus
from apps.stations.models import ChargePoint
from apps.tenants.models import Role, Tenant
from tests.billing.factories import ChargingSessionFactory, issued_invoice
from tests.reports.factories import ExportJobFactory
from tests.stations.factories import ChargePointFactory, EvseFactory

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _columns(response: Any) -> list[str]:
    cl = response.context["cl"]
    return [str(name if isinstance(name, str) else name.__name__) for name in cl.list_display]


def _cells(response: Any, field: str) -> list[str]:
    """The text of a column's cells, first row first."""
    html = response.content.decode()
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(rf'<td class="field-{field}[^"]*">(.*?)</td>', html)
    ]


def test_the_session_list_shows_energy_cost_and_quality(tenant_a: Tenant, make_staff: Callable[..., Any]) -> None:
    started = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    session = ChargingSessionFactory(
        tenant=tenant_a, energy_wh=17817, started_at=started, stopped_at=started + dt.timedelta(hours=1, seconds=5),
        cost_incl_vat=Decimal("6.3100"), currency="EUR", suspicious=True, suspicious_reasons=["too_short"],
    )  # fmt: skip

    response = _client(make_staff(tenant_a, Role.OPERATIONS)).get(reverse("admin:charging_chargingsession_changelist"))

    assert _columns(response) == [
        "id", "charger", "id_tag", "status", "started_at", "duration", "energy", "cost", "limit",
        "quality",
    ]  # fmt: skip
    assert _cells(response, "charger") == [f"{session.charge_point.identity} / {session.connector_id}"]
    assert _cells(response, "duration") == ["1:00:05"]
    assert _cells(response, "energy") == ["17.82 kWh"]
    assert _cells(response, "cost") == ["6.31 EUR"]
    assert _cells(response, "quality") == ["⚠ too short"]


def test_a_superuser_keeps_the_tenant_column(tenant_a: Tenant, superuser: Any) -> None:
    ChargingSessionFactory(tenant=tenant_a)

    response = _client(superuser).get(reverse("admin:charging_chargingsession_changelist"))

    assert "tenant" in _columns(response)


def _charger(tenant: Tenant, *statuses: str) -> ChargePoint:
    cp = ChargePointFactory(
        tenant=tenant, identity="LIST-1", vendor="Alfen", model="Eve Double", firmware_version="6.4"
    )
    for n, status in enumerate(statuses, 1):
        EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*LST*E1*{n}", status=status)
    return cp


@pytest.mark.parametrize(
    ("cp_status", "evse_statuses", "live_on", "shown"),
    [
        ("Available", ["Available", "Available"], None, "Available"),
        ("Available", ["Charging", "Available"], None, "Charging (1 of 2)"),
        ("Available", ["Available", "Available"], 2, "Charging (1 of 2)"),  # a running session, status not yet sent
        ("Available", ["SuspendedEV", "Faulted"], None, "Faulted (1 of 2)"),
        ("Faulted", ["Charging", "Available"], None, "Faulted"),
        ("Available", ["Charging"], None, "Charging"),
    ],
)
def test_the_charge_point_list_says_what_the_connectors_do(
    cp_status: str,
    evse_statuses: list[str],
    live_on: int | None,
    shown: str,
    tenant_a: Tenant,
    make_staff: Callable[..., Any],
) -> None:
    cp = _charger(tenant_a, *evse_statuses)
    ChargePoint.objects.filter(pk=cp.pk).update(status=cp_status)
    if live_on is not None:
        ChargingSessionFactory(tenant=tenant_a, charge_point=cp, connector_id=live_on, status=SessionStatus.ACTIVE)

    response = _client(make_staff(tenant_a, Role.FINANCE)).get(reverse("admin:stations_chargepoint_changelist"))

    assert _cells(response, "status_summary") == [shown]
    assert _cells(response, "hardware") == ["Alfen Eve Double"]
    assert _cells(response, "firmware") == ["6.4"]
    assert "tenant" not in _columns(response)


def test_the_invoice_list_has_the_downloads_and_the_total_with_its_currency(
    tenant_a: Tenant, make_staff: Callable[..., Any]
) -> None:
    invoice = issued_invoice(tenant_a)

    response = _client(make_staff(tenant_a, Role.FINANCE)).get(reverse("admin:billing_invoice_changelist"))

    assert _columns(response)[-2:] == ["total", "downloads"]
    assert _cells(response, "total") == [f"11.90 {invoice.currency}"]
    assert _cells(response, "downloads") == ["PDF Excel"]


def test_the_export_list_has_the_file_link_next_to_the_status(tenant_a: Tenant, make_staff: Callable[..., Any]) -> None:
    user = make_staff(tenant_a, Role.FINANCE)
    ExportJobFactory(tenant=tenant_a, requested_by=user, status=ExportStatus.DONE, file_name="sessions.csv")

    response = _client(user).get(reverse("admin:reports_exportjob_changelist"))

    columns = _columns(response)
    assert columns[columns.index("status") + 1] == "download"
    assert _cells(response, "download") == ["download"]
