from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.tenants import services
from apps.tenants.models import ApiKey, Invitation, Membership, Role, Tenant, User


class TenantFactory(DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name} GmbH")
    city = "Berlin"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.django.Password("test-password")


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.ADMIN


def api_key_for(tenant: Tenant, scopes: list[str] | None = None, name: str | None = None) -> tuple[ApiKey, str]:
    """A real key through the service, so its hash and format are the production ones."""
    return services.api_key_create(
        tenant=tenant, name=name or f"key-{ApiKey.objects.count() + 1}", scopes=scopes if scopes is not None else ["*"]
    )


class ApiKeyFactory(DjangoModelFactory[ApiKey]):
    """For rows only; use `api_key_for` when a usable secret is needed."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"integration {n}")
    prefix = factory.Sequence(lambda n: f"f{n:07x}")
    key_hash = factory.Sequence(lambda n: f"{n:064x}")
    scopes = factory.LazyFunction(lambda: ["stations:read"])


def invitation_for(
    tenant: Tenant, email: str = "new.person@example.com", role: str = Role.OPERATIONS
) -> tuple[Invitation, str]:
    """A real invitation through the service, with the token its e-mail carries."""
    invitation = services.invitation_create(tenant=tenant, email=email, role=role)
    return invitation, services.invitation_token(invitation)


class InvitationFactory(DjangoModelFactory[Invitation]):
    """For rows only; use `invitation_for` when the token is needed."""

    class Meta:
        model = Invitation

    tenant = factory.SubFactory(TenantFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.READ_ONLY
    key = factory.Sequence(lambda n: f"k{n:015x}")
    nonce = factory.Sequence(lambda n: f"{n:032x}")
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
