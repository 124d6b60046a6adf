"""The session page an ops person reads: fields in sections, a chart of power / energy / state of charge, a timeline
(start, status changes, commands about the transaction, meter values, stop), the cost breakdown as a table with the
tariff elements applied, and the transaction's OCPP frames (served by the OCPP console); another tenant's session
is a 404 on both."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.ocpp.models import MessageLog
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession
from apps.stations import services as station_services
from apps.stations.models import Command
from apps.tenants.models import Role, Tenant, User
from tests.customers.factories import TokenFactory
from tests.stations.factories import CommandFactory, ConnectorFactory, EvseFactory, LocationFactory
from tests.tariffs.factories import TariffAssignmentFactory, TariffFactory

pytestmark = pytest.mark.django_db

ENERGY_ONLY = [{"price_components": [{"type": "ENERGY", "price": "0.39", "vat": "19", "step_size": 1}]}]


def _sample(at: dt.datetime, wh: int, w: int, soc: int) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": at.isoformat(),
            "sampled_value": [
                {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": str(w), "measurand": "Power.Active.Import", "unit": "W"},
                {"value": str(soc), "measurand": "SoC", "unit": "Percent"},
            ],
        }
    ]


def _frame(cp: Any, at: dt.datetime, kind: int, action: str, unique_id: str, payload: dict[str, Any]) -> None:
    MessageLog.objects.create(
        tenant=cp.tenant,
        charge_point=cp,
        created_at=at,
        direction="in" if kind == MessageLog.Kind.CALL else "out",
        kind=kind,
        action=action,
        unique_id=unique_id,
        payload=payload,
    )


def _session(tenant: Tenant) -> ChargingSession:
    location = LocationFactory(tenant=tenant)
    cp, _ = station_services.charge_point_register(tenant=tenant, identity="PAGE-1", location=location)
    for n in (1, 2):
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*PAG*E1*{n}"))
    TokenFactory(tenant=tenant, uid="PAGECARD")
    TariffAssignmentFactory(tenant=tenant, tariff=TariffFactory(tenant=tenant, ocpi_id="KWH", elements=ENERGY_ONLY))
    began = timezone.now() - dt.timedelta(hours=1)
    session, _ = session_services.session_start(
        charge_point_id=cp.pk, connector_id=1, id_tag="PAGECARD", meter_start=1_000, timestamp=began
    )
    for minutes, wh, w, soc in ((10, 2_800, 11_000, 35), (20, 4_600, 11_000, 48), (30, 5_500, 5_500, 55)):
        session_services.session_add_meter_values(
            charge_point_id=cp.pk,
            connector_id=1,
            transaction_id=session.pk,
            meter_value=_sample(began + dt.timedelta(minutes=minutes), wh, w, soc),
        )
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 800_001,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": session.pk,
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8}]},
        },
    }
    command = CommandFactory(
        charge_point=cp, action="SetChargingProfile", payload=profile, status="accepted", source="energy"
    )
    Command.objects.filter(pk=command.pk).update(created_at=began + dt.timedelta(minutes=15))  # sent mid-session
    _frame(cp, began, MessageLog.Kind.CALL, "StartTransaction", "s1", {"connectorId": 1, "idTag": "PAGECARD"})
    _frame(cp, began, MessageLog.Kind.RESULT, "StartTransaction", "s1", {"transactionId": session.pk})
    _frame(cp, began, MessageLog.Kind.CALL, "StatusNotification", "x2", {"connectorId": 2, "status": "Faulted"})
    session_services.session_stop(
        charge_point_id=cp.pk,
        transaction_id=session.pk,
        meter_stop=5_500,
        timestamp=began + dt.timedelta(minutes=31),
        reason="EVDisconnected",
    )
    session_services.session_completion(session_id=session.pk)  # what the stop's SessionStopped delivery does
    return ChargingSession.objects.get(pk=session.pk)


def test_the_session_page_reads_as_sections_chart_timeline_and_cost_table(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    session = _session(tenant_a)
    client.force_login(make_staff(tenant_a, Role.OPERATIONS, is_staff=True))

    page = client.get(f"/admin/charging/chargingsession/{session.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    for section in ("Driver and authorization", "Energy and power", "Limits", "Price", "Timeline"):
        assert f">{section}</h2>" in html, section
    series = page.context["meter_series"]
    assert (series["energy_kwh"], series["power_kw"], series["soc"]) == (
        [1.8, 3.6, 4.5],
        [11.0, 11.0, 5.5],
        [35.0, 48.0, 55.0],
    )
    assert 'id="session-chart"' in html
    kinds = [(entry.kind, entry.title) for entry in page.context["timeline"]]
    assert kinds[0] == ("start", "Started on connector 1")
    # in time order: the profile went out between the second and third readings, the stop came last of the charger's
    charger_side = [k for k in kinds if k[0] != "status"]  # status rows carry the server's clock (now)
    assert charger_side == [
        ("start", "Started on connector 1"),
        ("meter", "Meter values"),
        ("command", "SetChargingProfile: accepted"),
        ("meter", "Meter values"),
        ("meter", "Meter values"),
        ("stop", "Stopped"),
    ]
    assert any(kind == "status" for kind, _ in kinds)
    # the price engine's lines, as a table: 4.5 kWh at 0.39 + 19 % VAT
    assert session.cost_incl_vat is not None
    assert [line["dimension"] for line in page.context["cost_lines"]] == ["ENERGY"]
    assert 'id="session-cost"' in html
    assert "0.39 EUR" in html
    assert '"cost_breakdown"' not in html or "Stored price document" in html  # the raw document is tucked away


def test_the_transactions_frames_and_nothing_of_another_tenant(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    session = _session(tenant_a)
    url = f"/admin/ocpp/messagelog/session/{session.pk}/"

    client.force_login(make_staff(tenant_a, Role.READ_ONLY, is_staff=True))
    frames = client.get(url)
    client.force_login(make_staff(tenant_b, Role.ADMIN, is_staff=True))
    other_frames = client.get(url)
    other_page = client.get(f"/admin/charging/chargingsession/{session.pk}/change/")

    assert frames.status_code == 200
    text = frames.content.decode()
    assert text.count("StartTransaction") == 2  # the CALL and its CALLRESULT naming the transaction
    assert "Faulted" not in text  # connector 2's frame is not this transaction's
    assert json.dumps({"transactionId": session.pk}) in text.replace("&quot;", '"')
    assert (other_frames.status_code, other_page.status_code) == (404, 404)
