"""Our tokens pushed to CPO partners (we are their eMSP; mod_tokens push model): every way a token or what decides it
changes (API, admin form and actions, CSV import, a driver's or contract's rules, deletion) reaches the CPO
simulator's tokens Receiver over real HTTP, coalesced and in order of first change per partner, with backoff while it
is down. The push task runs in this process (`apply`); the last test runs it in a real `celery worker` process."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.customers import services as customer_services
from apps.customers.models import Token, TokenSource
from apps.roaming import tasks
from apps.roaming.cpo_sim import CpoSimulator
from apps.roaming.models import PushState, RoamingPartner
from apps.roaming.ocpi import push as pusher
from apps.tenants.models import Role, Tenant
from tests.core.test_outbox_celery import Rig, database_url_of_this_test
from tests.customers.factories import ContractFactory, DriverFactory, TokenFactory
from tests.roaming.emsp_tokens_rig import cpo_registered, tokens_url
from tests.roaming.test_cpo_locations import assert_valid
from tests.roaming.test_cpo_push_network import admin_form
from tests.stations.factories import LocationFactory


@pytest.fixture
def cpo() -> Iterator[CpoSimulator]:
    simulator = CpoSimulator(country_code="NL", party_id="CPO").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def partner(ocpi_base: str, tenant_a: Tenant, cpo: CpoSimulator) -> RoamingPartner:
    partner = cpo_registered(ocpi_base, tenant_a, cpo)
    push(partner)  # the registration's full resync (nothing yet)
    cpo.received.clear()
    return partner


@pytest.fixture
def api(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> APIClient:
    return client_for(tenant_a)


@pytest.fixture
def admin_client(tenant_a: Tenant, make_staff: Callable[..., Any], client: Any) -> Any:
    client.force_login(make_staff(tenant_a, Role.ADMIN, is_staff=True))
    return client


def announced(*tokens: Token) -> None:
    """Factory-made tokens (no service, no event) told as changed, as the services would."""
    customer_services.tokens_changed(tenant_id=tokens[0].tenant_id, token_ids=[t.pk for t in tokens])


def push(partner: RoamingPartner) -> int:
    return int(tasks.push_partner.apply(args=(partner.pk,)).get())


def sent(cpo: CpoSimulator) -> list[tuple[str, str, Any]]:
    """(method, path below the tokens receiver with its query, body) of what the CPO received, in order."""
    prefix = "/ocpi/cpo/2.2.1/tokens/"
    return [(r.method, r.path[len(prefix) :], r.body) for r in cpo.received if r.path.startswith(prefix)]


def held(cpo: CpoSimulator, uid: str, type: str = "RFID") -> dict[str, Any]:
    document: dict[str, Any] = cpo.cpo_tokens[cpo.token_key(uid, "DE", "ALP", type)]
    return document


def our_list(cpo: CpoSimulator) -> dict[str, Any]:
    """What our tokens Sender answers the same CPO (the pushed objects must be the same)."""
    body = cpo.call("GET", tokens_url(cpo)).json()
    return {t["uid"]: t for t in body["data"]}


def test_registration_sends_every_token_of_ours_and_only_ours(
    ocpi_base: str, tenant_a: Tenant, tenant_b: Tenant, cpo: CpoSimulator
) -> None:
    TokenFactory(tenant=tenant_a, uid="CARD-1")
    TokenFactory(tenant=tenant_a, uid="APP-1", type="APP_USER", whitelist="NEVER")
    TokenFactory(tenant=tenant_b, uid="BETA-1")
    TokenFactory(tenant=tenant_a, uid="NLSIM01", source=TokenSource.ROAMING, country_code="NL", party_id="SIM")

    partner = cpo_registered(ocpi_base, tenant_a, cpo)
    assert push(partner) == 2

    assert sorted(cpo.cpo_tokens) == ["DE/ALP/APP-1/APP_USER", "DE/ALP/CARD-1/RFID"]
    listed = our_list(cpo)
    for uid, type in (("CARD-1", "RFID"), ("APP-1", "APP_USER")):
        assert_valid("mod_tokens_token_object", held(cpo, uid, type))
        assert held(cpo, uid, type) == listed[uid]
    assert {path for _, path, _ in sent(cpo)} == {"DE/ALP/CARD-1?type=RFID", "DE/ALP/APP-1?type=APP_USER"}


def test_api_create_and_edit_are_put_with_the_current_state(
    partner: RoamingPartner, cpo: CpoSimulator, api: APIClient
) -> None:
    created = api.post("/api/v1/tokens/", {"uid": "04AA01", "contract_id": "DE-ALP-C1"}, format="json")
    assert created.status_code == 201, created.content
    assert push(partner) == 1
    assert held(cpo, "04AA01")["valid"] is True

    assert api.patch(f"/api/v1/tokens/{created.json()['id']}/", {"blocked": True}, format="json").status_code == 200
    assert push(partner) == 1
    assert held(cpo, "04AA01")["valid"] is False
    assert held(cpo, "04AA01") == our_list(cpo)["04AA01"]
    assert [(m, p) for m, p, _ in sent(cpo)] == [("PUT", "DE/ALP/04AA01?type=RFID")] * 2


def test_bad_input_changes_nothing_and_pushes_nothing(
    partner: RoamingPartner, cpo: CpoSimulator, api: APIClient, tenant_a: Tenant
) -> None:
    token = TokenFactory(tenant=tenant_a, uid="KEEP-1")
    refused = api.post("/api/v1/tokens/", {"uid": "X" * 37}, format="json")
    duplicate = api.post("/api/v1/tokens/", {"uid": "keep-1"}, format="json")
    bad_patch = api.patch(f"/api/v1/tokens/{token.pk}/", {"whitelist": "SOMETIMES"}, format="json")
    assert (refused.status_code, duplicate.status_code, bad_patch.status_code) == (400, 400, 400)
    assert not PushState.objects.filter(partner=partner).exists()
    assert push(partner) == 0
    assert cpo.cpo_tokens == {}


def test_admin_form_actions_and_delete_are_pushed(
    partner: RoamingPartner, cpo: CpoSimulator, admin_client: Any, tenant_a: Tenant
) -> None:
    token = TokenFactory(tenant=tenant_a, uid="ADMIN-1")
    announced(token)
    assert push(partner) == 1
    url = reverse("admin:customers_token_change", args=[token.pk])
    data = admin_form(admin_client.get(url))
    data["whitelist"] = "NEVER"
    assert admin_client.post(url, data).status_code == 302
    assert push(partner) == 1
    assert held(cpo, "ADMIN-1")["whitelist"] == "NEVER"

    changelist = reverse("admin:customers_token_changelist")
    admin_client.post(changelist, {"action": "block", "_selected_action": [token.pk]})
    assert push(partner) == 1
    assert held(cpo, "ADMIN-1")["valid"] is False

    admin_client.post(changelist, {"action": "unblock", "_selected_action": [token.pk]})
    assert push(partner) == 1
    assert held(cpo, "ADMIN-1")["valid"] is True

    # deleted (nothing points to it): OCPI has no DELETE, the CPO gets valid: false where it has the token
    assert (
        admin_client.post(reverse("admin:customers_token_delete", args=[token.pk]), {"post": "yes"}).status_code == 302
    )
    assert not Token.objects.filter(pk=token.pk).exists()
    assert push(partner) == 1
    method, path, body = sent(cpo)[-1]
    assert (method, path, body["valid"]) == ("PATCH", "DE/ALP/ADMIN-1?type=RFID", False)
    assert held(cpo, "ADMIN-1")["valid"] is False


def test_a_new_uid_invalidates_the_old_key_then_puts_the_new_one(
    partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant
) -> None:
    token = customer_services.token_create(tenant=tenant_a, uid="OLD-UID", contract_id="C-OLD")
    assert push(partner) == 1
    customer_services.token_update(token=token, uid="NEW-UID")
    assert push(partner) == 1
    assert [(m, p) for m, p, _ in sent(cpo)][-2:] == [
        ("PATCH", "DE/ALP/OLD-UID?type=RFID"),
        ("PUT", "DE/ALP/NEW-UID?type=RFID"),
    ]
    assert held(cpo, "OLD-UID")["valid"] is False
    assert held(cpo, "NEW-UID")["valid"] is True


def test_a_csv_import_pushes_each_new_token(partner: RoamingPartner, cpo: CpoSimulator, api: APIClient) -> None:
    upload = SimpleUploadedFile("t.csv", b"uid,whitelist\nIMP-1,ALWAYS\nIMP-2,NEVER\nIMP-1,ALWAYS\n")
    response = api.post("/api/v1/tokens/import/", {"file": upload}, format="multipart")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    assert push(partner) == 2
    assert (held(cpo, "IMP-1")["whitelist"], held(cpo, "IMP-2")["whitelist"]) == ("ALWAYS", "NEVER")


def test_a_driver_without_credit_and_a_contract_limited_to_our_sites_reach_the_cpo(
    partner: RoamingPartner, cpo: CpoSimulator, api: APIClient, tenant_a: Tenant
) -> None:
    driver = DriverFactory(tenant=tenant_a)
    contract = ContractFactory(tenant=tenant_a)
    announced(
        TokenFactory(tenant=tenant_a, uid="DRV-1", driver=driver),
        TokenFactory(
            tenant=tenant_a, uid="FLT-1", business_contract=contract, business_customer=contract.business_customer
        ),
    )
    assert push(partner) == 2
    before = held(cpo, "DRV-1")["last_updated"]

    renamed = api.patch(f"/api/v1/drivers/{driver.pk}/", {"last_name": "Renamed"}, format="json")
    assert renamed.status_code == 200
    assert push(partner) == 0  # nothing that decides its tokens

    assert api.patch(f"/api/v1/drivers/{driver.pk}/", {"credit_blocked": True}, format="json").status_code == 200
    location = LocationFactory(tenant=tenant_a)
    limited = api.patch(f"/api/v1/contracts/{contract.pk}/", {"allowed_locations": [location.pk]}, format="json")
    assert limited.status_code == 200, limited.content
    assert push(partner) == 2
    assert held(cpo, "DRV-1")["valid"] is False
    assert held(cpo, "DRV-1")["last_updated"] >= before
    assert held(cpo, "FLT-1")["whitelist"] == "NEVER"
    assert held(cpo, "DRV-1") == our_list(cpo)["DRV-1"]


def test_changes_while_the_cpo_is_down_are_coalesced_and_sent_in_order_of_first_change(
    partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant
) -> None:
    first = TokenFactory(tenant=tenant_a, uid="FIRST")
    second = TokenFactory(tenant=tenant_a, uid="SECOND")
    cpo.fail_status = 503
    customer_services.token_set_blocked(token=first, blocked=True)
    customer_services.token_update(token=second, visual_number="V-2")
    customer_services.token_set_blocked(token=first, blocked=False)
    customer_services.token_update(token=first, visual_number="V-1")

    result = pusher.push_partner(partner_id=partner.pk)
    assert (result.sent, result.failed) == (0, True)
    state = PushState.objects.get(partner=partner, object_key=f"token:{first.pk}")
    assert state.attempts == 1
    assert state.next_attempt_at is not None
    assert state.next_attempt_at > timezone.now()
    assert "tokens" in RoamingPartner.objects.get(pk=partner.pk).last_errors

    cpo.fail_status = None
    cpo.received.clear()
    assert pusher.push_partner(partner_id=partner.pk, now=timezone.now() + dt.timedelta(seconds=6)).sent == 2
    assert [(m, p, b["visual_number"], b["valid"]) for m, p, b in sent(cpo)] == [
        ("PUT", "DE/ALP/FIRST?type=RFID", "V-1", True),  # its latest state, once
        ("PUT", "DE/ALP/SECOND?type=RFID", "V-2", True),
    ]


def test_another_tenants_tokens_never_reach_our_partner(
    partner: RoamingPartner, cpo: CpoSimulator, tenant_b: Tenant
) -> None:
    token = TokenFactory(tenant=tenant_b, uid="BETA-1")
    customer_services.token_set_blocked(token=token, blocked=True)
    assert not PushState.objects.filter(partner=partner).exists()
    assert push(partner) == 0
    assert cpo.cpo_tokens == {}


def test_a_partner_we_are_cpo_for_gets_no_pushes_of_our_tokens(ocpi_base: str, tenant_a: Tenant) -> None:
    emsp = CpoSimulator(party_id="EMP").start()
    try:
        partner = cpo_registered(ocpi_base, tenant_a, emsp, our_roles=["CPO"])
        customer_services.token_create(tenant=tenant_a, uid="MINE-1", contract_id="C1")
        push(partner)
        assert emsp.cpo_tokens == {}
    finally:
        emsp.stop()


def test_the_simulators_receiver_refuses_what_the_spec_refuses(
    partner: RoamingPartner, cpo: CpoSimulator, tenant_a: Tenant
) -> None:
    """The CPO simulator's tokens Receiver (what our pushes are checked against) takes only whole Tokens of its URL."""
    announced(TokenFactory(tenant=tenant_a, uid="SIM-1"))
    assert push(partner) == 1
    base = f"{cpo.base_url}/ocpi/cpo/2.2.1/tokens/DE/ALP"
    headers = {"Authorization": cpo.auth_header(cpo.server_token)}
    document = held(cpo, "SIM-1")
    wrong_key = requests.put(f"{base}/OTHER", json=document, headers=headers, timeout=10)
    unknown = requests.patch(
        f"{base}/NOPE", json={"valid": False, "last_updated": "2026-01-01T00:00:00Z"}, headers=headers, timeout=10
    )
    got = requests.get(f"{base}/SIM-1?type=RFID", headers=headers, timeout=10)
    assert (wrong_key.status_code, wrong_key.json()["status_code"]) == (400, 2001)
    assert (unknown.status_code, unknown.json()["status_code"]) == (404, 2004)
    assert got.json()["data"] == document


# --------------------------------------------------------------------------- a real worker process


@pytest.fixture
def worker(ocpi_base: str, settings: Any) -> Iterator[Rig]:
    """One `celery worker` process consuming a queue of its own (outbox deliveries and pushes), as
    tests/roaming/test_cpo_push_worker.py starts it."""
    queue = f"test-token-push-{uuid.uuid4().hex[:8]}"
    key = f"evp-test-token-push-{uuid.uuid4().hex[:8]}"
    overrides = {
        "EVENTS_DELIVERY": "celery",
        "EVENTS_OUTBOX_QUEUE": queue,
        "EVENTS_OUTBOX_KICK_KEY": f"{key}:kick",
        "OCPI_TASK_QUEUE": queue,
    }
    for name, value in overrides.items():
        setattr(settings, name, value)
    env = {
        **os.environ,
        **overrides,
        "DJANGO_SETTINGS_MODULE": "evplatform.settings.test",
        "DATABASE_URL": database_url_of_this_test(),
    }
    client = redis.Redis.from_url(settings.REDIS_URL)
    rig = Rig(queue=queue, key=key, env=env, client=client)
    try:
        rig.start_worker()
        rig.wait_ready(seconds=120)
        yield rig
    finally:
        rig.stop()
        client.delete(queue, *client.keys(f"{key}:*"))
        client.close()


@pytest.mark.slow
def test_a_token_created_then_blocked_reaches_the_cpo_through_a_real_worker(
    ocpi_base: str, worker: Rig, tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    from tests.roaming.test_cpo_push_worker import wait_until

    cpo = CpoSimulator(country_code="NL", party_id="CPO").start()
    try:
        partner = cpo_registered(ocpi_base, tenant_a, cpo)
        api = client_for(tenant_a)
        created = api.post("/api/v1/tokens/", {"uid": "WORKER-1", "contract_id": "DE-ALP-W1"}, format="json")
        assert created.status_code == 201, created.content
        assert api.patch(f"/api/v1/tokens/{created.json()['id']}/", {"blocked": True}, format="json").status_code == 200

        # the worker delivers the outbox rows and runs the push task; the CPO ends with the blocked token
        wait_until(lambda: cpo.cpo_tokens.get("DE/ALP/WORKER-1/RFID", {}).get("valid") is False, worker)
        wait_until(
            lambda: all(s.pushed_version == s.version for s in PushState.objects.filter(partner=partner)), worker
        )
        puts = [b for m, _, b in sent(cpo) if m == "PUT"]
        assert puts
        assert puts[-1]["valid"] is False
        assert all(b["uid"] == "WORKER-1" for b in puts)
        assert_valid("mod_tokens_token_object", puts[-1])
        assert worker.workers[0].poll() is None
        assert (
            RoamingPartner.objects.get(pk=partner.pk).last_pushes["tokens"]["object"] == f"token:{created.json()['id']}"
        )
    finally:
        cpo.stop()


def test_the_admin_forms_of_a_driver_and_a_contract_push_their_tokens(
    partner: RoamingPartner, cpo: CpoSimulator, admin_client: Any, tenant_a: Tenant
) -> None:
    driver = DriverFactory(tenant=tenant_a)
    contract = ContractFactory(tenant=tenant_a)
    announced(
        TokenFactory(tenant=tenant_a, uid="ADM-DRV", driver=driver),
        TokenFactory(
            tenant=tenant_a, uid="ADM-FLT", business_contract=contract, business_customer=contract.business_customer
        ),
    )
    assert push(partner) == 2

    url = reverse("admin:customers_driver_change", args=[driver.pk])
    data = admin_form(admin_client.get(url))
    data["phone"] = "+49 30 1234"
    assert admin_client.post(url, data).status_code == 302
    assert push(partner) == 0  # nothing that decides its tokens
    data["credit_blocked"] = "on"
    assert admin_client.post(url, data).status_code == 302
    assert push(partner) == 1
    assert held(cpo, "ADM-DRV")["valid"] is False

    url = reverse("admin:customers_contract_change", args=[contract.pk])
    data = admin_form(admin_client.get(url))
    data["allowed_locations"] = [LocationFactory(tenant=tenant_a).pk]
    del data["valid_from"]  # the admin's split date/time widget and the JSON field, as a browser posts them
    data.update({"valid_from_0": "2024-01-01", "valid_from_1": "00:00:00", "time_windows": "[]"})
    assert admin_client.post(url, data).status_code == 302
    assert push(partner) == 1
    assert held(cpo, "ADM-FLT")["whitelist"] == "NEVER"
