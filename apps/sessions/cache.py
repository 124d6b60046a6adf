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
# Measured (benchmarks/geo_bench.py, 200k locations, a page of 50 with prices, load 8-13 on 2 cores): p50 91-147 ms
# and p95 406-536 ms without the cache, p50 16-22 ms and p95 24-96 ms on a hit; a miss costs the same as no cache
# plus one Redis SET. The whole page is cached (not only the spatial query, 1.8-40 ms of it) because the prefetch,
# the prices and the rendering are most of the page's cost.
STATION_SEARCH_CACHE: TenantCache[Any] = TenantCache("station_search", ("stations", "tariffs", "tenant"), ttl=60)
