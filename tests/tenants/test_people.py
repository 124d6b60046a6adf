"""People join a tenant by invitation and own their account; a tenant changes only its own membership rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.tenants import services, tasks
from apps.tenants.models import Invitation, Membership, MembershipSource, Role, Tenant, User
from tests.registry import snapshot
from tests.tenants.factories import MembershipFactory, UserFactory, invitation_for

ACCEPT = "/api/v1/staff-invitations/accept/"


def people() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every account (password hashes and e-mails included) and every membership, as stored."""
    return list(User.objects.order_by("pk").values()), list(Membership.objects.order_by("pk").values())


@pytest.fixture
def boss_b(tenant_b: Tenant) -> User:
    """Tenant B's admin, with a password only they know."""
    user = UserFactory(username="bea", email="bea@beta.example", first_name="Bea", last_name="Beta")
    MembershipFactory(user=user, tenant=tenant_b, role=Role.ADMIN)
    return user


# --------------------------------------------------------------------------- what was seen on main


def test_no_key_creates_or_takes_over_a_staff_user_by_username(
    tenant_a: Tenant, tenant_b: Tenant, key_client_for: Callable[..., APIClient]
) -> None:
    # given B's key created user "x" with its own password (that is what main allowed)
    key_b, key_a = key_client_for(tenant_b, ["*"]), key_client_for(tenant_a, ["*"])
    before = people()

    # when B's key, then A's key, "create" staff user x with a password
    by_b = key_b.post("/api/v1/staff-users/", {"username": "x", "role": "admin", "password": "b-password-123"})
    by_a = key_a.post("/api/v1/staff-users/", {"username": "x", "role": "admin", "password": "a-password-123"})

    # then both are refused with a clear error (never a 201 that ignores the password), and nobody exists
    for response in (by_b, by_a):
        assert response.status_code == 405
        assert response.json() == {
            "code": "method_not_allowed",
            "message": "Staff users are not created here: invite them with POST /api/v1/staff-invitations/ "
            "(the person chooses their own password when accepting).",
            "fields": {},
        }
    assert people() == before


def test_inviting_another_tenants_admin_reveals_and_attaches_nothing(
    tenant_a: Tenant, tenant_b: Tenant, boss_b: User, key_client_for: Callable[..., APIClient]
) -> None:
    # given B's admin, and A's key
    key_a = key_client_for(tenant_a, ["*"])
    before = people()

    # when A invites B's admin's address, and an address nobody uses
    known = key_a.post("/api/v1/staff-invitations/", {"email": "bea@beta.example", "role": "admin"})
    unknown = key_a.post("/api/v1/staff-invitations/", {"email": "nobody@nowhere.example", "role": "admin"})

    # then both answers are the same but for the id, address and times: nothing about the person comes back
    assert (known.status_code, unknown.status_code) == (201, 201), known.content
    varying = {"id", "email", "expires_at", "created_at"}
    assert {k: v for k, v in known.json().items() if k not in varying} == {
        k: v for k, v in unknown.json().items() if k not in varying
    }
    assert known.json()["status"] == "pending"
    assert known.json()["invited_by"].startswith("api-key:")
    # the person's name nowhere but in the address we sent (the key's random hex prefix may spell "bea": it did)
    others = {k: v for k, v in known.json().items() if k not in {"email", "invited_by"}}
    assert "bea" not in json.dumps(others)
    # ... and nobody was attached: B's admin works for B only, with the same account
    assert people() == before
    assert A_staff_list(key_a) == []


def A_staff_list(client: APIClient) -> list[str]:
    return [row["username"] for row in client.get("/api/v1/staff-users/").json()["results"]]


# --------------------------------------------------------------------------- inviting


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"password": "a-long-password"}, "password"),
        ({"username": "olga"}, "username"),
        ({"user": 1}, "user"),
        ({"first_name": "Olga"}, "first_name"),
    ],
)
def test_invitation_refuses_account_fields(
    tenant_a: Tenant, client_for: Callable[..., APIClient], extra: dict[str, Any], field: str
) -> None:
    admin = client_for(tenant_a, Role.ADMIN)

    response = admin.post("/api/v1/staff-invitations/", {"email": "olga@alpha.example", "role": "admin", **extra})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["fields"]) == [field]
    assert not Invitation.objects.exists()


def test_an_invitation_without_a_role_is_a_400_naming_it(
    tenant_a: Tenant, client_for: Callable[..., APIClient]
) -> None:
    """make api-fuzz found `POST /staff-invitations/ {"email": ...}` answered 500 (KeyError 'role')."""
    admin = client_for(tenant_a, Role.ADMIN)

    response = admin.post("/api/v1/staff-invitations/", {"email": "olga@alpha.example"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["fields"]) == ["role"]
    assert not Invitation.objects.exists()


def test_invitation_is_mailed_with_a_link_that_works(
    tenant_a: Tenant, client_for: Callable[..., APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    admin = client_for(tenant_a, Role.ADMIN)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin.post("/api/v1/staff-invitations/", {"email": "Olga@Alpha.example", "role": "finance"})
    assert response.status_code == 201, response.content
    assert len(callbacks) == 1
    invitation = Invitation.objects.get(pk=response.json()["id"])
    assert (invitation.email, invitation.role, invitation.tenant) == ("Olga@alpha.example", "finance", tenant_a)

    tasks.invitation_send(invitation.pk)
    tasks.invitation_send(invitation.pk)  # a re-run sends nothing twice

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["Olga@alpha.example"]
    assert message.subject == "You are invited to Alpha Charge"
    token = services.invitation_token(invitation)
    assert f"http://127.0.0.1:8000/invitations/{token}/" in message.body
    assert token not in str(snapshot(invitation).values())  # only the key and nonce are stored
    accepted = APIClient().post(ACCEPT, {"token": token, "password": "olga-chose-this-1"})
    assert accepted.status_code == 201, accepted.content


def test_second_open_invitation_for_an_address_is_409(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    admin = client_for(tenant_a, Role.ADMIN)
    first = admin.post("/api/v1/staff-invitations/", {"email": "olga@alpha.example", "role": "finance"})

    again = admin.post("/api/v1/staff-invitations/", {"email": "OLGA@alpha.example", "role": "admin"})

    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["code"] == "invitation_exists"
    assert Invitation.objects.count() == 1


def test_an_expired_invitation_makes_way_for_a_new_one(tenant_a: Tenant) -> None:
    old, _ = invitation_for(tenant_a, "olga@alpha.example")
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    new, _token = invitation_for(tenant_a, "olga@alpha.example")

    old.refresh_from_db()
    assert old.status == "revoked"
    assert new.status == "pending"


@pytest.mark.parametrize("role", [Role.OPERATIONS, Role.FINANCE, Role.READ_ONLY])
def test_only_tenant_admins_invite(tenant_a: Tenant, client_for: Callable[..., APIClient], role: str) -> None:
    response = client_for(tenant_a, role).post(
        "/api/v1/staff-invitations/", {"email": "olga@alpha.example", "role": "read_only"}
    )

    assert response.status_code == 403
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("scopes", [["staff:write"], ["staff:write", "api_keys:write", "tenants:write"]])
def test_a_key_without_star_cannot_hand_out_roles(
    tenant_a: Tenant, key_client_for: Callable[..., APIClient], make_staff: Callable[..., User], scopes: list[str]
) -> None:
    # a staff:write key inviting an address it controls as admin would reach every scope through that person
    key = key_client_for(tenant_a, scopes)
    member = Membership.objects.get(user=make_staff(tenant_a, Role.READ_ONLY))
    before = snapshot(member)

    invited = key.post("/api/v1/staff-invitations/", {"email": "mine@integration.example", "role": "admin"})
    promoted = key.patch(f"/api/v1/staff-users/{member.pk}/", {"role": "admin"})

    assert (invited.status_code, promoted.status_code) == (403, 403)
    assert invited.json()["code"] == promoted.json()["code"] == "scope_escalation"
    assert not Invitation.objects.exists()
    assert snapshot(member) == before


# --------------------------------------------------------------------------- accepting


def test_new_person_accepts_by_choosing_their_password(tenant_a: Tenant) -> None:
    invitation, token = invitation_for(tenant_a, "Olga@Alpha.example", Role.FINANCE)

    response = APIClient().post(ACCEPT, {"token": token, "password": "olga-chose-this-1", "first_name": "Olga"})

    assert response.status_code == 201, response.content
    user = User.objects.get(username="olga@alpha.example")
    membership = Membership.objects.get(user=user)
    assert response.json() == {
        "membership": membership.pk,
        "tenant": tenant_a.pk,
        "tenant_name": "Alpha Charge",
        "role": "finance",
        "username": "olga@alpha.example",
    }
    assert user.check_password("olga-chose-this-1")
    assert (user.email, user.first_name, user.is_staff) == ("Olga@alpha.example", "Olga", True)
    assert (membership.tenant, membership.role, membership.source) == (tenant_a, "finance", "invitation")
    invitation.refresh_from_db()
    assert (invitation.status, invitation.accepted_by) == ("accepted", user)
    # the link works once
    again = APIClient().post(ACCEPT, {"token": token, "password": "olga-chose-this-1"})
    assert again.status_code == 404
    assert again.json()["code"] == "invitation_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "password"), ({"password": "short"}, "password"), ({"password": "password123"}, "password")],
    ids=["no password", "too short", "too common"],
)
def test_new_account_needs_a_good_password(tenant_a: Tenant, body: dict[str, str], field: str) -> None:
    invitation, token = invitation_for(tenant_a)
    before = people()

    response = APIClient().post(ACCEPT, {"token": token, **body})

    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert people() == before
    invitation.refresh_from_db()
    assert invitation.status == "pending"


def test_existing_login_must_log_in_to_accept(tenant_a: Tenant) -> None:
    UserFactory(username="olga@alpha.example")
    _invitation, token = invitation_for(tenant_a, "olga@alpha.example")
    before = people()

    response = APIClient().post(ACCEPT, {"token": token, "password": "someone-elses-1"})

    assert response.status_code == 409
    assert response.json()["code"] == "account_exists"
    assert people() == before


def test_another_tenants_person_accepts_explicitly_with_their_account(
    tenant_a: Tenant, tenant_b: Tenant, boss_b: User, client_for: Callable[..., APIClient]
) -> None:
    # given A invited B's admin's address: until they accept, A sees nobody
    admin_a = client_for(tenant_a, Role.ADMIN)
    _invitation, token = invitation_for(tenant_a, "bea@beta.example", Role.READ_ONLY)
    assert "bea" not in A_staff_list(admin_a)
    account_before = snapshot(boss_b)
    b_membership_before = snapshot(Membership.objects.get(user=boss_b, tenant=tenant_b))

    # when B's admin, logged in, accepts
    person = APIClient()
    person.force_authenticate(boss_b)
    response = person.post(ACCEPT, {"token": token})

    # then they work for A too, with the same account, untouched; B's membership is as it was
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "bea"
    assert Membership.objects.get(user=boss_b, tenant=tenant_a).role == "read_only"
    assert snapshot(boss_b) == account_before
    assert snapshot(Membership.objects.get(user=boss_b, tenant=tenant_b)) == b_membership_before
    assert "bea" in A_staff_list(admin_a)


def test_a_password_sent_by_a_logged_in_person_is_refused_not_ignored(tenant_a: Tenant, boss_b: User) -> None:
    _invitation, token = invitation_for(tenant_a, "bea@beta.example")
    person = APIClient()
    person.force_authenticate(boss_b)
    before = people()

    response = person.post(ACCEPT, {"token": token, "password": "new-password-123"})

    assert response.status_code == 400
    assert response.json()["code"] == "password_not_applicable"
    assert list(response.json()["fields"]) == ["password"]
    assert people() == before


def test_a_member_accepting_again_is_409(tenant_a: Tenant, make_staff: Callable[..., User]) -> None:
    member = make_staff(tenant_a, Role.READ_ONLY)
    _, token = invitation_for(tenant_a, member.email, Role.ADMIN)
    person = APIClient()
    person.force_authenticate(member)
    before = people()

    response = person.post(ACCEPT, {"token": token})

    assert response.status_code == 409
    assert response.json()["code"] == "already_member"
    assert people() == before


def test_api_keys_cannot_accept(tenant_a: Tenant, key_client_for: Callable[..., APIClient]) -> None:
    _invitation, token = invitation_for(tenant_a)
    before = people()

    response = key_client_for(tenant_a, ["*"]).post(ACCEPT, {"token": token, "password": "olga-chose-this-1"})

    assert response.status_code == 403
    assert response.json()["message"] == "An invitation is accepted by the invited person, not by an API key."
    assert people() == before


@pytest.mark.parametrize(
    "spoil",
    [
        lambda inv, token: (Invitation.objects.filter(pk=inv.pk).update(revoked_at=timezone.now()), token)[1],
        lambda inv, token: (
            Invitation.objects.filter(pk=inv.pk).update(expires_at=timezone.now() - timedelta(seconds=1)),
            token,
        )[1],
        lambda inv, token: token[:-1] + ("0" if token[-1] != "0" else "1"),
        lambda inv, token: "nonsense",
        lambda inv, token: (Tenant.objects.filter(pk=inv.tenant_id).update(is_active=False), token)[1],
    ],
    ids=["revoked", "expired", "forged signature", "garbage", "tenant disabled"],
)
def test_dead_or_forged_tokens_are_404(tenant_a: Tenant, spoil: Callable[[Invitation, str], str]) -> None:
    invitation, token = invitation_for(tenant_a)
    token = spoil(invitation, token)
    before = people()

    response = APIClient().post(ACCEPT, {"token": token, "password": "olga-chose-this-1"})

    assert response.status_code == 404
    assert response.json()["code"] == "invitation_not_found"
    assert people() == before


def test_resend_replaces_the_link_and_revoke_kills_it(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    admin = client_for(tenant_a, Role.ADMIN)
    invitation, old_token = invitation_for(tenant_a)

    resent = admin.post(f"/api/v1/staff-invitations/{invitation.pk}/resend/")
    invitation.refresh_from_db()
    new_token = services.invitation_token(invitation)

    assert resent.status_code == 200
    assert new_token != old_token
    assert APIClient().post(ACCEPT, {"token": old_token, "password": "olga-chose-this-1"}).status_code == 404

    assert admin.delete(f"/api/v1/staff-invitations/{invitation.pk}/").status_code == 204
    assert APIClient().post(ACCEPT, {"token": new_token, "password": "olga-chose-this-1"}).status_code == 404
    assert not Membership.objects.filter(tenant=tenant_a, source=MembershipSource.INVITATION).exists()


def test_an_accepted_invitation_cannot_be_revoked(tenant_a: Tenant, client_for: Callable[..., APIClient]) -> None:
    invitation, token = invitation_for(tenant_a)
    services.invitation_accept(token=token, password="olga-chose-this-1")
    invitation.refresh_from_db()
    before = snapshot(invitation)

    response = client_for(tenant_a, Role.ADMIN).delete(f"/api/v1/staff-invitations/{invitation.pk}/")

    assert response.status_code == 409
    assert response.json()["code"] == "invitation_accepted"
    assert snapshot(invitation) == before


# --------------------------------------------------------------------------- what a tenant changes: its own row


def test_tenant_admin_changes_role_and_access_not_the_account(
    tenant_a: Tenant, client_for: Callable[..., APIClient], make_staff: Callable[..., User]
) -> None:
    person = make_staff(tenant_a, Role.OPERATIONS, username="olga", email="olga@alpha.example")
    membership = Membership.objects.get(user=person)
    account = snapshot(person)
    admin = client_for(tenant_a, Role.ADMIN)

    changed = admin.patch(f"/api/v1/staff-users/{membership.pk}/", {"role": "finance", "is_active": False})

    assert changed.status_code == 200, changed.content
    assert (changed.json()["role"], changed.json()["is_active"]) == ("finance", False)
    membership.refresh_from_db()
    assert (membership.role, membership.is_active) == ("finance", False)
    assert snapshot(person) == account  # the account itself (and its is_active) is untouched


@pytest.mark.parametrize(
    "body",
    [
        {"password": "new-password-123"},
        {"email": "evil@alpha.example"},
        {"first_name": "Renamed"},
        {"last_name": "Renamed"},
        {"username": "renamed"},
    ],
    ids=lambda body: next(iter(body)),
)
def test_account_fields_are_refused_by_name_never_ignored(
    tenant_a: Tenant, client_for: Callable[..., APIClient], make_staff: Callable[..., User], body: dict[str, str]
) -> None:
    # even for a person who works for this tenant alone: the account is theirs (it may join other tenants later,
    # and whoever set its password or reset address could then reach those too)
    person = make_staff(tenant_a, Role.OPERATIONS, username="olga", email="olga@alpha.example")
    membership = Membership.objects.get(user=person)
    before = (snapshot(person), snapshot(membership))

    response = client_for(tenant_a, Role.ADMIN).patch(f"/api/v1/staff-users/{membership.pk}/", body)

    assert response.status_code == 400
    assert list(response.json()["fields"]) == list(body)
    assert (snapshot(person), snapshot(membership)) == before


def test_put_with_the_unchanged_account_fields_is_fine(
    tenant_a: Tenant, client_for: Callable[..., APIClient], make_staff: Callable[..., User]
) -> None:
    person = make_staff(tenant_a, Role.OPERATIONS, username="olga", email="olga@alpha.example")
    membership = Membership.objects.get(user=person)
    admin = client_for(tenant_a, Role.ADMIN)
    body = admin.get(f"/api/v1/staff-users/{membership.pk}/").json()

    response = admin.put(
        f"/api/v1/staff-users/{membership.pk}/",
        {k: v for k, v in {**body, "role": "read_only"}.items() if k not in ("id", "source", "created_at")},
    )

    assert response.status_code == 200, response.content
    assert response.json()["role"] == "read_only"


def test_suspended_access_is_off_in_that_tenant_only(
    tenant_a: Tenant, tenant_b: Tenant, make_staff: Callable[..., User]
) -> None:
    person = make_staff(tenant_a, Role.ADMIN)
    Membership.objects.create(user=person, tenant=tenant_b, role=Role.READ_ONLY)
    services.membership_update(membership=Membership.objects.get(user=person, tenant=tenant_a), is_active=False)
    client = APIClient()
    client.force_authenticate(person)

    listed = client.get("/api/v1/tenants/")

    assert listed.status_code == 200
    assert [t["slug"] for t in listed.json()["results"]] == ["beta"]
    assert client.get(f"/api/v1/tenants/{tenant_a.pk}/").status_code == 404


def test_removing_a_shared_person_removes_only_this_tenants_access(
    tenant_a: Tenant, tenant_b: Tenant, client_for: Callable[..., APIClient], make_staff: Callable[..., User]
) -> None:
    person = make_staff(tenant_a, Role.OPERATIONS)
    in_b = Membership.objects.create(user=person, tenant=tenant_b, role=Role.ADMIN)
    before = (snapshot(person), snapshot(in_b))
    membership = Membership.objects.get(user=person, tenant=tenant_a)

    response = client_for(tenant_a, Role.ADMIN).delete(f"/api/v1/staff-users/{membership.pk}/")

    assert response.status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert (snapshot(person), snapshot(in_b)) == before  # still staff, still B's admin


def test_removing_the_last_membership_ends_admin_login(
    tenant_a: Tenant, client_for: Callable[..., APIClient], make_staff: Callable[..., User]
) -> None:
    person = make_staff(tenant_a, Role.OPERATIONS)
    membership = Membership.objects.get(user=person)

    assert client_for(tenant_a, Role.ADMIN).delete(f"/api/v1/staff-users/{membership.pk}/").status_code == 204

    person.refresh_from_db()
    assert not person.is_staff
    assert person.check_password("test-password")  # the account itself stays the person's


# --------------------------------------------------------------------------- the page behind the e-mail's link


def test_page_creates_the_account_and_logs_in(tenant_a: Tenant, client: Client) -> None:
    _, token = invitation_for(tenant_a, "olga@alpha.example", Role.OPERATIONS)

    page = client.get(f"/invitations/{token}/")
    posted = client.post(
        f"/invitations/{token}/",
        {"action": "create", "first_name": "Olga", "password1": "olga-chose-this-1", "password2": "olga-chose-this-1"},
    )

    assert page.status_code == 200
    assert b"Join Alpha Charge" in page.content
    assert b"olga@alpha.example" in page.content
    assert posted.status_code == 302
    assert posted["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200  # logged in as the new person
    assert Membership.objects.get(user__username="olga@alpha.example").role == "operations"


def test_page_accepts_with_an_existing_account(
    tenant_a: Tenant, tenant_b: Tenant, boss_b: User, client: Client
) -> None:
    _, token = invitation_for(tenant_a, "bea@beta.example", Role.READ_ONLY)
    account = snapshot(boss_b)

    wrong = client.post(f"/invitations/{token}/", {"action": "login", "username": "bea", "password": "guess"})
    assert wrong.status_code == 200
    assert b"Please enter a correct username and password" in wrong.content
    assert not Membership.objects.filter(user=boss_b, tenant=tenant_a).exists()

    right = client.post(f"/invitations/{token}/", {"action": "login", "username": "bea", "password": "test-password"})

    assert right.status_code == 302
    assert Membership.objects.get(user=boss_b, tenant=tenant_a).role == "read_only"
    assert {k: v for k, v in snapshot(boss_b).items() if k != "last_login"} == {
        k: v for k, v in account.items() if k != "last_login"
    }


def test_page_refuses_mismatched_passwords_and_dead_links(tenant_a: Tenant, client: Client) -> None:
    _, token = invitation_for(tenant_a)
    before = people()

    mismatch = client.post(
        f"/invitations/{token}/", {"action": "create", "password1": "olga-chose-this-1", "password2": "other-one-12"}
    )
    dead = client.get("/invitations/not-a-token/")

    assert mismatch.status_code == 200
    assert b"The two passwords differ." in mismatch.content
    assert dead.status_code == 404
    assert b"unknown, expired, revoked or already used" in dead.content
    assert people() == before


# --------------------------------------------------------------------------- the admin


def test_tenant_admin_cannot_attach_accounts_in_the_admin(
    tenant_a: Tenant, boss_b: User, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    before = people()

    add_page = client.get("/admin/tenants/membership/add/")
    added = client.post("/admin/tenants/membership/add/", {"user": boss_b.pk, "tenant": tenant_a.pk, "role": "admin"})

    assert (add_page.status_code, added.status_code) == (403, 403)
    assert people() == before


def test_tenant_admin_invites_in_the_admin(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    admin = make_staff(tenant_a, Role.ADMIN)
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/admin/tenants/invitation/add/", {"tenant": tenant_a.pk, "email": "olga@alpha.example", "role": "finance"}
        )

    assert response.status_code == 302, response.content
    invitation = Invitation.objects.get()
    assert (invitation.tenant, invitation.email, invitation.role, invitation.invited_by) == (
        tenant_a,
        "olga@alpha.example",
        "finance",
        admin,
    )
    assert len(callbacks) == 1


def test_tenant_admin_changes_role_and_access_in_the_admin(
    tenant_a: Tenant, boss_b: User, make_staff: Callable[..., User], client: Client
) -> None:
    person = make_staff(tenant_a, Role.OPERATIONS)
    membership = Membership.objects.get(user=person)
    account = snapshot(person)
    client.force_login(make_staff(tenant_a, Role.ADMIN))

    response = client.post(
        f"/admin/tenants/membership/{membership.pk}/change/",
        {"user": boss_b.pk, "tenant": tenant_a.pk, "role": "finance"},  # is_active unticked
    )

    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user, membership.role, membership.is_active) == (person, "finance", False)
    assert snapshot(person) == account
    assert not Membership.objects.filter(user=boss_b, tenant=tenant_a).exists()


def test_tenant_page_cannot_add_people_nor_disable_the_tenant(
    tenant_a: Tenant, boss_b: User, make_staff: Callable[..., User], client: Client
) -> None:
    client.force_login(make_staff(tenant_a, Role.ADMIN))
    before = (people(), snapshot(tenant_a))
    form = {
        "name": tenant_a.name,
        "slug": tenant_a.slug,
        "primary_colour": tenant_a.primary_colour,
        "secondary_colour": tenant_a.secondary_colour,
        "country": tenant_a.country,
        "currency": tenant_a.currency,
        "timezone": tenant_a.timezone,
        "language": tenant_a.language,
        "default_vat_rate": "19",
        "ocpi_country_code": tenant_a.ocpi_country_code,
        "ocpi_party_id": tenant_a.ocpi_party_id,
        "parking_grace_minutes": tenant_a.parking_grace_minutes,
        # is_active left out = unticked
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-0-user": boss_b.pk,
        "memberships-0-role": "admin",
    }

    page = client.get(f"/admin/tenants/tenant/{tenant_a.pk}/change/")
    response = client.post(f"/admin/tenants/tenant/{tenant_a.pk}/change/", form)

    assert page.status_code == 200
    assert b'name="is_active"' not in page.content
    assert b'name="memberships-0-user"' not in page.content
    assert response.status_code == 302
    assert people() == before[0]
    tenant_a.refresh_from_db()
    assert tenant_a.is_active


def test_superuser_grants_and_invites_in_the_admin(
    tenant_a: Tenant, boss_b: User, superuser: User, client: Client
) -> None:
    client.force_login(superuser)

    response = client.post(
        "/admin/tenants/membership/add/", {"user": boss_b.pk, "tenant": tenant_a.pk, "role": "admin"}
    )

    assert response.status_code == 302
    membership = Membership.objects.get(user=boss_b, tenant=tenant_a)
    assert (membership.role, membership.source) == ("admin", "platform")


def test_page_logged_in_accepts_only_as_that_account(tenant_a: Tenant, boss_b: User, client: Client) -> None:
    _, token = invitation_for(tenant_a, "bea@beta.example", Role.READ_ONLY)
    client.force_login(boss_b)
    before = people()

    page = client.get(f"/invitations/{token}/")
    other_way = client.post(
        f"/invitations/{token}/",
        {"action": "create", "password1": "olga-chose-this-1", "password2": "olga-chose-this-1"},
    )
    assert page.status_code == 200
    assert b"Accept as bea" in page.content
    assert other_way.status_code == 400
    assert b"You are logged in as bea" in other_way.content
    assert people() == before

    accepted = client.post(f"/invitations/{token}/", {"action": "accept"})

    assert accepted.status_code == 302
    assert Membership.objects.get(user=boss_b, tenant=tenant_a).role == "read_only"
