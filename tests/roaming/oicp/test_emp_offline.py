"""We are an offline-authorizing EMP at Hubject (apps/roaming/oicp/emp_auth.py, emp_cdrs.py), over real HTTPS with
mutual TLS against the local Hubject, which validates every body against the OpenAPI files (`hub.errors` stays
empty): our valid tokens go to Hubject (PushAuthenticationData: a fullLoad, then only what changed), Hubject then
authorizes our drivers at other CPOs without asking us, the session reaches us with its CDR and is billed, and
GetChargeDetailRecords finds the CDRs we missed (stored and billed) and the ones that differ (flagged)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from apps.billing.models import InvoiceLine
from apps.customers import services as customer_services
from apps.customers.models import Token, TokenSource
from apps.roaming.models import OicpAuthenticationState, OicpConnection, OicpOperation
from apps.roaming.oicp import emp_auth, emp_cdrs
from apps.roaming.oicp.hub_sim import HubSimulator, LocalCA
from apps.sessions.models import PartnerCdr, PartnerSession
from apps.tariffs import services as tariff_services
from apps.tenants.models import Role, Tenant
from tests.customers.factories import DriverFactory, TokenFactory
from tests.roaming.conftest import wait_until
from tests.roaming.oicp.conftest import Client
from tests.roaming.oicp.factories import oicp_connection_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PROVIDER = "NL-BET"
EVCO = "NL-BET-C12345678-X"
HUBJECT_DN = "CN=hubject-hbs"
PROXY = {"X-SSL-Client-Verify": "SUCCESS", "X-SSL-Client-S-DN": f"{HUBJECT_DN},O=Hubject"}
START = "/charging/v21/operators/DE*ABC/authorize/start"
CDR = "/cdrmgmt/v22/operators/DE*ABC/charge-detail-record"


@pytest.fixture
def beta(ocpi_base: str, hub: HubSimulator, pki: LocalCA, tenant_b: Tenant, settings: Any) -> OicpConnection:
    """Beta is EMP at the hub (ProviderID NL-BET) and pushes its tokens; its drivers pay 0.50 EUR/kWh + 21 %."""
    settings.OICP_INBOUND_CLIENT_DN = HUBJECT_DN
    hub.partner_headers = PROXY
    hub.add_party("emp.beta", provider_id=PROVIDER, endpoint=f"{ocpi_base}/oicp")
    connection = oicp_connection_for(
        tenant_b,
        pki=pki,
        common_name="emp.beta",
        base_url=hub.url,
        operator_id="",
        provider_id=PROVIDER,
        enabled_operations=[OicpOperation.PUSH_AUTHENTICATION_DATA, OicpOperation.GET_CHARGE_DETAIL_RECORDS],
    )
    tariff_services.roaming_retail_rule_create(
        tenant=tenant_b,
        partner=connection.partner,
        mode="fixed_kwh",
        price_per_kwh_excl_vat=Decimal("0.50"),
        vat_rate=Decimal("21"),
        currency="EUR",
    )
    return connection


def _held(hub: HubSimulator) -> list[dict[str, Any]]:
    return sorted((r["Identification"] for r in hub.auth_data.get("NLBET", [])), key=str)


def _ids(uid: str | None = None, evco: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if uid:
        found["RFIDMifareFamilyIdentification"] = {"UID": uid}
    if evco:
        found["RemoteIdentification"] = {"EvcoID": evco}
    return found


def _cdr(session_id: str, uid: str, kwh: float, **changes: Any) -> dict[str, Any]:
    return {
        "SessionID": session_id,
        "EvseID": "DE*ABC*E7*1",
        "Identification": {"RFIDMifareFamilyIdentification": {"UID": uid}},
        "ChargingStart": "2026-12-05T10:00:00+01:00",
        "ChargingEnd": "2026-12-05T11:00:00+01:00",
        "SessionStart": "2026-12-05T09:59:00+01:00",
        "SessionEnd": "2026-12-05T11:01:00+01:00",
        "ConsumedEnergy": kwh,
        **changes,
    }


def test_valid_tokens_go_to_hubject_by_full_load_then_only_what_changed(
    beta: OicpConnection, hub: HubSimulator, cpo: Client, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    driver = DriverFactory(tenant=tenant_b)
    card = TokenFactory(tenant=tenant_b, driver=driver, uid="04A1B2C3D4E5F6", contract_id=EVCO)
    app = TokenFactory(tenant=tenant_b, driver=driver, uid="app-user-7", contract_id="NL-BET-C87654321-Y")
    foreign_contract = TokenFactory(tenant=tenant_b, driver=driver, uid="1A2B3C4D", contract_id="DE-XYZ-C12345678-X")
    TokenFactory(tenant=tenant_b, driver=driver, uid="0BADC0DE", blocked=True)
    TokenFactory(tenant=tenant_b, driver=driver, uid="0A0B0C0D", expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    TokenFactory(tenant=tenant_b, driver=driver, uid="no-rfid", contract_id="")
    TokenFactory(tenant=tenant_b, uid="CAFEF00D", contract_id="", source=TokenSource.ROAMING)
    TokenFactory(tenant=tenant_a, uid="FEEDBEEF", contract_id="")

    first = emp_auth.authentication_data_sync(connection_id=beta.pk)

    # the first sync is a fullLoad of the three tokens that may charge and that Hubject can name
    assert (first.action, first.inserted, first.refused) == ("fullLoad", 3, "")
    (call,) = hub.calls("PushAuthenticationData")
    assert call.body["ActionType"] == "fullLoad"
    assert call.body["ProviderAuthenticationData"]["ProviderID"] == PROVIDER
    assert _held(hub) == sorted(
        [_ids("04A1B2C3D4E5F6", EVCO), _ids(evco="NL-BET-C87654321-Y"), _ids("1A2B3C4D")], key=str
    )
    assert OicpAuthenticationState.objects.filter(connection=beta).count() == 3

    # nothing changed: a comparison of every token sends nothing
    assert emp_auth.authentication_data_sync(connection_id=beta.pk).sent == 0
    assert len(hub.calls("PushAuthenticationData")) == 1

    # blocked, new, given one of our contract ids: a delete, an insert, an update, and nothing else
    Token.objects.filter(pk=card.pk).update(blocked=True)
    new = TokenFactory(tenant=tenant_b, driver=driver, uid="0011223344556677889A", contract_id="")
    Token.objects.filter(pk=foreign_contract.pk).update(contract_id="NL-BET-C11112222-Z")
    changed = emp_auth.authentication_data_sync(connection_id=beta.pk, token_ids=[card.pk, new.pk, foreign_contract.pk])
    assert (changed.action, changed.deleted, changed.inserted, changed.updated) == ("delta", 1, 1, 1)
    actions = [c.body["ActionType"] for c in hub.calls("PushAuthenticationData")[1:]]
    assert actions == ["delete", "insert", "update"]
    assert _held(hub) == sorted(
        [
            _ids(evco="NL-BET-C87654321-Y"),
            _ids("1A2B3C4D", "NL-BET-C11112222-Z"),
            _ids("0011223344556677889A"),
        ],
        key=str,
    )
    assert sorted(OicpAuthenticationState.objects.values_list("token_pk", flat=True)) == sorted(
        [app.pk, foreign_contract.pk, new.pk]
    )

    # the blocked card is no longer Hubject's to authorize: the hub asks us, and we refuse it
    refused = cpo.post(START, {"OperatorID": "DE*ABC", "Identification": _ids("04A1B2C3D4E5F6")}).json()
    assert refused["AuthorizationStatus"] == "NotAuthorized", refused
    assert PartnerSession.objects.count() == 0


def test_hubject_authorizes_a_pushed_card_offline_and_its_cdr_is_billed_and_reconciled(
    beta: OicpConnection, hub: HubSimulator, cpo: Client, tenant_b: Tenant
) -> None:
    driver = DriverFactory(tenant=tenant_b)
    TokenFactory(tenant=tenant_b, driver=driver, uid="04A1B2C3D4E5F6", contract_id=EVCO)
    TokenFactory(tenant=tenant_b, driver=driver, uid="0A1B2C3D", contract_id="")
    emp_auth.authentication_data_sync(connection_id=beta.pk)

    # Hubject authorizes from our data, without asking us
    answer = cpo.post(START, {"OperatorID": "DE*ABC", "EvseID": "DE*ABC*E7*1", "Identification": _ids("0A1B2C3D")})
    authorized = answer.json()
    assert (authorized["AuthorizationStatus"], authorized["ProviderID"]) == ("Authorized", PROVIDER), authorized
    assert not [f for f in hub.forwarded if f.url.endswith("/authorize/start")]
    assert PartnerSession.objects.count() == 0

    # its CDR reaches us through the hub: the session is opened for the card's driver, completed and billed
    session_id = authorized["SessionID"]
    ack = cpo.post(CDR, _cdr(session_id, "0A1B2C3D", 20.5)).json()
    assert ack["Result"] is True, ack
    stored = PartnerCdr.objects.get(tenant=tenant_b)
    session = PartnerSession.objects.get(tenant=tenant_b)
    assert (stored.driver_id, stored.session_id, stored.total_energy) == (driver.pk, session.pk, Decimal("20.5000"))
    assert (session.state, session.authorization_reference, session.party_id) == ("COMPLETED", session_id, "ABC")
    line = wait_until(lambda: InvoiceLine.objects.filter(partner_cdr_id=stored.pk).first(), what="the receipt line")
    assert (line.total_excl_vat, line.total_incl_vat) == (Decimal("10.25"), Decimal("12.40"))

    # a second CDR Hubject could not forward (we were unreachable), and a third we hold differently
    start = {"OperatorID": "DE*ABC", "EvseID": "DE*ABC*E7*1", "Identification": _ids("0A1B2C3D")}
    missed, differing = (cpo.post(START, start).json()["SessionID"] for _ in range(2))
    assert cpo.post(CDR, _cdr(differing, "0A1B2C3D", 7.0)).json()["Result"] is True
    endpoint = hub.parties["emp.beta"].endpoint
    hub.parties["emp.beta"].endpoint = "https://127.0.0.1:9/oicp"  # nobody listens
    assert cpo.post(CDR, _cdr(missed, "0A1B2C3D", 11.25)).json()["Result"] is True
    hub.parties["emp.beta"].endpoint = endpoint
    assert not PartnerCdr.objects.filter(ocpi_id=missed).exists()
    next(kept for kept in hub.cdrs if kept.cdr["SessionID"] == differing).cdr["ConsumedEnergy"] = 7.5
    unknown = {**_cdr(str(uuid.uuid4()), "DEADBEEF", 3.0)}
    hub.cdrs.append(type(hub.cdrs[0])(hub.cdrs[0].provider_id, "DE*ABC", hub.cdrs[0].received, unknown))
    lines_before = InvoiceLine.objects.count()

    result = emp_cdrs.cdr_reconcile(
        connection_id=beta.pk,
        start=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        end=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
    )

    assert result.as_dict() == {
        "listed": 4,
        "matched": 1,
        "recovered": 1,
        "mismatched": 1,
        "unknown": 1,
        "refused": 0,
        "problems": [],
    }
    recovered = PartnerCdr.objects.get(ocpi_id=missed)
    assert (recovered.total_energy, recovered.driver_id) == (Decimal("11.2500"), driver.pk)
    flagged = PartnerCdr.objects.get(ocpi_id=differing)
    assert flagged.review == "mismatch"
    assert "energy 7.0000 kWh here, 7.5000 kWh at Hubject" in flagged.review_detail
    wait_until(lambda: InvoiceLine.objects.filter(partner_cdr_id=recovered.pk).exists(), what="the recovered line")
    assert InvoiceLine.objects.count() == lines_before + 1  # the recovered CDR only; the flagged one is not re-billed
    # a second run finds nothing new: the recovered CDR now matches
    again = emp_cdrs.cdr_reconcile(
        connection_id=beta.pk,
        start=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
        end=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
    )
    assert (again.matched, again.recovered, again.mismatched) == (2, 0, 1)
    assert PartnerCdr.objects.count() == 3


def test_a_token_change_reaches_hubject_through_the_worker_and_the_admin_reloads_everything(
    beta: OicpConnection,
    hub: HubSimulator,
    tenant_b: Tenant,
    celery_worker: str,
    make_staff: Callable[..., Any],
    client: Any,
) -> None:
    driver = DriverFactory(tenant=tenant_b)
    card = customer_services.token_create(tenant=tenant_b, driver=driver, uid="04A1B2C3D4E5F6", contract_id=EVCO)
    # the first change finds nothing acknowledged yet: a fullLoad
    wait_until(lambda: _held(hub) == [_ids("04A1B2C3D4E5F6", EVCO)], what="the card at Hubject")
    assert hub.calls("PushAuthenticationData")[0].body["ActionType"] == "fullLoad"

    customer_services.token_set_blocked(token=card, blocked=True)
    wait_until(lambda: _held(hub) == [], what="the blocked card withdrawn")
    assert hub.calls("PushAuthenticationData")[-1].body["ActionType"] == "delete"

    # the admin's "full load" replaces what Hubject holds (here: put back by hand, the admin reloads it)
    hub.auth_data["NLBET"] = [{"Identification": _ids("0BADC0DE")}]
    client.force_login(make_staff(tenant_b, Role.ADMIN, is_staff=True))
    page = client.post(
        "/admin/roaming/oicpconnection/",
        {"action": "authentication_data_full_load", "_selected_action": [beta.pk], "index": 0, "select_across": 0},
        follow=True,
    )
    assert "A full load of our tokens was queued for 1 connection." in page.content.decode()
    wait_until(lambda: hub.auth_data["NLBET"] == [], what="Hubject's copy replaced")
    assert hub.calls("PushAuthenticationData")[-1].body["ActionType"] == "fullLoad"
