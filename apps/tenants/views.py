"""The page behind the link of an invitation e-mail, where the invited person accepts.

Three ways, all by the person holding the link: one click when already logged in; the username and password of the
account they have; or a new account (login: the invited address; password: theirs). The API offers the same as
`POST /api/v1/staff-invitations/accept/`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin import site as admin_site
from django.contrib.auth import login
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from apps.core.errors import ApplicationError
from apps.tenants import selectors, services
from apps.tenants.models import Membership, User

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class NewAccountForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned


@sensitive_post_parameters("password", "password1", "password2")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept_page(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_open_by_token(token=token)
    context: dict[str, Any] = {**admin_site.each_context(request), "title": "Invitation", "invitation": invitation}
    if invitation is None:
        return render(request, "tenants/invitation_accept.html", context, status=404)
    current = request.user if request.user.is_authenticated else None
    new_form = NewAccountForm()
    login_form = AuthenticationForm(request)
    error = ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            membership: Membership | None = None
            if isinstance(current, User):
                if action != "accept":
                    raise ApplicationError(
                        f"You are logged in as {current.get_username()}: accept with that account, or log out first."
                    )
                membership = services.invitation_accept(token=token, user=current)
            elif action == "login":
                login_form = AuthenticationForm(request, data=request.POST)
                if login_form.is_valid():
                    user = login_form.get_user()
                    membership = services.invitation_accept(token=token, user=user)
            elif action == "create":
                new_form = NewAccountForm(request.POST)
                if new_form.is_valid():
                    membership = services.invitation_accept(
                        token=token,
                        password=new_form.cleaned_data["password1"],
                        first_name=new_form.cleaned_data["first_name"],
                        last_name=new_form.cleaned_data["last_name"],
                    )
            else:
                error = "Choose one of the ways to accept below."
            if membership is not None:
                if current is None or current.pk != membership.user_id:
                    login(request, membership.user, backend=MODEL_BACKEND)
                messages.success(request, gettext("Welcome to %(tenant)s.") % {"tenant": membership.tenant.name})
                return HttpResponseRedirect("/admin/")
        except ApplicationError as exc:
            error = exc.message
    context.update(
        {
            "current": current,
            "new_form": new_form,
            "login_form": login_form,
            "error": error,
            "new_login": invitation.email.lower(),
        }
    )
    return render(request, "tenants/invitation_accept.html", context, status=400 if error else 200)
