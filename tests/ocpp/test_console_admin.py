"""The charge point console in the admin: commands grouped under human names, a form of labelled fields per command
(the payload it builds, the errors it shows), and what tenant staff see on a charger's and an invoice's page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.ocpp.admin_commands import BY_ACTION, CommandForm
from apps.stations import services as station_services
from apps.stations.models import ChargePoint, Command
from apps.tenants.models import Role, Tenant
from tests.billing.factories import issued_invoice
from tests.stations.factories import ChargePointFactory, ConnectorFactory, EvseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def charger(tenant_a: Tenant) -> ChargePoint:
    cp = ChargePointFactory(tenant=tenant_a, identity="CONSOLE-1")
    for n in (1, 2):
        ConnectorFactory(evse=EvseFactory(charge_point=cp, connector_id=n, evse_uid=f"DE*CON*E1*{n}"))
    return cp


def _client(make_staff: Callable[..., Any], tenant: Tenant, role: str) -> Client:
    client = Client()
    client.force_login(make_staff(tenant, role))
    return client


def test_the_change_page_groups_every_command_under_a_human_name(
    charger: ChargePoint, make_staff: Callable[..., Any], tenant_a: Tenant
) -> None:
    page = _client(make_staff, tenant_a, Role.OPERATIONS).get(
        reverse("admin:stations_chargepoint_change", args=[charger.pk])
    )

    html = page.content.decode()
    assert page.status_code == 200
    assert '<section class="cp-commands"' in html
    for action in station_services.SERVER_ACTIONS:
        assert reverse("admin:ocpp_chargepoint_command", args=[charger.pk, action]) in html
        assert f">{BY_ACTION[action].label}</a>" in html
    assert ">Remote start</a>" in html
    assert ">RemoteStartTransaction<" not in html
    for group in ("Transactions", "Smart charging", "Firmware and diagnostics"):
        assert f"<h3>{group}</h3>" in html


@pytest.mark.parametrize("action", station_services.SERVER_ACTIONS)
def test_every_command_form_has_labelled_fields_and_no_json_box(
    action: str, charger: ChargePoint, make_staff: Callable[..., Any], tenant_a: Tenant
) -> None:
    page = _client(make_staff, tenant_a, Role.OPERATIONS).get(
        reverse("admin:ocpp_chargepoint_command", args=[charger.pk, action])
    )

    assert page.status_code == 200
    form = page.context["form"]
    assert "payload" not in form.fields
    for name, field in form.fields.items():
        assert field.label, name
        assert f'for="id_{name}"' in page.content.decode()
    assert f"Send: {BY_ACTION[action].label}" in page.content.decode()


WHEN = dt.datetime(2030, 1, 2, 10, 30, tzinfo=dt.UTC)

BUILT: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("RemoteStartTransaction", {"idTag": "OPS-1"}, {"idTag": "OPS-1"}),
    ("RemoteStartTransaction", {"idTag": "OPS-1", "connectorId": "2"}, {"idTag": "OPS-1", "connectorId": 2}),
    ("Reset", {"type": "Hard"}, {"type": "Hard"}),
    ("ClearCache", {}, {}),
    ("GetConfiguration", {"key": "HeartbeatInterval, MeterValueSampleInterval"},
     {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]}),
    ("GetConfiguration", {"key": ""}, {}),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": "1"},
     {"requestedMessage": "StatusNotification", "connectorId": 1}),
    ("ReserveNow", {"connectorId": "1", "idTag": "T1", "expiryDate": "2030-01-02T10:30", "reservationId": "7"},
     {"connectorId": 1, "idTag": "T1", "expiryDate": "2030-01-02T10:30:00Z", "reservationId": 7}),
    ("SendLocalList", {"listVersion": "3", "updateType": "Differential", "entries": "A1\nB2 Blocked\n-C3\n"},
     {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": [
         {"idTag": "A1", "idTagInfo": {"status": "Accepted"}},
         {"idTag": "B2", "idTagInfo": {"status": "Blocked"}},
         {"idTag": "C3"},
     ]}),
    ("SetChargingProfile", {
        "connectorId": "1", "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "chargingProfileId": "4", "stackLevel": "1", "chargingRateUnit": "A", "limit": "16.5", "duration": "600",
    }, {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 4, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "duration": 600, "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.5}],
        },
    }}),
]  # fmt: skip


@pytest.mark.parametrize(("action", "fields", "payload"), BUILT, ids=[f"{c[0]}-{i}" for i, c in enumerate(BUILT)])
def test_a_command_form_builds_the_wire_payload(
    action: str, fields: dict[str, Any], payload: dict[str, Any], charger: ChargePoint
) -> None:
    form = CommandForm({**fields, "timeout": "5"}, charge_point=charger, action=action)

    assert form.is_valid(), form.errors
    assert form.payload == payload


REFUSED: list[tuple[str, dict[str, Any], dict[str, list[str]]]] = [
    ("UnlockConnector", {"connectorId": "3"}, {
        "connectorId": ["Charge point CONSOLE-1 has no connector 3 (its connectors: 1, 2)."]
    }),
    ("RemoteStartTransaction", {"idTag": "X" * 21},
     {"idTag": ["Ensure this value has at most 20 characters (it has 21)."]}),
    ("Reset", {"type": "Sideways"}, {"type": ["Select a valid choice. Sideways is not one of the available choices."]}),
    ("SendLocalList", {"listVersion": "2", "updateType": "Full", "entries": "-A"},
     {"entries": ["Required in a Full update."]}),
    ("SendLocalList", {"listVersion": "2", "updateType": "Full", "entries": "A Maybe"},
     {"entries": ["Line 1: write an id tag, optionally followed by one of Accepted, Blocked, Expired, Invalid, "
                  "ConcurrentTx."]}),
    ("GetConfiguration", {"key": "HeartbeatInterval,HeartbeatInterval"},
     {"key": ["HeartbeatInterval is asked twice."]}),
]  # fmt: skip


@pytest.mark.parametrize(("action", "fields", "errors"), REFUSED, ids=[f"{c[0]}-{i}" for i, c in enumerate(REFUSED)])
def test_a_refused_command_shows_the_error_on_its_field_and_sends_nothing(
    action: str,
    fields: dict[str, Any],
    errors: dict[str, list[str]],
    charger: ChargePoint,
    make_staff: Callable[..., Any],
    tenant_a: Tenant,
) -> None:
    url = reverse("admin:ocpp_chargepoint_command", args=[charger.pk, action])

    response = _client(make_staff, tenant_a, Role.OPERATIONS).post(url, {**fields, "timeout": "5"})

    assert response.status_code == 200  # the form again, not a redirect
    assert response.context["form"].errors == errors
    assert Command.objects.count() == 0


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATIONS, Role.FINANCE, Role.READ_ONLY])
def test_tenant_staff_see_the_evses_on_a_charger_page(
    role: str, charger: ChargePoint, make_staff: Callable[..., Any], tenant_a: Tenant
) -> None:
    page = _client(make_staff, tenant_a, role).get(reverse("admin:stations_chargepoint_change", args=[charger.pk]))

    assert page.status_code == 200
    [formset] = page.context["inline_admin_formsets"]
    assert [form.original.evse_uid for form in formset if form.original] == ["DE*CON*E1*1", "DE*CON*E1*2"]
    writes = role in (Role.ADMIN, Role.OPERATIONS)
    assert (formset.has_change_permission, formset.has_add_permission) == (writes, writes)
    assert ('<section class="cp-commands"' in page.content.decode()) is writes


def test_another_tenants_charger_is_still_a_404(
    charger: ChargePoint, tenant_b: Tenant, make_staff: Callable[..., Any]
) -> None:
    client = _client(make_staff, tenant_b, Role.ADMIN)

    assert client.get(reverse("admin:stations_chargepoint_change", args=[charger.pk])).status_code == 404
    assert client.get(reverse("admin:ocpp_chargepoint_command", args=[charger.pk, "Reset"])).status_code == 404


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATIONS, Role.FINANCE, Role.READ_ONLY])
def test_tenant_staff_see_an_invoices_lines_and_history_read_only(
    role: str, tenant_a: Tenant, make_staff: Callable[..., Any]
) -> None:
    invoice = issued_invoice(tenant_a, sessions=2)

    page = _client(make_staff, tenant_a, role).get(reverse("admin:billing_invoice_change", args=[invoice.pk]))

    assert page.status_code == 200
    lines, events = page.context["inline_admin_formsets"]
    assert len(list(lines)) == 2
    assert [form.original.action for form in events] != []
    for formset in (lines, events):
        assert (formset.has_add_permission, formset.has_change_permission, formset.formset.can_delete) == (
            False,
            False,
            False,
        )
    html = page.content.decode()
    assert 'name="_save"' not in html  # nothing on the page can be edited: no Save
    assert 'name="_continue"' not in html


def test_the_live_part_of_a_charger_page_has_its_connectors_and_latest_frames(
    charger: ChargePoint, make_staff: Callable[..., Any], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    from django.utils import timezone

    from apps.ocpp.models import MessageLog

    station_services.status_record(charge_point_id=charger.pk, connector_id=2, status="Charging")
    MessageLog.objects.create(
        tenant=tenant_a,
        charge_point=charger,
        direction="in",
        kind=MessageLog.Kind.CALL,
        action="StatusNotification",
        unique_id="u-42",
        payload={"connectorId": 2, "status": "Charging"},
        created_at=timezone.now(),
    )
    url = reverse("admin:ocpp_chargepoint_live", args=[charger.pk])

    live = _client(make_staff, tenant_a, Role.READ_ONLY).get(url)
    page = _client(make_staff, tenant_a, Role.OPERATIONS).get(
        reverse("admin:stations_chargepoint_change", args=[charger.pk])
    )
    other = _client(make_staff, tenant_b, Role.ADMIN).get(url)

    assert live.status_code == 200
    data = live.json()
    assert [(c["connector_id"], c["status"]) for c in data["connectors"]] == [(1, "Unknown"), (2, "Charging")]
    assert "StatusNotification" in data["frames_html"]
    assert f'data-url="{url}"' in page.content.decode()  # the page fetches it when the live group speaks
    assert f'data-tenant="{tenant_a.pk}"' in page.content.decode()
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
