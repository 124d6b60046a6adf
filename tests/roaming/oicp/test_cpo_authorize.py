"""A card our charger does not know, asked of Hubject (apps/roaming/oicp/authorizer.py, we are CPO): over real
HTTPS with mutual TLS the local Hubject authorizes it from the EMP's authentication data, the simulated OCPP charger
charges with it under Hubject's SessionID, and the session's ChargeDetailRecord goes back to the hub. A card Hubject
does not authorize is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from apps.customers.authorization import AuthorizationStatus
from apps.roaming.models import OicpConnection
from apps.roaming.oicp import cpo_push
from apps.roaming.oicp.authorizer import OicpAuthorizer
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.sessions import services as session_services
from apps.sessions.models import ChargingSession, SessionStatus
from tests.roaming.conftest import ChargerThread, Site, wait_until
from tests.roaming.oicp.conftest import PROVIDER_ID, Client
from tests.roaming.oicp.factories import oicp_connection_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CARD = "04A1B2C3D4E5F6"
HUBJECT_DN = "CN=hubject-hbs"


@pytest.fixture
def connection(ocpi_base: str, hub: HubSimulator, pki: LocalCA, site: Site, settings: Any) -> OicpConnection:
    settings.OICP_INBOUND_CLIENT_DN = HUBJECT_DN
    hub.add_party("cpo.voltnet", operator_id="DE*ALP", endpoint=f"{ocpi_base}/oicp")
    hub.partner_headers = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": HUBJECT_DN}
    connection = oicp_connection_for(
        site.tenant, pki=pki, base_url=hub.url, operator_id="DE*ALP", hotline_phone_number="+4930123456"
    )
    assert cpo_push.evse_data_sync(connection_id=connection.pk).inserted == 2
    return connection


def test_a_card_hubject_authorizes_charges_and_its_cdr_goes_back(
    connection: OicpConnection,
    hub: HubSimulator,
    emp: Client,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
) -> None:
    pushed = emp.post(
        f"/authdata/v21/providers/{PROVIDER_ID}/push-request",
        {
            "ActionType": "fullLoad",
            "ProviderAuthenticationData": {
                "ProviderID": PROVIDER_ID,
                "AuthenticationDataRecord": [{"Identification": {"RFIDMifareFamilyIdentification": {"UID": CARD}}}],
            },
        },
    ).json()
    assert pushed["Result"] is True, pushed
    # a card nobody at Hubject knows: refused, nothing recorded
    refused = OicpAuthorizer().authorize(
        tenant=site.tenant, id_tag="DEADBEEF", location_id=site.location.pk, at=timezone.now()
    )
    assert refused is not None
    assert refused.status == AuthorizationStatus.INVALID

    charger(connectors=1, id_tags=[CARD], idle_seconds=(0.5, 0.5), session_seconds=(3.0, 3.0))

    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag=CARD, status=SessionStatus.COMPLETED).order_by("pk").first(),
        timeout=90,
        what="the card's completed session",
    )
    card = {"RFIDMifareFamilyIdentification": {"UID": CARD}}
    asked = [c for c in hub.calls("AuthorizeStart") if c.body["Identification"] == card]
    # asked once for this session: the StartTransaction after the Authorize keeps Hubject's answer
    assert [c.answer["SessionID"] for c in asked].count(session.authorization_reference) == 1
    assert next(c.body["Identification"] for c in hub.calls("AuthorizeStart"))["RFIDMifareFamilyIdentification"] == {
        "UID": "DEADBEEF"
    }
    assert session.roaming_partner == "DE*HBS"
    assert session.authorization_reference in hub.sessions
    cdr = wait_until(
        lambda: next((c.cdr for c in hub.cdrs if c.cdr["SessionID"] == session.authorization_reference), None),
        what="the CDR at the hub",
    )
    assert (cdr["EvseID"], cdr["Identification"]) == ("DE*ALP*E1*1", card)
    assert cdr["ConsumedEnergy"] == pytest.approx(session.energy_wh / 1000)


def test_another_card_hubject_lets_stop_the_session_gets_the_starting_card_as_parent(
    connection: OicpConnection,
    hub: HubSimulator,
    emp: Client,
    site: Site,
    charger: Callable[..., ChargerThread],
    celery_worker: str,
) -> None:
    """OCPP 1.6: a charger stops a transaction for a different idTag when both share a parentIdTag. A card we do not
    know, shown where a session Hubject authorized runs, is asked as AuthorizeStop (not as a start); Hubject lets it
    stop, so it is Accepted with the starting card as parentIdTag, which the starting card has too."""
    pushed = emp.post(
        f"/authdata/v21/providers/{PROVIDER_ID}/push-request",
        {
            "ActionType": "fullLoad",
            "ProviderAuthenticationData": {
                "ProviderID": PROVIDER_ID,
                "AuthenticationDataRecord": [{"Identification": {"RFIDMifareFamilyIdentification": {"UID": CARD}}}],
            },
        },
    ).json()
    assert pushed["Result"] is True, pushed
    # no session runs yet: an unknown card is a start question, never a stop one
    session_services.id_tag_authorize_at(charge_point_id=site.charge_point.pk, id_tag="0A0B0C0D")
    assert hub.calls("AuthorizeStop") == []

    charger(connectors=1, id_tags=[CARD], idle_seconds=(0.5, 0.5), session_seconds=(600.0, 600.0))
    session = wait_until(
        lambda: ChargingSession.objects.filter(id_tag=CARD, status=SessionStatus.ACTIVE).first(),
        timeout=90,
        what="the card's running session",
    )
    starts_before = len(hub.calls("AuthorizeStart"))

    starter = session_services.id_tag_authorize_at(charge_point_id=site.charge_point.pk, id_tag=CARD)
    stopper = session_services.id_tag_authorize_at(charge_point_id=site.charge_point.pk, id_tag="0A0B0C0D")

    assert (starter.status, stopper.status) == ("Accepted", "Accepted")
    assert starter.parent_id_tag is not None
    assert stopper.parent_id_tag == starter.parent_id_tag
    (stop,) = hub.calls("AuthorizeStop")
    assert (stop.body["SessionID"], stop.body["EvseID"]) == (session.authorization_reference, "DE*ALP*E1*1")
    assert stop.body["Identification"] == {"RFIDMifareFamilyIdentification": {"UID": "0A0B0C0D"}}
    assert len(hub.calls("AuthorizeStart")) == starts_before  # neither card was asked as a start
