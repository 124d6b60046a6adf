"""History is never deleted by a delete (issue 12 item 5).

Walks every DELETE route of the API and every admin page (the URL resolver and the admin registry, like the
tenant-isolation walker, so routes and pages added later are covered) over a tenant with a full history
(tests/history_world.py), and checks in the database that:
- nothing sessions, CDRs, invoices or payments point to is deleted (409 `protected` naming the dependents, or a
  documented alternative), and not one history or audit row changes;
- audit rows cannot be added, edited or deleted through the admin or the API, by anyone (superusers included);
- every foreign key of a history row is PROTECT, so no other path (shell, a cascade from a parent) loses history;
- an object with nothing behind it can still be deleted.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.db import models
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.billing import services as billing_services
from apps.billing.models import Invoice, InvoiceEvent, InvoiceLine
from apps.core.deletion import dependents, ensure_deletable
from apps.core.errors import Conflict
from apps.core.models import AuditLog, History
from apps.ocpp.models import MessageLog
from apps.ocpp.tasks import purge_message_log
from apps.reports import services as report_services
from apps.reports.models import ExportJob, ExportStatus
from apps.sessions.models import ChargingSession
from apps.stations.models import ChargePoint, Location
from apps.tenants.models import ApiKey, Invitation, Tenant, User
from tests.billing.factories import draft_invoice
from tests.charging.factories import ChargingSessionFactory
from tests.history_world import World, build_world, history_models, history_snapshot, referenced_by_history
from tests.ocpp.factories import MessageLogFactory
from tests.registry import make_for, snapshot
from tests.stations.factories import ChargePointFactory, LocationFactory
from tests.walker import Route, api_routes

DELETE_ROUTES = [route for route in api_routes() if "delete" in route.actions]
AUDIT_MODELS = sorted((m for m in apps.get_models() if issubclass(m, AuditLog)), key=lambda m: m._meta.label)
ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)

# A DELETE that does not delete: the row stays, changed (documented on the route).
DELETE_IS_NOT_A_DELETE = {ApiKey: "revokes the key", Invitation: "revokes the invitation"}
# The only foreign keys of history rows that are not PROTECT, and the snapshot that keeps what they pointed at.
SET_NULL_WITH_SNAPSHOT = {(InvoiceEvent, "invoice"): "invoice_ref keeps the id of a deleted draft"}
# What deleting a draft invoice changes: the draft and its lines go, its events stay (their link cleared).
DRAFT_ROWS = ("billing.Invoice", "billing.InvoiceLine", "billing.InvoiceEvent")
# Admin models that history can never point to (kept out of the world on purpose).
ADMIN_WITHOUT_HISTORY = {
    "auth.Group": "permissions groups",
    "analytics.Dashboard": "a page, no rows",
    "search.GlobalSearch": "a page, no rows",
    "core.OutboxDelivery": "the event queue: delivered rows are purged by retention, never pointed to",
}


@pytest.fixture
def world(tenant_a: Tenant) -> World:
    return build_world(tenant_a)


@pytest.fixture
def root_api(superuser: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


@pytest.fixture
def root_admin(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


# --------------------------------------------------------------------------- the database rule


def test_every_foreign_key_of_a_history_row_is_protect() -> None:
    wrong = []
    for model in history_models():
        for field in model._meta.concrete_fields:
            if not field.is_relation:
                continue
            on_delete = field.remote_field.on_delete
            allowed = on_delete is models.PROTECT or (
                on_delete is models.SET_NULL and (model, field.name) in SET_NULL_WITH_SNAPSHOT
            )
            if not allowed:
                wrong.append(f"{model._meta.label}.{field.name}: {on_delete.__name__}")

    assert wrong == []


def test_every_model_history_points_to_is_protected_from_a_plain_orm_delete(world: World) -> None:
    """The shell, a management command or a cascade from a parent: `.delete()` itself refuses."""
    targets = {
        type(value)
        for value in vars(world).values()
        if isinstance(value, models.Model) and referenced_by_history(value) and not issubclass(type(value), History)
    }
    before = history_snapshot()

    for model in sorted(targets, key=lambda m: m._meta.label):
        obj = world.instance_of(model)
        with pytest.raises(models.ProtectedError):
            obj.delete()

    assert {m._meta.label for m in targets} >= {
        "stations.Location", "stations.ChargePoint", "stations.Evse", "stations.Connector", "customers.Token",
        "customers.Driver", "customers.BusinessCustomer", "customers.Contract", "customers.Vehicle",
        "tariffs.Tariff", "tenants.Tenant", "tenants.User", "tenants.ApiKey", "energy.GridNode",
    }  # fmt: skip
    assert history_snapshot() == before


# --------------------------------------------------------------------------- API: every DELETE route


@pytest.mark.parametrize("route", DELETE_ROUTES, ids=str)
def test_delete_route_never_deletes_history(route: Route, world: World, root_api: APIClient) -> None:
    # given the route's object in a tenant with a full history, as the most powerful caller
    obj = world.instance_of(route.model)
    referenced = referenced_by_history(obj)
    before_history = history_snapshot()
    before_obj = snapshot(obj)

    # when it is deleted
    response = root_api.delete(reverse(route.name, kwargs={"pk": obj.pk}))

    # then not one history row changed, whatever the answer
    assert history_snapshot() == before_history
    if not referenced:
        assert response.status_code in (204, 405, 409), response.content
        return
    # and what history points to is still there: refused, in the one error shape, naming the dependents
    assert type(obj)._base_manager.filter(pk=obj.pk).exists(), (referenced, response.status_code)
    if route.model in DELETE_IS_NOT_A_DELETE:
        assert response.status_code == 204
        return
    assert response.status_code in (405, 409), (response.status_code, response.content)
    assert snapshot(obj) == before_obj
    body = response.json()
    if isinstance(obj, History):  # history itself (an issued invoice): refused by its own rule
        assert body["code"] in ("invoice_not_draft", "method_not_allowed"), body
        assert body["message"]
    elif response.status_code == 409:
        assert body["code"] == "protected"
        assert re.match(rf"^.+ {obj.pk} has [\d,]+ .+\. It cannot be deleted", body["message"]), body["message"]
        assert body["fields"]["dependents"], body
        assert all(isinstance(n, int) and n > 0 for n in body["fields"]["dependents"].values())
    else:
        assert body["code"] == "method_not_allowed"


@pytest.mark.parametrize("route", DELETE_ROUTES, ids=str)
def test_delete_route_still_deletes_what_has_no_history(route: Route, tenant_b: Tenant, root_api: APIClient) -> None:
    obj = make_for(route.model, tenant_b)
    if route.model is Tenant:
        obj = Tenant.objects.create(name="Empty", slug="empty")
    draft = DRAFT_ROWS if route.model is Invoice else ()  # a draft invoice goes with its lines; its events stay
    before_history = history_snapshot(exclude=draft)

    response = root_api.delete(reverse(route.name, kwargs={"pk": obj.pk}))

    assert history_snapshot(exclude=draft) == before_history
    if draft:
        assert list(InvoiceEvent.objects.filter(invoice_ref=obj.pk).values_list("invoice_id", "action")) == [
            (None, "created"),
            (None, "deleted"),
        ]
    if response.status_code == 405:  # payments, payouts: money moves through domain actions only
        assert response.json()["code"] == "method_not_allowed"
        return
    assert response.status_code == 204, (response.status_code, response.content)
    exists = type(obj)._base_manager.filter(pk=obj.pk).exists()
    assert exists is (route.model in DELETE_IS_NOT_A_DELETE)


def test_location_with_history_is_refused_with_counts_and_the_way_out(world: World, root_api: APIClient) -> None:
    ChargePointFactory(tenant=world.tenant, location=world.location)  # a second charger, no sessions
    for _ in range(2):
        ChargingSessionFactory(charge_point=world.charge_point, location=world.location, connector_id=2)

    response = root_api.delete(f"/api/v1/locations/{world.location.pk}/")

    assert response.status_code == 409
    assert response.json() == {
        "code": "protected",
        "message": (
            f"Location {world.location.pk} has 3 charging sessions, 2 charge points, 1 building load reading, "
            "1 grid signal, 1 payment rule and 1 site recompute. "
            f"It cannot be deleted; decommission it instead (POST /api/v1/locations/{world.location.pk}/decommission/)."
        ),
        "fields": {
            "dependents": {
                "billing.paymentrule": 1,
                "charging.chargingsession": 3,
                "energy.buildingloadreading": 1,
                "energy.gridsignal": 1,
                "energy.siterecompute": 1,
                "stations.chargepoint": 2,
            },
            "instead": f"decommission it instead (POST /api/v1/locations/{world.location.pk}/decommission/)",
        },
    }
    assert Location.objects.filter(pk=world.location.pk, decommissioned_at__isnull=True).exists()
    assert ChargingSession.objects.filter(location=world.location).count() == 3


def test_dependents_are_counted_through_cascades(world: World) -> None:
    """A charge point's EVSE would cascade; the sessions on it are counted once, though they point at both."""
    counts = {model._meta.label: n for model, n in dependents(world.charge_point).items()}

    assert counts["charging.ChargingSession"] == 1
    assert counts["charging.MeterValue"] == 1
    assert counts["stations.Command"] == 1
    assert counts["ocpp.MessageLog"] == 1
    assert counts["energy.Allocation"] == 1
    with pytest.raises(Conflict) as refused:
        ensure_deletable(world.charge_point)
    assert refused.value.code == "protected"
    assert refused.value.status_code == 409


# --------------------------------------------------------------------------- admin: every page's delete paths


def _admin_url(model: type[models.Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=lambda v: getattr(v, "__name__", ""))
def test_admin_delete_paths_never_delete_history(
    model: type[models.Model], model_admin: admin.ModelAdmin[Any], world: World, root_admin: Client
) -> None:
    if model._meta.label in ADMIN_WITHOUT_HISTORY:
        pytest.skip(ADMIN_WITHOUT_HISTORY[model._meta.label])
    obj = world.instance_of(model)
    referenced = referenced_by_history(obj)
    before_history = history_snapshot()
    before_obj = snapshot(obj)

    # the delete view: the page, then the confirmation
    page = root_admin.get(_admin_url(model, "delete", obj.pk))
    confirmed = root_admin.post(_admin_url(model, "delete", obj.pk), {"post": "yes"})
    # the "delete selected" action of the changelist
    bulk = root_admin.post(
        _admin_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    )

    assert history_snapshot() == before_history
    if isinstance(obj, History) or referenced:
        assert snapshot(obj) == before_obj, (page.status_code, confirmed.status_code, bulk.status_code)
    if referenced and page.status_code == 200:
        content = page.content.decode()
        assert "Cannot delete" in content or "cannot delete" in content.lower(), content[:2000]
        assert re.search(rf"{obj.pk} has [\d,]+ ", content), "the page names what depends on it"
    if isinstance(obj, History):
        assert page.status_code == 403  # no delete permission for history rows, superusers included
        assert confirmed.status_code == 403


INLINES = sorted(
    (
        (parent_model, inline_class)
        for parent_model, parent_admin in admin.site._registry.items()
        for inline_class in parent_admin.inlines
        if inline_class.can_delete
    ),
    key=lambda pair: (pair[0]._meta.label, pair[1].__name__),
)


@pytest.mark.parametrize(("parent_model", "inline_class"), INLINES, ids=lambda v: getattr(v, "__name__", ""))
def test_admin_inline_deletes_never_delete_history(
    parent_model: type[models.Model], inline_class: type[Any], world: World, superuser: User
) -> None:
    # given a parent page whose inline lists rows, every one ticked for deletion
    model_admin = admin.site._registry[parent_model]
    parent = world.instance_of(parent_model)
    request = RequestFactory().post("/")
    request.user = superuser
    formset_class = next(f for f, inline in model_admin.get_formsets_with_inlines(request, parent)
                         if type(inline) is inline_class)  # fmt: skip
    prefix = formset_class.get_default_prefix()
    unbound = formset_class(instance=parent, prefix=prefix)
    rows = list(unbound.get_queryset())
    assert rows, f"tests/history_world.py: give {parent_model.__name__} a {inline_class.model.__name__} row"
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(len(rows))}
    for index, form in enumerate(unbound.forms):
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            data[f"{prefix}-{index}-{name}"] = "" if value is None else getattr(value, "pk", value)
        data[f"{prefix}-{index}-DELETE"] = "on"
    protected = [row for row in rows if referenced_by_history(row)]
    before = history_snapshot()

    # when the page is validated (and, when valid, saved)
    bound = formset_class(data, instance=parent, prefix=prefix)
    valid = bound.is_valid()
    if valid and not protected:
        bound.save()

    # then rows history points to are refused, naming what depends on them, and no history row changed
    assert history_snapshot() == before
    if protected:
        assert not valid
        errors = " ".join(str(e) for e in bound.non_form_errors())
        assert re.search(r" has [\d,]+ .+ It cannot be deleted\.", errors), errors
        assert all(type(row)._base_manager.filter(pk=row.pk).exists() for row in rows)


# --------------------------------------------------------------------------- audit rows are read-only


def _inlines_of(audit_model: type[models.Model]) -> list[tuple[admin.ModelAdmin[Any], InlineModelAdmin[Any, Any]]]:
    found = []
    for parent_model, parent_admin in admin.site._registry.items():
        for inline_class in parent_admin.inlines:
            if inline_class.model is audit_model:
                found.append((parent_admin, inline_class(parent_model, admin.site)))
    return found


@pytest.mark.parametrize("model", AUDIT_MODELS, ids=lambda m: m._meta.label)
def test_audit_rows_are_read_only_in_the_admin_for_superusers(
    model: type[models.Model], world: World, superuser: User, root_admin: Client
) -> None:
    obj = world.instance_of(model)
    request = RequestFactory().get("/")
    request.user = superuser
    before = history_snapshot()

    model_admin = admin.site._registry.get(model)
    if model_admin is not None:
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request, obj)
        assert not model_admin.has_delete_permission(request, obj)
        assert "delete_selected" not in model_admin.get_actions(request)
        change = root_admin.get(_admin_url(model, "change", obj.pk))
        assert change.status_code == 200
        assert 'name="_save"' not in change.content.decode()
        assert "deletelink" not in change.content.decode()
        assert root_admin.get(_admin_url(model, "add")).status_code == 403
        assert root_admin.post(_admin_url(model, "change", obj.pk), {}).status_code == 403
        assert root_admin.post(_admin_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    for _parent, inline in _inlines_of(model):
        assert not inline.has_add_permission(request, None), inline
        assert not inline.has_change_permission(request, None), inline
        assert not inline.has_delete_permission(request, None), inline
        assert not inline.can_delete, inline

    assert history_snapshot() == before


def test_every_audit_model_shown_in_the_admin_is_covered() -> None:
    shown = {m for m in AUDIT_MODELS if m in admin.site._registry or _inlines_of(m)}

    assert {m._meta.label for m in shown} >= {
        "stations.Command", "stations.CommandEvent", "ocpp.MessageLog", "charging.SessionEvent",
        "charging.TransactionAnomaly", "billing.InvoiceEvent", "billing.PaymentEvent", "analytics.WebhookDelivery",
        "analytics.DeliveryAttempt", "energy.GridSignal", "energy.BuildingLoadReading",
    }  # fmt: skip


@pytest.mark.parametrize("route", [r for r in api_routes() if issubclass(r.model, AuditLog)], ids=str)
def test_audit_rows_cannot_be_changed_or_deleted_through_the_api(
    route: Route, world: World, root_api: APIClient
) -> None:
    assert not {"put", "patch", "delete"} & set(route.actions), route.actions
    if not route.detail or "get" not in route.actions:
        return
    obj = world.instance_of(route.model)
    before = history_snapshot()
    url = reverse(route.name, kwargs={"pk": obj.pk})

    answers = [root_api.put(url, {}, format="json"), root_api.patch(url, {}, format="json"), root_api.delete(url)]

    assert [a.status_code for a in answers] == [405, 405, 405]
    assert history_snapshot() == before


# --------------------------------------------------------------------------- retention jobs still work


def test_retention_jobs_delete_old_audit_rows_and_nothing_else(world: World, settings: Any) -> None:
    settings.OCPP_MESSAGE_LOG_RETENTION_DAYS = 30
    old = MessageLogFactory(
        charge_point=world.charge_point, tenant=world.tenant, created_at=timezone.now() - dt.timedelta(days=31)
    )
    expired = ExportJob.objects.create(
        tenant=world.tenant, status=ExportStatus.FAILED, expires_at=timezone.now() - dt.timedelta(days=1)
    )
    ExportJob.objects.filter(pk=expired.pk).update(created_at=timezone.now() - dt.timedelta(days=60))

    purged_frames = purge_message_log()
    report_services.export_jobs_purge()

    assert purged_frames == 1
    assert not MessageLog.objects.filter(pk=old.pk).exists()
    assert MessageLog.objects.filter(pk=world.message_log.pk).exists()
    assert not ExportJob.objects.filter(pk=expired.pk).exists()
    assert ChargePoint.objects.filter(pk=world.charge_point.pk).exists()


# --------------------------------------------------------------------------- a draft invoice keeps its audit trail


def test_deleting_a_draft_keeps_its_audit_events(tenant_a: Tenant, make_staff: Callable[..., User]) -> None:
    invoice = draft_invoice(tenant_a)
    actor = make_staff(tenant_a)
    pk = invoice.pk

    billing_services.invoice_delete_draft(invoice=invoice, actor=actor)

    assert not Invoice.objects.filter(pk=pk).exists()
    assert not InvoiceLine.objects.filter(invoice_id=pk).exists()
    events = list(InvoiceEvent.objects.filter(invoice_ref=pk).order_by("pk").values("invoice_id", "action", "actor"))
    assert events == [
        {"invoice_id": None, "action": "created", "actor": None},
        {"invoice_id": None, "action": "deleted", "actor": actor.pk},
    ]
    assert InvoiceEvent.objects.get(invoice_ref=pk, action="deleted").detail["lines"] == 1


def test_a_location_without_history_is_deleted(root_api: APIClient, tenant_a: Tenant) -> None:
    location = LocationFactory(tenant=tenant_a)

    response = root_api.delete(f"/api/v1/locations/{location.pk}/")

    assert response.status_code == 204
    assert not Location.objects.filter(pk=location.pk).exists()


def test_the_admin_deletes_a_draft_through_the_service_and_keeps_its_events(
    tenant_a: Tenant, make_staff: Callable[..., User], client: Client
) -> None:
    draft = draft_invoice(tenant_a)
    finance = make_staff(tenant_a, "finance")
    client.force_login(finance)

    page = client.get(_admin_url(Invoice, "delete", draft.pk))
    confirmed = client.post(_admin_url(Invoice, "delete", draft.pk), {"post": "yes"})

    assert page.status_code == 200
    assert confirmed.status_code == 302
    assert not Invoice.objects.filter(pk=draft.pk).exists()
    assert list(InvoiceEvent.objects.filter(invoice_ref=draft.pk).values_list("action", "actor")) == [
        ("created", None),
        ("deleted", finance.pk),
    ]
