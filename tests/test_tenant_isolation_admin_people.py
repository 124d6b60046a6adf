"""A staff user of tenant A, of every role, opens and posts every admin page aiming at tenant B's people, and B's
people, their passwords and every membership that concerns B stay as they were. A file of its own (the helpers are
tests/test_tenant_isolation.py's) so that it runs beside the API half on the other worker."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from apps.tenants.models import Invitation, Membership, Role, Tenant, User
from tests.registry import MAKERS, make_for
from tests.test_tenant_isolation import LeakCheck, PeopleOfB, admin_probes, form_data, people_b, people_state
from tests.walker import registered_admins

__all__ = ["people_b"]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATIONS, Role.FINANCE, Role.READ_ONLY])
def test_no_admin_page_reaches_another_tenants_people(
    role: str,
    tenant_a: Tenant,
    tenant_b: Tenant,
    people_b: PeopleOfB,
    make_staff: Callable[..., User],
    client: Any,
) -> None:
    # given B's people, and a staff user of A with this role in the admin
    before = people_state(people_b, tenant_b)
    staff = make_staff(tenant_a, role)
    client.force_login(staff)
    boss = people_b.boss
    own_membership = Membership.objects.get(user=people_b.shared, tenant=tenant_a)
    check = LeakCheck(people_b)

    def visit(method: str, url: str, data: dict[str, Any] | None = None) -> None:
        # a redirect is followed, so what it leads to (and a message it leaves) counts for this request
        response = client.get(url, data) if method == "get" else client.post(url, data or {}, follow=True)
        assert response.status_code < 500, (method, url, data, response.status_code)
        check(response, json.dumps(data or {}, default=str), f"{method} {url} {data}")

    # when they open and post every admin page, aiming at B's people
    for model, _ in registered_admins():
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        visit("get", reverse(f"{info}_changelist"))
        visit("get", reverse(f"{info}_changelist"), {"q": boss.username})
        visit("get", reverse(f"{info}_changelist"), {"q": people_b.mailee.email})
        visit("get", reverse(f"{info}_changelist"), {"user__id__exact": boss.pk})
        visit("get", reverse(f"{info}_add"))
        for probe in admin_probes(people_b, tenant_a):
            visit("post", reverse(f"{info}_add"), probe)
        if model is User:
            targets: list[Any] = [boss]
        elif model is Membership:
            targets = [own_membership]
        elif model in MAKERS:
            targets = [make_for(model, tenant_a)]
        else:
            targets = []
        for obj in targets:
            change = reverse(f"{info}_change", args=[obj.pk])
            visit("get", change)
            for probe in admin_probes(people_b, tenant_a):
                visit("post", change, {**form_data(obj), **probe})
        for name in ("user", "created_by", "requested_by", "acknowledged_by", "actor", "invited_by"):
            field = next((f for f in model._meta.get_fields() if f.name == name and f.is_relation), None)
            if field is not None:
                visit(
                    "get",
                    reverse("admin:autocomplete"),
                    {
                        "app_label": model._meta.app_label,
                        "model_name": model._meta.model_name,
                        "field_name": name,
                        "term": "bq",
                    },
                )
    # ... the tenant page with a membership row for B's admin, and the membership actions
    tenant_form = form_data(tenant_a)
    visit(
        "post",
        reverse("admin:tenants_tenant_change", args=[tenant_a.pk]),
        {
            **tenant_form,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": boss.pk,
            "memberships-0-role": "admin",
            "memberships-0-tenant": tenant_a.pk,
        },
    )
    # ... and every action of the people pages, on A's own rows and B's
    b_rows = {Membership: [Membership.objects.get(user=boss).pk], Invitation: [people_b.invited.pk], User: [boss.pk]}
    for model in (Membership, Invitation, User):
        model_admin = admin.site._registry[model]
        own = [own_membership.pk] if model is Membership else [make_for(model, tenant_a).pk] if model in MAKERS else []
        for _, name, _ in model_admin._get_base_actions():  # type: ignore[attr-defined]
            visit(
                "post",
                reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
                {"action": name, "_selected_action": [*own, *b_rows[model]], "post": "yes"},
            )

    # then B's people, their passwords and every membership that concerns B are exactly as before
    assert people_state(people_b, tenant_b) == before
