"""OIDC claims map to tenant memberships and roles, re-synced at every login."""

from __future__ import annotations

import pytest

from apps.tenants import services
from apps.tenants.models import Membership, Role, Tenant, User
from apps.tenants.oidc import TenantOIDCBackend, roles_from_claims
from tests.tenants.factories import invitation_for


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"tenants": ["alpha"], "roles": ["operations"]}, {"alpha": "operations"}),
        ({"tenants": ["alpha", "beta"], "roles": ["read_only", "finance"]}, {"alpha": "finance", "beta": "finance"}),
        ({"tenants": "alpha", "roles": "admin"}, {"alpha": "admin"}),
        ({"tenants": {"alpha": "admin", "beta": "read_only"}}, {"alpha": "admin", "beta": "read_only"}),
        ({"tenants": {"alpha": "superuser"}}, {}),
        ({"tenants": ["alpha"], "roles": ["god"]}, {}),
        ({"tenants": ["alpha"]}, {}),
        ({}, {}),
    ],
)
def test_roles_from_claims(claims: dict[str, object], expected: dict[str, str]) -> None:
    assert roles_from_claims(claims) == expected


def test_first_login_creates_user_with_claimed_roles(tenant_a: Tenant, tenant_b: Tenant) -> None:
    backend = TenantOIDCBackend()

    user = backend.create_user(
        {
            "sub": "kc-123",
            "preferred_username": "maria",
            "email": "maria@alpha.example",
            "tenants": {"alpha": "operations", "nope": "admin"},
        }
    )

    assert user.username == "maria"
    assert user.is_staff
    assert not user.has_usable_password()
    assert list(user.memberships.values_list("tenant__slug", "role")) == [("alpha", "operations")]


def test_next_login_resyncs_roles(tenant_a: Tenant, tenant_b: Tenant) -> None:
    backend = TenantOIDCBackend()
    user = backend.create_user({"sub": "kc-9", "preferred_username": "li", "tenants": ["alpha"], "roles": ["admin"]})

    backend.update_user(user, {"sub": "kc-9", "tenants": ["beta"], "roles": ["read_only"]})
    assert set(user.memberships.values_list("tenant__slug", "role")) == {("beta", "read_only")}

    backend.update_user(user, {"sub": "kc-9", "tenants": []})
    user.refresh_from_db()
    assert not Membership.objects.filter(user=user).exists()
    assert not user.is_staff


def test_users_are_matched_by_subject_not_username(tenant_a: Tenant) -> None:
    User.objects.create_user(username="maria", password="local-password-1")
    backend = TenantOIDCBackend()

    assert not backend.filter_users_by_claims({"sub": "kc-1", "preferred_username": "maria"}).exists()
    created = backend.create_user(
        {"sub": "kc-1", "preferred_username": "maria", "tenants": ["alpha"], "roles": [Role.FINANCE]}
    )
    assert created.username == "maria-2"
    assert backend.filter_users_by_claims({"sub": "kc-1"}).get() == created


def test_login_keeps_the_memberships_the_person_accepted_by_invitation(tenant_a: Tenant, tenant_b: Tenant) -> None:
    # given an OIDC person whose claims give them alpha, and who accepted beta's invitation
    backend = TenantOIDCBackend()
    user = backend.create_user({"sub": "kc-5", "preferred_username": "ines", "tenants": ["alpha"], "roles": ["admin"]})
    _, token = invitation_for(tenant_b, "ines@example.com", Role.FINANCE)
    services.invitation_accept(token=token, user=user)

    # when the claims no longer name any tenant
    backend.update_user(user, {"sub": "kc-5", "tenants": []})

    # then the claimed access is gone, the accepted one stays (beta removes it when it wants to)
    user.refresh_from_db()
    assert set(user.memberships.values_list("tenant__slug", "role", "source")) == {("beta", "finance", "invitation")}
    assert user.is_staff


def test_a_claim_takes_over_an_invited_membership(tenant_a: Tenant) -> None:
    backend = TenantOIDCBackend()
    user = backend.create_user({"sub": "kc-6", "preferred_username": "jo", "tenants": []})
    _, token = invitation_for(tenant_a, "jo@example.com", Role.READ_ONLY)
    services.invitation_accept(token=token, user=user)

    backend.update_user(user, {"sub": "kc-6", "tenants": {"alpha": "operations"}})
    assert list(user.memberships.values_list("role", "source")) == [("operations", "oidc")]

    backend.update_user(user, {"sub": "kc-6", "tenants": {}})
    assert not user.memberships.exists()


def test_a_suspension_survives_the_next_login(tenant_a: Tenant) -> None:
    backend = TenantOIDCBackend()
    user = backend.create_user({"sub": "kc-7", "preferred_username": "kim", "tenants": {"alpha": "admin"}})
    services.membership_update(membership=user.memberships.get(), is_active=False)

    backend.update_user(user, {"sub": "kc-7", "tenants": {"alpha": "admin"}})

    assert list(user.memberships.values_list("role", "is_active")) == [("admin", False)]
