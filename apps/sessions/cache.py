"""Cached reads of the charging layer (see `apps/core/cache.py` for how keys and invalidation work)."""

from __future__ import annotations

from typing import Any

from apps.core.cache import TenantCache

# The driver station search (`GET /api/v1/driver/stations/`), one page per tenant scope, query, cursor and pricing
# party. It reads locations, charge points, EVSEs (their status) and connectors (`stations`, bumped by every write
# of those: stations services, decommissioning, the stations API and admin, StatusNotification), tariffs,
# assignments and contract price lists (`tariffs`), and the tenant's time zone and VAT rate (`tenant`).
# TTL 60 s: a tariff or assignment whose validity starts or ends by the clock (not by a write), or a time-of-day
# price boundary, shows in the search up to a minute late; the price a session pays is computed at its
# completion, never from this cache.
STATION_SEARCH_CACHE: TenantCache[Any] = TenantCache("station_search", ("stations", "tariffs", "tenant"), ttl=60)
