"""Admin of the energy app: the site tree, time-of-use limits, grid signals (read-only audit), building load,
and the site load view (tree with limits and allocations, and 24 h of limit vs allocated vs measured power)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.energy import selectors, services
from apps.energy.models import BuildingLoadReading, GridNode, GridSignal, Strategy, TimeOfUseLimit
from apps.energy.optimizer import optimize
from apps.tenants.scoping import TenantScopedAdmin


class _ReadOnly(TenantScopedAdmin):
    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description=_("Take profiles again (clear 'rejects profiles')"))
def include_again(modeladmin: Any, request: HttpRequest, queryset: QuerySet[GridNode]) -> None:
    for node in queryset.filter(rejects_profiles=True):
        services.charge_point_include(node=node)
    modeladmin.message_user(request, _("Done; the sites are recomputed."), messages.SUCCESS)


@admin.register(GridNode)
class GridNodeAdmin(TenantScopedAdmin):
    list_display = ("name", "kind", "location", "parent", "max_power_w", "max_current_a", "rejects_profiles", "load")
    list_filter = ("kind", "rejects_profiles")
    search_fields = ("name",)
    readonly_fields = ("rejects_profiles",)
    actions = [include_again]

    @admin.display(description=_("Site load"))
    def load(self, obj: GridNode) -> str:
        if obj.parent_id is not None:
            return ""
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:energy_site_load", args=[obj.pk]), gettext("site load")
        )

    def save_model(self, request: HttpRequest, obj: GridNode, form: Any, change: bool) -> None:
        services.grid_node_save(node=obj)

    def get_urls(self) -> list[URLPattern]:
        view = path("<int:pk>/load/", self.admin_site.admin_view(self.site_load_view), name="energy_site_load")
        return [view, *super().get_urls()]

    def site_load_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._ensure_visible(request, str(pk))
        root = selectors.site_root(GridNode.objects.get(pk=pk))
        now = timezone.now()
        inp = selectors.site_input(site_id=root.pk, at=now)
        result = optimize(inp.site, inp.sessions, at=now, config=inp.config)
        by_parent: dict[str, list[Any]] = {}
        for alloc in result.sessions.values():
            row = inp.session_rows[int(alloc.session_id)]
            by_parent.setdefault(selectors.node_id(_cp_node(inp, row.charge_point_id)), []).append((row, alloc))
        children: dict[int | None, list[GridNode]] = {}
        for node in inp.nodes.values():
            children.setdefault(node.parent_id if node.pk != root.pk else None, []).append(node)
        rows: list[dict[str, Any]] = []

        def walk(node: GridNode, depth: int) -> None:
            na = result.nodes.get(selectors.node_id(node.pk))
            rows.append(
                {
                    "node": node,
                    "depth": depth,
                    "indent": depth * 24,
                    "limit_w": None if na is None or na.limit_w == float("inf") else round(na.limit_w),
                    "limit_a": None if na is None else ["-" if v == float("inf") else f"{v:.1f}" for v in na.limit_a],
                    "allocated_w": 0 if na is None else round(na.allocated_w),
                    "allocated_a": [] if na is None else [f"{v:.1f}" for v in na.allocated_a],
                    "uncontrolled_w": 0 if na is None else round(na.uncontrolled_w),
                    "sources": "" if na is None else ", ".join(na.sources),
                    "sessions": by_parent.get(selectors.node_id(node.pk), []),
                }
            )
            for child in sorted(children.get(node.pk, []), key=lambda n: n.pk):
                walk(child, depth + 1)

        walk(root, 0)
        history = list(
            selectors.site_history(site_id=root.pk, since=now - dt.timedelta(hours=24)).values(
                "at", "limit_w", "allocated_w", "uncontrolled_w", "measured_w"
            )
        )
        chart = {
            "labels": [h["at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for h in history],
            "limit": [h["limit_w"] / 1000 if h["limit_w"] is not None else None for h in history],
            "allocated": [(h["allocated_w"] + h["uncontrolled_w"]) / 1000 for h in history],
            "measured": [h["measured_w"] / 1000 for h in history],
        }
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Site load: %(site)s") % {"site": root.name},
            "opts": self.model._meta,
            "root": root,
            "rows": rows,
            "chart": chart,
            "warnings": result.warnings,
            "strategy": Strategy(result.strategy.value).label,
        }
        return TemplateResponse(request, "admin/energy/site_load.html", context)


def _cp_node(inp: selectors.SiteInput, charge_point_id: int) -> int:
    for node in inp.nodes.values():
        if node.charge_point_id == charge_point_id:
            return node.pk
    return inp.root.pk


@admin.register(TimeOfUseLimit)
class TimeOfUseLimitAdmin(TenantScopedAdmin):
    list_display = ("node", "label", "weekdays", "start", "end", "percent", "max_power_w", "max_current_a")

    def save_model(self, request: HttpRequest, obj: TimeOfUseLimit, form: Any, change: bool) -> None:
        services.tou_limit_save(window=obj)

    def delete_model(self, request: HttpRequest, obj: TimeOfUseLimit) -> None:
        services.tou_limit_delete(window=obj)


@admin.register(GridSignal)
class GridSignalAdmin(_ReadOnly):
    list_display = ("created_at", "node", "max_power_w", "max_current_a", "valid_from", "valid_until", "source")
    list_filter = ("source",)
    date_hierarchy = "created_at"


@admin.register(BuildingLoadReading)
class BuildingLoadReadingAdmin(_ReadOnly):
    list_display = ("at", "node", "power_w", "current_l1_a", "current_l2_a", "current_l3_a")
