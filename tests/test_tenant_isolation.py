"""A caller of tenant A gets 404 for tenant B's objects, on every API route and admin page, and nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import models
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.forms.models import model_to_dict
from django.urls import reverse
from rest_framework.test import APIClient

from apps.billing.models import Invoice
from apps.tenants.models import Invitation, Membership, Role, Tenant, User
from tests.registry import make_for, snapshot
from tests.tenants.factories import MembershipFactory, UserFactory, invitation_for
from tests.walker import Route, api_endpoints, api_routes, scoped_admins

DETAIL_ROUTES = [route for route in api_routes() if route.detail]
ADMINS = scoped_admins()


@pytest.fixture(params=["staff", "api_key"])
def caller_a(
    request: pytest.FixtureRequest,
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
    key_client_for: Callable[..., APIClient],
) -> APIClient:
    """Tenant A's most powerful callers: its admin, and an API key with every scope."""
    return client_for(tenant_a, Role.ADMIN) if request.param == "staff" else key_client_for(tenant_a, ["*"])


@pytest.mark.parametrize("route", DETAIL_ROUTES, ids=str)
def test_other_tenants_objects_are_404_and_unchanged(
    route: Route, caller_a: APIClient, tenant_a: Tenant, tenant_b: Tenant, superuser: object
) -> None:
    # given an object of tenant B, and what a superuser reads of it
    obj_b = make_for(route.model, tenant_b)
    url = reverse(route.name, kwargs={"pk": obj_b.pk})
    admin_client = APIClient()
    admin_client.force_authenticate(superuser)
    body = admin_client.get(url).json() if "get" in route.actions else {}
    before = snapshot(obj_b)

    # when tenant A's caller reads, updates or deletes it
    for method in route.actions:
        if method in ("head", "options"):
            continue
        response = getattr(caller_a, method)(url, body, format="json") if method != "get" else caller_a.get(url)

        # then it does not exist for them, in the one error shape, and nothing changed
        assert response.status_code == 404, (method, response.status_code, response.content)
        assert response.json()["code"] == "not_found"
        assert snapshot(obj_b) == before


@pytest.mark.parametrize("route", [r for r in api_routes() if not r.detail and "get" in r.actions], ids=str)
def test_lists_show_only_own_tenant(route: Route, caller_a: APIClient, tenant_a: Tenant, tenant_b: Tenant) -> None:
    own = make_for(route.model, tenant_a)
    other = make_for(route.model, tenant_b)

    response = caller_a.get(reverse(route.name))

    assert response.status_code == 200, response.content
    ids = {row["id"] for row in response.json()["results"]}
    assert own.pk in ids
    assert other.pk not in ids


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=lambda v: getattr(v, "__name__", ""))
def test_admin_pages_of_other_tenant_are_404_and_unchanged(
    model: type,
    model_admin: object,
    tenant_a: Tenant,
    tenant_b: Tenant,
    make_staff: Callable[..., object],
    client: object,
) -> None:
    obj_b = make_for(model, tenant_b)
    before = snapshot(obj_b)
    client.force_login(make_staff(tenant_a, Role.ADMIN))  # type: ignore[attr-defined]
    info = (model._meta.app_label, model._meta.model_name)

    for view in ("change", "delete", "history"):
        url = reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[obj_b.pk])
        assert client.get(url).status_code == 404, (view, url)  # type: ignore[attr-defined]
        assert client.post(url, {"post": "yes", "name": "hijacked"}).status_code == 404, (view, url)  # type: ignore[attr-defined]
    changelist = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"))  # type: ignore[attr-defined]

    assert snapshot(obj_b) == before
    assert changelist.status_code == 200
    assert obj_b.pk not in {o.pk for o in changelist.context["cl"].result_list}


# --------------------------------------------------------------------------- staff users and memberships
#
# Tenant B's people must be out of reach for tenant A: no call by A's staff (every role) or A's API keys, on any API
# route or admin page, creates, attaches, renames, reveals or takes over one of them. Checked in the database (B's
# users with their password hashes and e-mails, and every membership that touches them, before == after) and in
# every response A gets (B's usernames, e-mails and names never appear, unless A itself sent that string: in this
# request, or earlier for the one address A invites, which A's own invitation list then shows).


@dataclass(frozen=True)
class PeopleOfB:
    boss: User  # B's admin, whom A's requests name by username and id (never by e-mail: A must not learn it)
    mailee: User  # B's operations user, whom A's requests name by e-mail (and A invites)
    quiet: User  # B's read-only user, whom A never names
    shared: User  # works for A and for B: A may change its own membership, never the person or B's membership
    invited: Invitation  # B's pending invitation of someone

    @property
    def secrets(self) -> tuple[str, ...]:
        return (
            self.boss.username,
            self.boss.email,
            self.boss.first_name,
            self.boss.last_name,
            self.mailee.username,
            self.mailee.email,
            self.mailee.first_name,
            self.quiet.username,
            self.quiet.email,
            self.invited.email,
        )


@pytest.fixture
def people_b(tenant_a: Tenant, tenant_b: Tenant) -> PeopleOfB:
    boss = UserFactory(
        username="bq-boss-7x", email="boss.7x@beta-people.example", first_name="Bettina7x", last_name="Secretname7x"
    )
    MembershipFactory(user=boss, tenant=tenant_b, role=Role.ADMIN)
    mailee = UserFactory(username="bq-mailee-7x", email="mailee.7x@beta-people.example", first_name="Mailee7x")
    MembershipFactory(user=mailee, tenant=tenant_b, role=Role.OPERATIONS)
    quiet = UserFactory(username="bq-quiet-7x", email="quiet.7x@beta-people.example")
    MembershipFactory(user=quiet, tenant=tenant_b, role=Role.READ_ONLY)
    shared = UserFactory(username="ab-shared-7x", email="shared.7x@both.example")
    MembershipFactory(user=shared, tenant=tenant_a, role=Role.OPERATIONS)
    MembershipFactory(user=shared, tenant=tenant_b, role=Role.ADMIN)
    invited, _ = invitation_for(tenant_b, "pending.7x@beta-people.example", Role.OPERATIONS)
    return PeopleOfB(boss=boss, mailee=mailee, quiet=quiet, shared=shared, invited=invited)


def people_state(people: PeopleOfB, tenant_b: Tenant) -> list[list[dict[str, Any]]]:
    """B's people as stored (password hashes and e-mails included), every membership that concerns B, and B's
    invitations."""
    b_only = [people.boss, people.mailee, people.quiet]
    users = list(User.objects.filter(pk__in=[u.pk for u in (*b_only, people.shared)]).order_by("pk").values())
    memberships = list(Membership.objects.filter(Q(tenant=tenant_b) | Q(user__in=b_only)).order_by("pk").values())
    invitations = list(Invitation.objects.filter(tenant=tenant_b).order_by("pk").values())
    return [users, memberships, invitations]


class LeakCheck:
    """B's strings must not appear in what A gets, unless A sent them in that request; the one address A invites
    stays known to A once sent (A's own invitation list shows it)."""

    def __init__(self, people: PeopleOfB) -> None:
        self.people = people
        self.invited_by_a = False

    def __call__(self, response: Any, sent: str, where: str) -> None:
        content = b"".join(response.streaming_content) if response.streaming else response.content
        text = content.decode(errors="replace")
        self.invited_by_a = self.invited_by_a or self.people.mailee.email in sent
        known = sent + (self.people.mailee.email if self.invited_by_a else "")
        leaked = [secret for secret in self.people.secrets if secret in text and secret not in known]
        assert not leaked, (where, response.status_code, leaked, text[:2000])


def api_probes(people: PeopleOfB) -> list[dict[str, Any]]:
    """Bodies that try to create, attach, rename or take over B's people, by username, e-mail or id."""
    boss = people.boss
    return [
        {"username": boss.username, "role": "admin", "password": "hijacked-password-1"},
        {"username": boss.username, "role": "admin"},
        {"username": boss.username},
        {"email": people.mailee.email, "role": "admin"},
        {"email": people.mailee.email, "role": "admin", "password": "hijacked-password-1"},
        {"user": boss.pk, "role": "admin"},
        {"email": "hijack@alpha.example", "first_name": "Hijacked", "last_name": "Hijacked", "is_active": False},
        {"password": "hijacked-password-1"},
    ]


DOCUMENT_MODELS = {"invoice-pdf": Invoice, "invoice-xlsx": Invoice}

CALLERS = ["admin", "operations", "finance", "read_only", "key:*", "key:staff"]


@pytest.fixture(params=CALLERS)
def any_caller_a(
    request: pytest.FixtureRequest,
    tenant_a: Tenant,
    client_for: Callable[..., APIClient],
    key_client_for: Callable[..., APIClient],
) -> APIClient:
    """Tenant A's staff of every role, an all-powerful key and a key made for managing people."""
    if request.param == "key:*":
        return key_client_for(tenant_a, ["*"])
    if request.param == "key:staff":
        return key_client_for(tenant_a, ["staff:write", "api_keys:write", "tenants:write"])
    return client_for(tenant_a, request.param)


def test_no_api_route_reaches_another_tenants_people(
    any_caller_a: APIClient, tenant_a: Tenant, tenant_b: Tenant, people_b: PeopleOfB
) -> None:
    # given B's people, and A's own membership of the person who works for both
    before = people_state(people_b, tenant_b)
    own_membership = Membership.objects.get(user=people_b.shared, tenant=tenant_a)
    boss, mailee = people_b.boss, people_b.mailee
    query = {"username": boss.username, "email": mailee.email, "search": boss.username, "q": mailee.email}
    query_by_id = {"user": boss.pk, "user_id": boss.pk}
    check = LeakCheck(people_b)

    # when A's caller sends every probe to every API route (deletes last, so the probes see A's own objects)
    for endpoint in sorted(api_endpoints(), key=lambda e: "delete" in e.methods):
        model = endpoint.model or DOCUMENT_MODELS.get(endpoint.name)
        kwargs: dict[str, Any] = {}
        for param in endpoint.params:
            if param == "pk" and model is Membership:
                kwargs[param] = own_membership.pk
            elif param == "pk" and model is not None:
                kwargs[param] = make_for(model, tenant_a).pk
            else:
                kwargs[param] = "0"
        url = reverse(endpoint.name, kwargs=kwargs)
        for method in sorted(endpoint.methods, key=lambda m: m == "delete"):
            if method == "get":
                # then nothing of B's people comes back
                for params in (query, query_by_id):
                    check(any_caller_a.get(url, params), json.dumps(params), f"GET {url} {params}")
                continue
            for probe in api_probes(people_b) if method != "delete" else [{}]:
                body = json.dumps(probe)
                response = any_caller_a.generic(method.upper(), url, body, content_type="application/json")
                assert response.status_code < 500, (method, url, probe, response.content[:500])
                check(response, body, f"{method.upper()} {url} {probe}")

    # then B's people, their passwords and every membership that concerns B are exactly as before
    assert people_state(people_b, tenant_b) == before


def admin_probes(people: PeopleOfB, tenant_a: Tenant) -> list[dict[str, Any]]:
    boss = people.boss
    return [
        {"user": boss.pk, "tenant": tenant_a.pk, "role": "admin"},
        {
            "username": boss.username,
            "email": people.mailee.email,
            "role": "admin",
            "tenant": tenant_a.pk,
            "password1": "hijacked-password-1",
            "password2": "hijacked-password-1",
        },
        {"email": "hijack@alpha.example", "first_name": "Hijacked", "is_active": "", "tenant": tenant_a.pk},
    ]


def form_data(obj: Any) -> dict[str, Any]:
    """The object's current values, as the change form would post them (so a probe can be a valid edit)."""
    data: dict[str, Any] = {}
    for name, value in model_to_dict(obj).items():
        if value is None or isinstance(value, dict | list | FieldFile):
            continue
        data[name] = value.pk if isinstance(value, models.Model) else value
    return data
