"""Alerts are stored in English (API, webhooks) and read in the reader's language: the console's list and page, and
the alert e-mail in the tenant's language. A message of a shape no rule writes (older rows) is shown as stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from apps.analytics import notifications, rules, services, texts
from apps.analytics.models import Alert, AlertKind, AlertRule
from apps.core import events
from apps.core.stored_text import StoredText
from apps.tenants.models import Role, Tenant, User

pytestmark = pytest.mark.django_db

SAMPLE = {
    "connector": 2,
    "code": "GroundFailure",
    "action": "Reset",
    "type": "TamperDetectionActivated",
    "info": "lid open",
    "power": 25000,
    "rating": 22000,
    "charger": "CP-7",
    "at": "2026-12-04 15:31",
    "session": 55,
    "minutes": 30,
    "energy": 120,
    "serial": "0A1B",
    "status": "Rejected",
    "purpose": "TxDefaultProfile",
    "limit": 16,
    "unit": "A",
}
SHAPES = sorted({shape.msgid: shape for shapes in texts.SHAPES.values() for shape in shapes}.values(), key=repr)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.msgid[:40])
@pytest.mark.parametrize("language", ["de", "fr"])
def test_every_alert_sentence_reads_in_german_and_french_with_its_values(shape: StoredText, language: str) -> None:
    stored = shape.fill(**{name: SAMPLE[name] for name in shape._pattern.groupindex})
    kind = next(kind for kind, shapes in texts.SHAPES.items() if shape in shapes)

    with translation.override(language):
        shown = texts.alert_message(Alert(kind=kind, message=stored))

    assert shown != stored
    for name in shape._pattern.groupindex:
        assert str(SAMPLE[name]) in shown


def test_a_rules_alert_is_stored_in_english_and_shown_in_german_in_the_console(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    # given a failed Reset, as the command service reports it
    AlertRule.objects.create(tenant=tenant_a, kind=AlertKind.COMMAND_FAILED)
    AlertRule.objects.create(tenant=tenant_a, kind=AlertKind.CONNECTOR_FAULTED)
    rules.on_command(
        events.CommandFinished(tenant_id=tenant_a.pk, command_id=1, charge_point_id=7, action="Reset", status="timeout")
    )
    alert = Alert.objects.get(kind=AlertKind.COMMAND_FAILED)
    # and an older row whose message no rule writes any more
    services.alert_raise(
        tenant_id=tenant_a.pk,
        kind=AlertKind.CONNECTOR_FAULTED,
        subject="cp:7/1",
        charge_point_id=7,
        message="Legacy text kept as it was",
        details={},
    )
    client.force_login(make_staff(tenant_a, Role.OPERATIONS, is_staff=True))
    client.cookies["django_language"] = "de"

    listing = client.get("/admin/analytics/alert/").content.decode()
    page = client.get(f"/admin/analytics/alert/{alert.pk}/change/").content.decode()

    assert alert.message == "Reset timeout"  # stored, and shown by the API, in English
    assert "Reset: Zeitüberschreitung" in listing
    assert "Reset: Zeitüberschreitung" in page
    assert "Reset timeout" not in listing
    assert "Legacy text kept as it was" in listing


def test_the_alert_email_speaks_the_tenants_language(tenant_a: Tenant) -> None:
    tenant_a.language = "fr"
    tenant_a.timezone = "Europe/Paris"
    tenant_a.save(update_fields=["language", "timezone"])
    AlertRule.objects.create(tenant=tenant_a, kind=AlertKind.CONNECTOR_FAULTED, notify_emails=["ops@alpha.example"])
    rules.on_status(
        events.ConnectorStatusChanged(
            tenant_id=tenant_a.pk,
            charge_point_id=7,
            connector_id=2,
            status="Faulted",
            error_code="GroundFailure",
            previous_status="Available",
            at=timezone.now() - dt.timedelta(minutes=1),
        )
    )
    alert = Alert.objects.get(kind=AlertKind.CONNECTOR_FAULTED)

    notifications.alert_notify(alert_id=alert.pk, transition="opened")

    assert alert.message == "Connector 2 faulted: GroundFailure"
    assert len(mail.outbox) == 1
    assert "Connecteur 2 en défaut : GroundFailure" in mail.outbox[0].subject
    assert "Connecteur 2 en défaut : GroundFailure" in mail.outbox[0].body
    assert "faulted" not in mail.outbox[0].body
