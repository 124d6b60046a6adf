"""Search indexing on PostgreSQL (layer 4): no tables of its own, indexes and generated columns on the searched
apps' tables (migrations/0001_search_indexes.py)."""

from django.utils.translation import gettext_lazy as _

from apps.tenants.models import Tenant


class GlobalSearch(Tenant):
    """No table of its own: the admin entry of the global search page (listed on the admin index under Search)."""

    class Meta:
        proxy = True
        verbose_name = _("global search")
        verbose_name_plural = _("global search")
