from __future__ import annotations

import mimetypes
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.admin import refuse_protected
from apps.core.errors import ApplicationError
from apps.tenants import services
from apps.tenants.models import ApiKey, Invitation, Membership, Role, Tenant, User
from apps.tenants.scopes import validate_scope
from apps.tenants.scoping import TenantScopedAdmin, access_for


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    """The tenant's people on its page. Tenant staff see them read-only: people join by invitation, and roles and
    access are changed on the membership page, through the services; only platform superusers edit here."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "role", "is_active", "source"]
    readonly_fields = ["source"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # the inline only ever shows on a page of a tenant the caller may see


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
        (_("Branding"), {"fields": ["logo", "primary_colour", "secondary_colour", "sender_email"]}),
        (
            _("Legal and bank"),
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
        (
            _("Money, time and language"),
            {"fields": ["currency", "timezone", "language", "default_vat_rate", "parking_grace_minutes"]},
        ),
        (_("Roaming"), {"fields": ["ocpi_country_code", "ocpi_party_id", "oicp_operator_id", "oicp_provider_id"]}),
    ]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access_for(request).is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access_for(request).is_superuser

    def get_urls(self) -> list[URLPattern]:
        logo = path("<int:pk>/logo/", self.admin_site.admin_view(self.logo_view), name="tenants_tenant_logo")
        return [logo, *super().get_urls()]

    def logo_view(self, request: HttpRequest, pk: int) -> FileResponse:
        """The tenant's logo for the console header (its own staff and the platform's), read through the storage."""
        tenant = self.get_queryset(request).filter(pk=pk).first()
        if tenant is None or not tenant.logo:
            raise Http404("No logo.")
        try:
            handle = tenant.logo.open("rb")
        except OSError as error:
            raise Http404("No logo.") from error
        response = FileResponse(handle, content_type=mimetypes.guess_type(tenant.logo.name)[0] or "image/png")
        response["Cache-Control"] = "private, max-age=300"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.tenant_changed(tenant_id=obj.pk)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Disabling or enabling a tenant is the platform operator's decision, never the tenant's own."""
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if access_for(request).is_superuser else [*readonly, "is_active"]


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
        refused = refuse_protected(objs, instead=gettext("Deactivate the user instead (untick Active)."))
        return refused if refused is not None else super().get_deleted_objects(objs, request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access_for(request).is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    """A tenant's people. Tenant admins change the role and the access here (never the person's account) and remove
    people; they add people by invitation. Platform superusers may grant a membership to any account directly."""

    write_roles = (Role.ADMIN,)
    list_display = ["user", "email", "tenant", "role", "is_active", "source", "created_at"]
    list_filter = ["role", "is_active", "source", "tenant"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user", "tenant"]
    raw_id_fields = ["user"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:  # platform superusers only (below)
            return ["user", "tenant", "role"]
        return ["user", "tenant", "role", "is_active", "source", "created_at"]

    @admin.display(description=_("e-mail"), ordering="user__email")
    def email(self, membership: Membership) -> str:
        return membership.user.email

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access_for(request).is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else ["user", "tenant", "source", "created_at"]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        if change:
            current = Membership.objects.get(pk=obj.pk)
            services.membership_update(membership=current, role=obj.role, is_active=obj.is_active)
            return
        membership = services.membership_grant(user=obj.user, tenant=obj.tenant, role=obj.role)
        obj.pk = membership.pk

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_delete(membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user").order_by("pk"):
            services.membership_delete(membership=membership)


class InvitationForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Invitation
        fields = ["tenant", "email", "role"]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        tenant, email = cleaned.get("tenant"), cleaned.get("email")
        if tenant is not None and email:
            pending = Invitation.objects.filter(
                tenant=tenant,
                email__iexact=services.normalize_email(email),
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            if pending.exists():
                self.add_error(
                    "email", gettext("An open invitation for this address exists in this tenant: resend it.")
                )
        return cleaned


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invite people by e-mail address; nothing about the address is shown until the person accepts."""

    form = InvitationForm
    write_roles = (Role.ADMIN,)
    list_display = ["email", "tenant", "role", "status", "expires_at", "invited_by", "accepted_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["email"]
    list_select_related = ["tenant", "invited_by"]
    actions = ["resend", "revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["tenant", "email", "role"]
        return ["tenant", "email", "role", "status", "expires_at", "sent_at", "invited_by", "accepted_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an invitation is sent as it is: revoke it and invite again

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row records who invited whom

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        if not self._can_write(request, None):
            return {}
        return actions

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        invitation = services.invitation_create(
            tenant=obj.tenant,
            email=obj.email,
            role=obj.role,
            invited_by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = invitation.pk
        self.message_user(request, _("Invitation e-mailed to %(email)s.") % {"email": invitation.email})

    def _each(self, request: HttpRequest, queryset: QuerySet[Invitation], verb: Any, service: Any) -> None:
        done = 0
        for invitation in queryset.order_by("pk"):
            if not self._can_write(request, invitation):
                continue
            try:
                service(invitation=invitation)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{invitation.email}: {exc.message}", level=messages.WARNING)
        self.message_user(request, f"{verb}: {done}.")

    @admin.action(description=_("E-mail a new link"))
    def resend(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        self._each(request, queryset, _("Resent"), services.invitation_resend)

    @admin.action(description=_("Revoke selected invitations"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        self._each(request, queryset, _("Revoked"), services.invitation_revoke)


class ApiKeyForm(forms.ModelForm):  # type: ignore[type-arg]
    def clean_scopes(self) -> list[str]:
        """Name each bad scope (the array field's own message would only say which item failed)."""
        scopes: list[str] = self.cleaned_data["scopes"]
        errors = []
        for scope in scopes:
            try:
                validate_scope(scope)
            except forms.ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise forms.ValidationError(errors)
        return scopes


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    form = ApiKeyForm
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
            services.api_key_update(
                api_key=ApiKey.objects.get(pk=obj.pk), name=obj.name, scopes=obj.scopes, expires_at=obj.expires_at
            )
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
            _("API key created. Copy the secret now, it is not shown again: %(secret)s") % {"secret": raw},
            level=messages.WARNING,
        )

    @admin.action(description=_("Revoke selected API keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset.order_by("pk"):
            if self._can_write(request, key):
                services.api_key_revoke(api_key=key)
        self.message_user(request, _("Revoked."))
