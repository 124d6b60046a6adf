"""A fault at our charger during a session Hubject authorized is a ChargingNotification of type Error to the hub
(apps/roaming/oicp/subscribers.py, inbound.notification_body): through a real Celery worker, over mutual TLS, once
per session and error code, with OICP's ErrorType (ConnectorError for a lock the driver can fix, else CriticalError),
and nothing for a connector without such a session."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from apps.core import events
from apps.roaming.oicp import cpo_push
from apps.roaming.oicp import subscribers as oicp_subscribers
from apps.roaming.oicp.authorizer import OicpAuthorizer
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.roaming.oicp.services import HUBJECT
from apps.sessions.models import ChargingSession, SessionStatus
from apps.tenants.models import Tenant
from tests.charging.factories import ChargingSessionFactory
from tests.roaming.conftest import wait_until
from tests.roaming.oicp.conftest import OPERATOR_ID, PROVIDER_ID, Client, hubject_site
from tests.roaming.oicp.factories import oicp_connection_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CARD = "04A1B2C3D4E5F6"


def _fault(site: dict[str, Any], connector: int, code: str) -> None:
    with transaction.atomic():  # as the outbox delivers it: the task goes on commit
        oicp_subscribers.connector_status_changed(
            events.ConnectorStatusChanged(
                tenant_id=site["charge_point"].tenant_id,
                charge_point_id=site["charge_point"].pk,
                connector_id=connector,
                status="Faulted",
                error_code=code,
                previous_status="Charging",
                at=timezone.now(),
            )
        )


def test_a_fault_during_a_hubject_session_reaches_the_hub_as_an_error_once(
    hub: HubSimulator, pki: LocalCA, emp: Client, tenant_a: Tenant, celery_worker: str
) -> None:
    hub.add_party("cpo.voltnet", operator_id=OPERATOR_ID)
    site = hubject_site(tenant_a)
    connection = oicp_connection_for(tenant_a, pki=pki, base_url=hub.url, hotline_phone_number="+4930123456")
    cpo_push.evse_data_sync(connection_id=connection.pk)
    record = {"Identification": {"RFIDMifareFamilyIdentification": {"UID": CARD}}}
    body = {
        "ActionType": "fullLoad",
        "ProviderAuthenticationData": {"ProviderID": PROVIDER_ID, "AuthenticationDataRecord": [record]},
    }
    assert emp.post(f"/authdata/v21/providers/{PROVIDER_ID}/push-request", body).json()["Result"] is True
    authorized = OicpAuthorizer().authorize(
        tenant=tenant_a, id_tag=CARD, location_id=site["location"].pk, at=timezone.now()
    )
    assert authorized is not None
    session = ChargingSessionFactory(
        charge_point=site["charge_point"],
        connector_id=1,
        evse=site["ac"],
        id_tag=CARD,
        status=SessionStatus.ACTIVE,
        roaming_partner=HUBJECT,
        authorization_reference=authorized.authorization_reference,
    )

    _fault(site, 2, "GroundFailure")  # no session on connector 2: nothing
    _fault(site, 1, "GroundFailure")
    _fault(site, 1, "GroundFailure")  # the charger repeats itself: still one
    _fault(site, 1, "ConnectorLockFailure")

    errors = wait_until(
        lambda: [n for n in hub.notifications if n["Type"] == "Error"] if len(hub.notifications) >= 2 else None,
        what="the Error notifications at the hub",
    )
    time.sleep(1)  # a third would have come by now
    assert len([n for n in hub.notifications if n["Type"] == "Error"]) == 2
    assert [(n["ErrorType"], n["SessionID"], n["EvseID"]) for n in errors] == [
        ("CriticalError", session.authorization_reference, "DE*ABC*E1001*1"),
        ("ConnectorError", session.authorization_reference, "DE*ABC*E1001*1"),
    ]
    assert "GroundFailure" in errors[0]["ErrorAdditionalInfo"]
    assert ChargingSession.objects.get(pk=session.pk).status == SessionStatus.ACTIVE  # a notification changes nothing
