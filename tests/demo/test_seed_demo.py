from __future__ import annotations

from io import StringIO

from django.core.management import call_command
from rest_framework.test import APIClient

from apps.tenants.models import ApiKey, Membership, Role, Tenant, User


def counts() -> tuple[int, int, int, int]:
    return Tenant.objects.count(), User.objects.count(), Membership.objects.count(), ApiKey.objects.count()


def test_seed_demo_is_idempotent_and_usable(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    first = counts()
    call_command("seed_demo", stdout=StringIO())

    assert counts() == first
    assert first[0] == 2
    for slug in ("voltnet", "fjord"):
        roles = set(Membership.objects.filter(tenant__slug=slug).values_list("role", flat=True))
        assert roles == {r.value for r in Role}
    key_line = next(line for line in out.getvalue().splitlines() if "evp_voltnetdemo_" in line)
    response = APIClient().get("/api/v1/tenants/", HTTP_AUTHORIZATION=f"Api-Key {key_line.split()[-1]}")
    assert [t["slug"] for t in response.json()["results"]] == ["voltnet"]
    assert User.objects.get(username="voltnet-ops").check_password("demo-password")
