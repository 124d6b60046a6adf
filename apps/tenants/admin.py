from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import refuse_protected
from apps.tenants import services
from apps.tenants.models import ApiKey, Membership, Role, Tenant, User
from apps.tenants.scoping import TenantScopedAdmin, access_for


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"
    write_roles = (Role.ADMIN,)
    list_display = ["name", "slug", "currency", "timezone", "ocpi_country_code", "ocpi_party_id", "is_active"]
    list_filter = ["is_active", "country", "currency"]
    search_fields = ["name", "slug", "legal_name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        ("Branding", {"fields": ["logo", "primary_colour", "secondary_colour", "sender_email"]}),
        (
            "Legal and bank",
            {
                "fields": [
                    "legal_name",
                    "address_line",
                    "postal_code",
                    "city",
                    "country",
                    "vat_id",
                    "bank_name",
                    "iban",
                    "bic",
                ]
            },
        ),
        ("Money and time", {"fields": ["currency", "timezone", "default_vat_rate", "parking_grace_minutes"]}),
        ("Roaming", {"fields": ["ocpi_country_code", "ocpi_party_id", "oicp_operator_id", "oicp_provider_id"]}),
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access_for(request).is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).is_superuser


@admin.register(User)
class PlatformUserAdmin(UserAdmin):  # type: ignore[type-arg]
    """Platform-wide user records: superusers only (tenant admins manage roles via memberships)."""

    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_superuser", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access_for(request).is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).is_superuser

    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """A user who left history (commands sent, invoices issued, grid signals posted) is deactivated, not deleted."""
        refused = refuse_protected(objs, instead="Deactivate the user instead (untick Active).")
        return refused if refused is not None else super().get_deleted_objects(objs, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access_for(request).is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    write_roles = (Role.ADMIN,)
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "tenant"]
    raw_id_fields = ["user"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    write_roles = (Role.ADMIN,)
    list_display = ["name", "tenant", "prefix", "scopes", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "prefix"]
    list_select_related = ["tenant"]
    readonly_fields = ["prefix", "revoked_at", "last_used_at", "created_by", "created_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["tenant", "name", "scopes", "expires_at", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.api_key_create(
            tenant=obj.tenant,
            name=obj.name,
            scopes=obj.scopes,
            expires_at=obj.expires_at,
            created_by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = key.pk
        obj.prefix = key.prefix
        self.message_user(
            request,
            f"API key created. Copy the secret now, it is not shown again: {raw}",
            level=messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.order_by("pk"):
            if self._can_write(request, key):
                services.api_key_revoke(api_key=key)
        self.message_user(request, "Revoked.")
