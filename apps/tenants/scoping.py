"""Tenant scoping for every API view and admin page, in one place.

Who may see what:
- platform superusers see every tenant;
- staff users see the tenants they have a membership in, and may write where their role allows;
- an API key sees its own tenant, with the read/write scopes it was given.

Views and admin classes of every app build on `TenantScopedViewSet` / `TenantScopedAdmin`, so a caller of
tenant A gets 404 for tenant B's objects everywhere, without each app re-implementing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils.functional import Promise
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.admin import protect_inline_deletes, refuse_protected
from apps.core.admin_display import label_formfield
from apps.core.api.serializers import ErrorSerializer, StrictModelSerializer
from apps.core.deletion import ensure_deletable
from apps.core.models import AuditLog, History
from apps.tenants.access import DEFAULT_WRITE_ROLES, NO_ACCESS, Access, access_for, scope_queryset
from apps.tenants.models import Tenant, User
from apps.tenants.permissions import TenantRolePermission

__all__ = [
    "Access",
    "ScopedRelatedField",
    "TenantField",
    "TenantOwnedSerializer",
    "TenantRolePermission",
    "TenantScopedAdmin",
    "TenantScopedGenericViewSet",
    "TenantScopedViewSet",
    "access_for",
    "scope_queryset",
]

# --------------------------------------------------------------------------- API


class CallerTenantDefault:
    """Default of the tenant field: the caller's only writable tenant (else the field is required)."""

    requires_context = True

    def __call__(self, field: serializers.Field) -> Tenant:  # type: ignore[type-arg]
        access: Access = field.context.get("access", NO_ACCESS)
        ids = access.writable_tenant_ids(field.context.get("write_roles", DEFAULT_WRITE_ROLES))
        if ids is not None and len(ids) == 1:
            return Tenant.objects.get(pk=next(iter(ids)))
        raise serializers.ValidationError("This field is required when you can write to several tenants.")

    def __repr__(self) -> str:
        return "CallerTenantDefault()"


class TenantField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """The owning tenant: defaults to the caller's tenant when there is only one; fixed after creation."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default", CallerTenantDefault())
        kwargs.setdefault("help_text", "Owning tenant; defaults to the caller's tenant when there is only one.")
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Tenant]:
        access: Access = self.context.get("access", NO_ACCESS)
        write_roles = self.context.get("write_roles", DEFAULT_WRITE_ROLES)
        ids = access.writable_tenant_ids(write_roles)
        queryset = Tenant.objects.all()
        return queryset if ids is None else queryset.filter(pk__in=ids)


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):  # type: ignore[type-arg]
    """A foreign key to another tenant-owned row: only rows of the caller's tenants are valid choices."""

    def __init__(self, *, tenant_field: str = "tenant", **kwargs: Any) -> None:
        self.tenant_field = tenant_field
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        assert queryset is not None
        return scope_queryset(queryset, self.context.get("access", NO_ACCESS), self.tenant_field)


class TenantOwnedSerializer(StrictModelSerializer):
    """Base serializer of tenant-owned rows: the tenant cannot be changed once set."""

    tenant = TenantField()

    def validate_tenant(self, value: Tenant) -> Tenant:
        if self.instance is not None and value.pk != self.instance.tenant_id:
            raise serializers.ValidationError("An object cannot be moved to another tenant.")
        return value


PROTECTED_DELETE_RESPONSES: dict[int, Any] = {
    204: OpenApiResponse(description="Deleted: nothing depended on it."),
    409: OpenApiResponse(
        ErrorSerializer,
        description=(
            "`protected`: history or other rows depend on it (charging sessions, CDRs, invoices, payments, audit "
            "logs, ...), so nothing was deleted. The message names them, `fields.dependents` counts them per kind "
            '(`{"charging.chargingsession": 338, "stations.chargepoint": 2}`) and `fields.instead` says what to '
            "do instead (e.g. decommission, deactivate)."
        ),
    ),
}


class TenantScopedGenericViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """The scoping of every API viewset; compose it with DRF's mixins for viewsets that offer less than CRUD
    (an operation a viewset does not offer is then not routed at all, rather than routed to a 405)."""

    tenant_field: ClassVar[str] = "tenant"
    scope_area: ClassVar[str]
    write_roles: ClassVar[tuple[str, ...]] = DEFAULT_WRITE_ROLES
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    delete_instead: ClassVar[str] = ""

    @property
    def access(self) -> Access:
        return access_for(self.request)

    def get_queryset(self) -> QuerySet[Any]:
        return scope_queryset(super().get_queryset(), self.access, self.tenant_field)

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        context["access"] = self.access
        context["write_roles"] = self.write_roles
        return context

    def object_tenant_id(self, obj: models.Model) -> int | None:
        value: Any = obj
        for part in self.tenant_field.split("__"):
            value = getattr(value, part)
        return value if isinstance(value, int) else getattr(value, "pk", None)

    def resolve_tenant(self, tenant: Tenant | None) -> Tenant:
        """The tenant a new object goes to: the one given, or the caller's only writable tenant."""
        if tenant is not None:
            return tenant
        ids = self.access.writable_tenant_ids(self.write_roles)
        if ids is not None and len(ids) == 1:
            return Tenant.objects.get(pk=next(iter(ids)))
        raise serializers.ValidationError({"tenant": ["This field is required when you can write to several tenants."]})

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        tenant = self.resolve_tenant(serializer.validated_data.get("tenant"))  # type: ignore[union-attr]
        serializer.save(tenant=tenant)

    def delete_instead_for(self, instance: Any) -> str:
        return self.delete_instead


class ProtectedDestroyModelMixin(mixins.DestroyModelMixin):
    """DELETE removes only what nothing depends on: an object that history (sessions, CDRs, invoices, payments,
    audit logs) or other rows point to is refused with 409 `protected` (see `apps.core.deletion`), whatever the
    caller's role; `delete_instead` is the advice given in that answer. Every tenant-scoped viewset that offers
    DELETE composes this mixin rather than DRF's."""

    @extend_schema(responses=PROTECTED_DELETE_RESPONSES)
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: Any) -> None:
        ensure_deletable(instance, instead=self.delete_instead_for(instance))  # type: ignore[attr-defined]
        super().perform_destroy(instance)  # type: ignore[misc]


class TenantScopedViewSet(
    TenantScopedGenericViewSet,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    ProtectedDestroyModelMixin,
    mixins.ListModelMixin,
):
    """CRUD over a tenant-owned model, scoped to the caller's tenants (DELETE as `ProtectedDestroyModelMixin`)."""


def call_validated(service: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a service; model validation errors become API validation errors (`__all__` -> `non_field_errors`)."""
    try:
        return service(**kwargs)
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        raise serializers.ValidationError(
            {("non_field_errors" if k == NON_FIELD_ERRORS else k): v for k, v in detail.items()}
        ) from exc


class ServiceViewSet(TenantScopedViewSet):
    """CRUD whose writes go through the app's services, so the API and the admin share the same rules.

    `create_service(tenant=..., **fields)`, `update_service(<instance_kwarg>=instance, **fields)` and, when set,
    `delete_service(<instance_kwarg>=instance)`; without a delete service the row is deleted plainly."""

    create_service: ClassVar[Callable[..., Any]]
    update_service: ClassVar[Callable[..., Any]]
    delete_service: ClassVar[Callable[..., Any] | None] = None
    instance_kwarg: ClassVar[str]

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        tenant = self.resolve_tenant(data.pop("tenant", None))
        serializer.instance = call_validated(type(self).create_service, tenant=tenant, **data)

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        data: dict[str, Any] = dict(serializer.validated_data)  # type: ignore[arg-type]
        data.pop("tenant", None)  # cannot change (TenantOwnedSerializer)
        serializer.instance = call_validated(
            type(self).update_service, **{self.instance_kwarg: serializer.instance}, **data
        )

    def perform_destroy(self, instance: Any) -> None:
        delete = type(self).delete_service
        if delete is None:
            super().perform_destroy(instance)
        else:
            ensure_deletable(instance, instead=self.delete_instead_for(instance))
            delete(**{self.instance_kwarg: instance})


# --------------------------------------------------------------------------- admin


ChangelistSearch = Callable[[HttpRequest, QuerySet[Any], str], tuple[QuerySet[Any], bool]]

# model label (`app_label.modelname`) -> the search behind that model's changelist search box. Registered by the
# search app (layer 4, `apps/search/admin.py`), which owns the indexes; models without an entry keep Django's
# `search_fields` search.
CHANGELIST_SEARCH: dict[str, ChangelistSearch] = {}


class TenantScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Admin pages scoped to the staff user's tenants; permissions follow the tenant role.

    History is never deleted here: audit logs (`core.models.AuditLog`) are read-only for everyone, superusers
    included; other history rows (`core.models.History`) are never deleted; and the delete view, the "delete
    selected" action and inline deletes refuse any object something depends on, naming the dependents
    (`delete_instead` is the advice shown with them)."""

    tenant_field: ClassVar[str] = "tenant"
    write_roles: ClassVar[tuple[str, ...]] = DEFAULT_WRITE_ROLES
    delete_instead: ClassVar[str | Promise] = ""  # in the console's language when shown

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope_queryset(super().get_queryset(request), access_for(request), self.tenant_field)

    def _one_tenant(self, request: HttpRequest) -> bool:
        tenant_ids = access_for(request).tenant_ids
        return tenant_ids is not None and len(tenant_ids) == 1

    def get_list_display(self, request: HttpRequest) -> Any:
        """Staff of one tenant do not get a tenant column: every row is theirs, and the room goes to the data."""
        columns = list(super().get_list_display(request))
        if self._one_tenant(request) and len(columns) > 1:
            columns = [column for column in columns if column != "tenant"]
        return columns

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """The indexed search (`CHANGELIST_SEARCH`) where the search app registered one, else `search_fields`."""
        backend = CHANGELIST_SEARCH.get(self.model._meta.label_lower)
        if backend is not None and search_term.strip():
            return backend(request, queryset, search_term)
        return super().get_search_results(request, queryset, search_term)

    def get_list_filter(self, request: HttpRequest) -> Any:
        """Filters on foreign keys offer only the values present in the caller's rows, never other tenants'
        names (a plain related filter lists every row of the related table); no tenant filter for staff of one
        tenant."""
        filters = []
        for entry in super().get_list_filter(request):
            if entry == "tenant" and self._one_tenant(request):
                continue
            if isinstance(entry, str) and not access_for(request).is_superuser:
                try:
                    field = get_fields_from_path(self.model, entry)[-1]
                except FieldDoesNotExist:
                    field = None
                if field is not None and field.is_relation:
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            filters.append(entry)
        return filters

    def _object_tenant_id(self, obj: models.Model) -> int | None:
        value: Any = obj
        for part in self.tenant_field.split("__"):
            value = getattr(value, part, None)
        return value if isinstance(value, int) or value is None else getattr(value, "pk", None)

    def has_module_permission(self, request: HttpRequest) -> bool:
        access = access_for(request)
        return access.is_superuser or bool(access.roles)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        access = access_for(request)
        if obj is None:
            return access.is_superuser or bool(access.roles)
        tenant_id = self._object_tenant_id(obj)
        return access.is_superuser or (tenant_id is not None and access.can_read(tenant_id))

    def _can_write(self, request: HttpRequest, obj: Any) -> bool:
        access = access_for(request)
        if obj is None:
            ids = access.writable_tenant_ids(self.write_roles)
            return ids is None or bool(ids)
        tenant_id = self._object_tenant_id(obj)
        return access.is_superuser or (tenant_id is not None and access.can_write(tenant_id, self.write_roles))

    @property
    def is_audit_log(self) -> bool:
        return issubclass(self.model, AuditLog)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return not self.is_audit_log and self._can_write(request, None)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self.is_audit_log and self._can_write(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not issubclass(self.model, History) and self._can_write(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        refused = refuse_protected(objs, instead=str(self.delete_instead))
        return refused if refused is not None else super().get_deleted_objects(objs, request)

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            yield protect_inline_deletes(formset), inline

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return label_formfield(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        access = access_for(request)
        related = db_field.remote_field.model
        if related is Tenant:
            ids = access.writable_tenant_ids(self.write_roles)
            if ids is not None:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
        elif related is User and access.tenant_ids is not None:
            # never list other tenants' people: only those who work for one of the caller's tenants
            kwargs["queryset"] = User.objects.filter(memberships__tenant__in=access.tenant_ids).distinct()
        elif any(f.name == "tenant" for f in related._meta.get_fields()) and access.tenant_ids is not None:
            kwargs["queryset"] = related._default_manager.filter(tenant__in=access.tenant_ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: Any = None,
    ) -> Any:  # fmt: skip
        """A page with nothing to edit (every field read-only, no inline row to add, change or delete) offers no
        Save button: changes to such rows go through actions and services, and a Save that saves nothing misleads."""
        adminform = context.get("adminform")
        if change and adminform is not None and not adminform.form.fields:
            editable_inline = any(
                formset.has_add_permission or formset.has_change_permission or formset.formset.can_delete
                for formset in context.get("inline_admin_formsets", [])
            )
            if not editable_inline:
                context.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _ensure_visible(self, request: HttpRequest, object_id: str | None) -> None:
        if object_id is None:
            return
        try:
            visible = self.get_queryset(request).filter(pk=object_id).exists()
        except (ValueError, TypeError):
            visible = False
        if not visible:
            raise Http404("No such object.")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        self._ensure_visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        self._ensure_visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        self._ensure_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)


class StaffPageAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A read-only page of the console behind a proxy model (dashboard, global search): every staff member of a
    tenant and the superuser may open it; its view scopes what it shows to the user's tenants itself."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        access = access_for(request)
        return access.is_superuser or bool(access.roles)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
