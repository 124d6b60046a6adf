"""Admin: the global search page (every kind at once), and the search behind the changelists of the searched
models (registered in `tenants.scoping.CHANGELIST_SEARCH`), both through `selectors.search`, tenant-scoped."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from apps.search import selectors
from apps.search.kinds import BY_NAME, KINDS
from apps.search.models import GlobalSearch
from apps.tenants.access import access_for
from apps.tenants.models import Tenant
from apps.tenants.scoping import CHANGELIST_SEARCH, StaffPageAdmin

# model label -> kind
MODEL_KINDS: dict[str, str] = {
    "stations.chargepoint": "charge_point",
    "stations.location": "location",
    "stations.evse": "evse",
    "customers.token": "token",
    "customers.driver": "driver",
    "customers.businesscustomer": "business_customer",
    "charging.chargingsession": "session",
    "billing.invoice": "invoice",
}

# a changelist also lists the rows of what it points to that the query finds (a charger's sessions, a driver's
# tokens): (foreign key column, kind of the related row)
RELATED: dict[str, tuple[tuple[str, str], ...]] = {
    "session": (("charge_point_id", "charge_point"), ("token_id", "token"), ("driver_id", "driver")),
    "token": (("driver_id", "driver"), ("business_customer_id", "business_customer")),
    "evse": (("charge_point_id", "charge_point"),),
    "charge_point": (("location_id", "location"),),
    "invoice": (("driver_id", "driver"), ("business_customer_id", "business_customer")),
}
RELATED_MIN_SCORE = 2.0  # related rows found by identifier or by words, not by a similar name
RELATED_LIMIT = 50


def changelist_search(kind: str) -> Any:
    def search(request: HttpRequest, queryset: QuerySet[Any], term: str) -> tuple[QuerySet[Any], bool]:
        related = RELATED.get(kind, ())
        results = selectors.search(
            query=term[: selectors.MAX_QUERY_LENGTH],
            tenant_ids=access_for(request).tenant_ids,
            kinds=[kind, *(other for _, other in related)],
            limit=selectors.MAX_IDS,
        )
        hits: dict[str, list[int]] = {}
        for group in results.groups:
            keep = [h.id for h in group.hits if group.kind == kind or h.score >= RELATED_MIN_SCORE]
            hits[group.kind] = keep[: selectors.MAX_IDS if group.kind == kind else RELATED_LIMIT]
        condition = Q(pk__in=hits.get(kind, []))
        for column, other in related:
            if hits.get(other):
                condition |= Q(**{f"{column}__in": hits[other]})
        return queryset.filter(condition), False

    return search


for label, kind_name in MODEL_KINDS.items():
    CHANGELIST_SEARCH[label] = changelist_search(kind_name)


def _admin_url(kind: str, pk: int) -> str:
    try:
        return reverse(BY_NAME[kind].admin_view, args=[pk])
    except NoReverseMatch:
        return ""


@admin.register(GlobalSearch)
class GlobalSearchAdmin(StaffPageAdmin):
    """One search box over every kind of object of the staff user's tenants (`?q=`, optionally `&kind=`)."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        access = access_for(request)
        query = selectors.normalize_query(request.GET.get("q", ""))
        kind = request.GET.get("kind", "")
        error = ""
        groups: list[dict[str, Any]] = []
        if len(query) > selectors.MAX_QUERY_LENGTH:
            error = gettext("The search is limited to %(count)d characters.") % {"count": selectors.MAX_QUERY_LENGTH}
        elif "\x00" in query:
            error = gettext("The search cannot contain NUL characters.")
        elif query:
            kinds = [kind] if kind in BY_NAME else None
            limit = selectors.MAX_LIMIT if kinds else selectors.DEFAULT_LIMIT * 2
            results = selectors.search(query=query, tenant_ids=access.tenant_ids, kinds=kinds, limit=limit)
            tenant_names = dict(
                Tenant.objects.filter(pk__in={h.tenant_id for h in results.hits}).values_list("id", "name")
            )
            groups = [
                {
                    "kind": group.kind,
                    "label": group.label,
                    "has_more": group.has_more,
                    "hits": [
                        {
                            "url": _admin_url(hit.kind, hit.id),
                            # mark() escapes everything but its own <mark> tags
                            "title": mark_safe(results.highlight(hit.title) or f"#{hit.id}"),  # noqa: S308
                            "subtitle": mark_safe(results.highlight(hit.subtitle)),  # noqa: S308
                            "match": hit.match,
                            "tenant": tenant_names.get(hit.tenant_id, ""),
                        }
                        for hit in group.hits
                    ],
                }
                for group in results.groups
            ]
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Global search"),
            "opts": self.model._meta,
            "query": query,
            "kind": kind,
            "kinds": [(k.name, k.label) for k in KINDS],
            "groups": groups,
            "error": error,
            "several_tenants": access.tenant_ids is None or len(access.tenant_ids) > 1,
        }
        return TemplateResponse(request, "admin/search/global_search.html", context)
