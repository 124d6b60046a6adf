"""A tenant's Hubject connection: stored with its key encrypted, checked field by field, and the mTLS client that calls
the local Hubject, validates every body it would send and records each call per operation (shown in the admin)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection as db

from apps.core.errors import ApplicationError, Conflict
from apps.roaming.models import OicpConnection, OicpOperationState, PartnerStatus, Protocol, RoamingPartner
from apps.roaming.oicp import credentials, services
from apps.roaming.oicp.client import OicpCallFailed, OicpClient, OicpDisabled
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.roaming.oicp.schema import OicpValidationError
from apps.tenants.models import Role, Tenant
from tests.roaming.oicp.conftest import OPERATOR_ID, PROVIDER_ID, evse_record, push_evse_data
from tests.roaming.oicp.factories import oicp_connection_for, pem

Outcome = OicpOperationState.Outcome


@pytest.fixture
def hub_party(hub: HubSimulator) -> HubSimulator:
    hub.add_party("cpo.voltnet", operator_id=OPERATOR_ID, provider_id=PROVIDER_ID)
    return hub


@pytest.fixture
def connected(tenant_a: Tenant, hub_party: HubSimulator, pki: LocalCA) -> Iterator[OicpClient]:
    connection = oicp_connection_for(tenant_a, pki=pki, base_url=hub_party.url)
    client = OicpClient(connection, timeout=20)
    yield client
    client.close()


def _state(connection: OicpConnection, operation: str) -> OicpOperationState:
    return OicpOperationState.objects.get(connection=connection, operation=operation)


# --------------------------------------------------------------------------- the connection


def test_a_connection_is_a_partner_and_its_key_is_stored_encrypted(tenant_a: Tenant, pki: LocalCA) -> None:
    certificate, key = pem(pki.issue("cpo.voltnet"))

    connection = services.oicp_connection_create(
        tenant=tenant_a,
        certificate_pem=certificate,
        key_pem=key,
        environment="qa",
        operator_id="DE*ALP",
        provider_id="",
    )

    assert connection.base_url == "https://service-qa.hubject.com/api/oicp"
    assert connection.certificate_subject == "CN=cpo.voltnet"
    # only the CPO operations: there is no ProviderID
    assert connection.enabled_operations == [
        "PushEvseData",
        "PushEvseStatus",
        "AuthorizeStart",
        "AuthorizeStop",
        "ChargeDetailRecord",
        "ChargingNotifications",
        "PushPricingProductData",
        "PushEVSEPricing",
    ]
    partner = connection.partner
    assert (partner.protocol, partner.party, partner.status, partner.enabled_modules) == (
        Protocol.OICP,
        "DE*HBS",
        PartnerStatus.REGISTERED,
        [],
    )
    assert (partner.tenant_id, partner.our_roles) == (tenant_a.pk, ["CPO"])
    with db.cursor() as cursor:
        cursor.execute("SELECT client_key_encrypted FROM roaming_oicpconnection WHERE id = %s", [connection.pk])
        stored = cursor.fetchone()[0]
    assert "PRIVATE KEY" not in stored
    assert key.strip().splitlines()[1] not in stored
    assert credentials.decrypt(stored).strip() == key.strip()


def test_the_tenants_oicp_ids_are_the_defaults(tenant_a: Tenant, pki: LocalCA) -> None:
    Tenant.objects.filter(pk=tenant_a.pk).update(oicp_operator_id="DE*ALP", oicp_provider_id="DE-ALP")
    tenant_a.refresh_from_db()
    certificate, key = pem(pki.issue("alp"))
    connection = services.oicp_connection_create(tenant=tenant_a, certificate_pem=certificate, key_pem=key)
    assert (connection.operator_id, connection.provider_id, len(connection.enabled_operations)) == (
        "DE*ALP",
        "DE-ALP",
        16,  # every operation of OicpOperation
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key_pem": "other"}, "client_certificate"),  # a key of another certificate (set below)
        ({"certificate_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}, "client_certificate"),
        ({"key_pem": "not a key"}, "client_certificate"),
        ({"environment": "custom", "base_url": ""}, "base_url"),
        ({"operator_id": "DE-ALPHA"}, "operator_id"),
        ({"provider_id": "", "enabled_operations": ["PullEvseData"]}, "provider_id"),
        ({"enabled_operations": ["PushEverything"]}, "enabled_operations"),
        ({"server_ca": "garbage"}, "server_ca"),
    ],
)
def test_bad_settings_are_refused_by_field_and_nothing_is_created(
    tenant_a: Tenant, pki: LocalCA, change: dict[str, Any], field: str
) -> None:
    certificate, key = pem(pki.issue("cpo.voltnet"))
    arguments: dict[str, Any] = {
        "certificate_pem": certificate,
        "key_pem": key,
        "operator_id": "DE*ALP",
        "provider_id": "DE-ALP",
    }
    if change.get("key_pem") == "other":
        change = {"key_pem": pem(pki.issue("somebody"))[1]}
    arguments.update(change)

    with pytest.raises(ApplicationError) as raised:
        services.oicp_connection_create(tenant=tenant_a, **arguments)

    assert field in raised.value.fields
    assert OicpConnection.objects.count() == 0
    assert RoamingPartner.objects.count() == 0


def test_one_connection_per_tenant(tenant_a: Tenant, tenant_b: Tenant, pki: LocalCA) -> None:
    first = oicp_connection_for(tenant_a, pki=pki)
    with pytest.raises(Conflict):
        oicp_connection_for(tenant_a, pki=pki)
    assert OicpConnection.objects.filter(tenant=tenant_a).get() == first
    oicp_connection_for(tenant_b, pki=pki)  # another tenant has its own


def test_a_new_certificate_needs_its_key_and_disabling_suspends_the_partner(tenant_a: Tenant, pki: LocalCA) -> None:
    connection = oicp_connection_for(tenant_a, pki=pki)
    stored = connection.client_key_encrypted
    certificate, key = pem(pki.issue("renewed"))
    with pytest.raises(ApplicationError):
        services.oicp_connection_update(connection=connection, certificate_pem=certificate)
    connection.refresh_from_db()
    assert connection.client_key_encrypted == stored

    updated = services.oicp_connection_update(
        connection=connection, certificate_pem=certificate, key_pem=key, enabled=False
    )

    assert updated.certificate_subject == "CN=renewed"
    assert credentials.decrypt(updated.client_key_encrypted).strip() == key.strip()
    assert RoamingPartner.objects.get(pk=connection.partner_id).status == PartnerStatus.SUSPENDED


# --------------------------------------------------------------------------- the client over mutual TLS


def test_the_client_calls_hubject_over_mutual_tls_and_records_the_call(
    connected: OicpClient, hub_party: HubSimulator
) -> None:
    answer = connected.call("PushEvseData", push_evse_data("fullLoad", evse_record("DE*ABC*E1001")))

    assert answer["Result"] is True
    assert list(hub_party.evses) == ["DEABCE1001"]
    assert hub_party.received[0].party == "cpo.voltnet"  # the hub knew us by our certificate
    state = _state(connected.connection, "PushEvseData")
    assert (state.calls, state.last_outcome, state.last_status_code, state.last_http_status, state.last_error) == (
        1,
        Outcome.OK,
        "000",
        200,
        "",
    )
    pulled = connected.call("PullEvseData", {"ProviderID": PROVIDER_ID, "GeoCoordinatesResponseFormat": "Google"})
    assert [record["EvseID"] for record in pulled["content"]] == ["DE*ABC*E1001"]


def test_an_invalid_body_we_would_send_raises_and_is_never_sent(connected: OicpClient, hub_party: HubSimulator) -> None:
    body = push_evse_data("fullLoad", evse_record("DE*ABC*E1001", HotlinePhoneNumber="0800 123"))
    with pytest.raises(OicpValidationError) as raised:
        connected.call("PushEvseData", body)
    assert raised.value.issues[0].path == "$.OperatorEvseData.EvseDataRecord[0].HotlinePhoneNumber"
    assert hub_party.received == []
    state = _state(connected.connection, "PushEvseData")
    assert state.last_outcome == Outcome.FAILED
    assert "HotlinePhoneNumber" in state.last_error


def test_a_refusal_is_returned_and_recorded(connected: OicpClient, hub_party: HubSimulator) -> None:
    answer = connected.call("PushEvseData", push_evse_data("insert", evse_record("DE*XYZ*E1")))  # not our EVSE
    assert (answer["Result"], answer["StatusCode"]["Code"]) == (False, "018")
    state = _state(connected.connection, "PushEvseData")
    assert (state.last_outcome, state.last_status_code) == (Outcome.REFUSED, "018")
    assert "Inconsistent EvseID" in state.last_error
    assert state.last_ok_at is None


def test_an_http_error_answer_raises_and_is_recorded(tenant_a: Tenant, hub_party: HubSimulator, pki: LocalCA) -> None:
    # our certificate says cpo.voltnet, our OperatorID says otherwise: Hubject answers 017
    connection = oicp_connection_for(tenant_a, pki=pki, base_url=hub_party.url, operator_id="DE*XYZ")
    with pytest.raises(OicpCallFailed) as raised:
        OicpClient(connection).call(
            "PushEvseData", push_evse_data("fullLoad", evse_record("DE*XYZ*E1"), operator_id="DE*XYZ")
        )
    assert (raised.value.oicp_code, raised.value.http_status) == ("017", 403)
    state = _state(connection, "PushEvseData")
    assert (state.last_outcome, state.last_status_code, state.last_http_status) == (Outcome.REFUSED, "017", 403)


def test_a_certificate_hubject_does_not_trust_fails_at_tls(
    tenant_a: Tenant, hub_party: HubSimulator, pki: LocalCA, tmp_path: Any
) -> None:
    stranger = LocalCA(tmp_path / "stranger")
    connection = oicp_connection_for(tenant_a, pki=stranger, base_url=hub_party.url, server_ca=pki.ca_file.read_text())
    with pytest.raises(OicpCallFailed):
        OicpClient(connection, timeout=20).call("PushEvseData", push_evse_data("fullLoad", evse_record("DE*ABC*E1")))
    assert hub_party.received == []
    state = _state(connection, "PushEvseData")
    assert state.last_outcome == Outcome.FAILED
    assert "Error" in state.last_error


def test_a_server_we_do_not_trust_is_not_called(
    tenant_a: Tenant, hub_party: HubSimulator, pki: LocalCA, tmp_path: Any
) -> None:
    connection = oicp_connection_for(
        tenant_a, pki=pki, base_url=hub_party.url, server_ca=LocalCA(tmp_path / "x").ca_file.read_text()
    )
    with pytest.raises(OicpCallFailed) as raised:
        OicpClient(connection, timeout=20).call("PushEvseData", push_evse_data("fullLoad", evse_record("DE*ABC*E1")))
    assert "SSLError" in raised.value.message
    assert hub_party.received == []


def test_disabled_operations_are_not_called(tenant_a: Tenant, hub_party: HubSimulator, pki: LocalCA) -> None:
    connection = oicp_connection_for(tenant_a, pki=pki, base_url=hub_party.url, enabled_operations=["PushEvseStatus"])
    with pytest.raises(OicpDisabled):
        OicpClient(connection).call("PushEvseData", push_evse_data("fullLoad", evse_record("DE*ABC*E1")))
    services.oicp_connection_update(connection=connection, enabled=False)
    connection.refresh_from_db()
    with pytest.raises(OicpDisabled):
        OicpClient(connection).call("PushEvseStatus", {})
    assert hub_party.received == []
    assert not OicpOperationState.objects.exists()


# --------------------------------------------------------------------------- admin


def test_admin_adds_a_connection_shows_each_operation_and_scopes_by_tenant(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., Any], client: Any, pki: LocalCA
) -> None:
    certificate, key = pem(pki.issue("alp"))
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))
    form = {
        "tenant": tenant_a.pk,
        "name": "Hubject QA",
        "environment": "qa",
        "base_url": "",
        "operator_id": "DE*ALP",
        "provider_id": "",
        "client_certificate": certificate,
        "client_key": pem(pki.issue("other"))[1],  # not this certificate's key
        "server_ca": "",
        "enabled": "on",
        "enabled_operations": ["PushEvseData", "PushEvseStatus"],
        "operation_states-TOTAL_FORMS": "0",
        "operation_states-INITIAL_FORMS": "0",
    }
    refused = client.post("/admin/roaming/oicpconnection/add/", form)
    assert refused.status_code == 200
    assert "does not belong to the client certificate" in refused.content.decode()
    assert not OicpConnection.objects.exists()

    created = client.post("/admin/roaming/oicpconnection/add/", {**form, "client_key": key})
    assert created.status_code == 302, created.content.decode()[:2000]
    connection = OicpConnection.objects.get(tenant=tenant_a)
    assert connection.partner.name == "Hubject QA"
    assert connection.enabled_operations == ["PushEvseData", "PushEvseStatus"]
    assert credentials.decrypt(connection.client_key_encrypted).strip() == key.strip()

    services.oicp_operation_record(
        connection=connection,
        operation="PushEvseStatus",
        outcome="refused",
        status_code="018",
        error="PushEvseStatus: 018 Inconsistent EvseID.",
    )
    listing = client.get("/admin/roaming/oicpconnection/").content.decode()
    assert "Hubject QA" in listing
    assert "PushEvseStatus: 018 Inconsistent EvseID." in listing
    page = client.get(f"/admin/roaming/oicpconnection/{connection.pk}/change/").content.decode()
    assert "Inconsistent EvseID" in page
    assert "PRIVATE KEY" not in page  # the key is never shown
    assert key.strip().splitlines()[1] not in page

    other = oicp_connection_for(tenant_b, pki=pki, name="Beta's Hubject")
    assert client.get(f"/admin/roaming/oicpconnection/{other.pk}/change/").status_code in (302, 404)
    assert "Beta&#x27;s Hubject" not in client.get("/admin/roaming/oicpconnection/").content.decode()
    registry = client.get("/admin/roaming/roamingpartner/").content.decode()
    assert "Hubject QA" in registry  # one more partner in the same registry
    assert "Beta&#x27;s Hubject" not in registry


def test_a_viewer_sees_the_stored_connection_not_the_forms_inputs(
    tenant_a: Tenant, make_staff: Callable[..., Any], client: Any, pki: LocalCA
) -> None:
    # ops may view the connection but not change it: the form's "Partner name" and "Private key" inputs read "None"
    # on a read-only page; the viewer sees the partner and that a key is stored, never the key
    connection = oicp_connection_for(tenant_a, pki=pki, name="Alpha's Hubject")
    client.force_login(make_staff(tenant_a, Role.OPERATIONS, is_staff=True))
    response = client.get(f"/admin/roaming/oicpconnection/{connection.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Stored, encrypted (never shown)" in page
    assert "Alpha&#x27;s Hubject" in page
    assert ">None<" not in page.replace(" ", "").replace("\n", "")
    assert "PRIVATE KEY" not in page
    assert 'name="_save"' not in page
