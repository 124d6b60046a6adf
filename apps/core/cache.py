"""The cache of hot reads on Redis (Django's cache framework, `CACHES["default"]`): tenant in every key,
invalidated on commit by the services that change what was read.

How it stays right:

- **Tenant in every key.** A cached read names the tenants whose data it holds (`tenant_ids`, sorted, in clear in
  the key) and, for each of them, the current *generation* of every namespace it depends on. A caller of tenant
  B builds a key with B's id and B's generations: it can never be answered from an entry A's caller stored.
- **Invalidated on commit.** A write path calls `invalidate(namespace, tenant_id)`: after its transaction commits
  (`transaction.on_commit`; at once outside a transaction), the namespace's generation of that tenant gets a new
  random value, so every key built from the old one is never read again (the entries expire by their TTL). One
  Redis SET per write, whatever was cached; nothing to enumerate. Not before the commit: a reader that ran between
  the bump and the commit would cache the old rows under the new generation.
- **Races.** A reader takes the generations *before* it reads the database. A write that commits while the reader
  computes bumps the generation after the reader took it, so what the reader stores lands under the old
  generation, which nobody asks for any more. The only stale window is between a commit and its `on_commit`
  (the same thread, microseconds). Values that change with the clock rather than a write (a tariff's validity
  window, a time-of-day price) are as old as the TTL at most: each cache says its TTL and why.
- **Redis down or failing** never fails a read: the value is computed as without the cache (and counted as a miss).
  An invalidation that cannot reach Redis is logged (`robust` on_commit): the write stays committed and the
  entries it should have dropped live to their TTL.

Namespaces are plain strings named after the data (`stations`, `tariffs`, `tenant`, ...), so a lower layer
bumps what it owns and a higher layer's read lists what it depends on, without imports between them.
Hits and misses per cache are counted in `evp_cache_hits_total` / `evp_cache_misses_total` (`/metrics`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.core.metrics import CACHE_HITS, CACHE_MISSES

logger = logging.getLogger(__name__)

T = TypeVar("T")
_MISSING = object()


def _generation_key(namespace: str, tenant_id: int) -> str:
    return f"gen:{namespace}:{tenant_id}"


def _new_generation() -> str:
    return secrets.token_hex(8)


def generations(namespaces: Iterable[str], tenant_ids: Iterable[int]) -> dict[str, str]:
    """The current generation of each namespace of each tenant (one Redis round trip; a missing one is created)."""
    keys = [_generation_key(ns, t) for t in sorted(set(tenant_ids)) for ns in sorted(set(namespaces))]
    found: dict[str, str] = cache.get_many(keys)
    for key in keys:
        if key not in found:  # first use, or evicted: a fresh value, never an old one again
            cache.add(key, _new_generation(), timeout=None)
            found[key] = cache.get(key)
    return {key: found[key] for key in keys}


def invalidate(namespace: str, tenant_id: int) -> None:
    """Drop every cached read of `namespace` for this tenant once the current transaction commits."""

    def bump() -> None:
        cache.set(_generation_key(namespace, tenant_id), _new_generation(), timeout=None)

    transaction.on_commit(bump, robust=True)


def invalidate_many(namespace: str, tenant_ids: Iterable[int]) -> None:
    for tenant_id in sorted(set(tenant_ids)):
        invalidate(namespace, tenant_id)


def cache_key(name: str, *, tenant_ids: Iterable[int], namespaces: Iterable[str], parts: Any) -> str:
    """The key of one cached read: its name, its tenants in clear, and a digest of the tenants' generations and
    the read's own parameters (`parts`, anything with a stable `repr`)."""
    ids = sorted(set(tenant_ids))
    gens = generations(namespaces, ids)
    digest = hashlib.sha256(repr((sorted(gens.items()), parts)).encode()).hexdigest()[:32]
    return f"c:{name}:t{'.'.join(map(str, ids))}:{digest}"


def cached(
    name: str,
    *,
    tenant_ids: Iterable[int],
    namespaces: Iterable[str],
    parts: Any,
    compute: Callable[[], T],
    ttl: int,
) -> T:
    """`compute()`, or what it returned for the same `parts` and tenants since none of `namespaces` of those
    tenants changed (and at most `ttl` seconds ago). `tenant_ids` must be every tenant the value may hold rows of:
    the caller's scope, not the rows found."""
    ids = sorted(set(tenant_ids))
    if not ids:
        raise ValueError("a cached read names its tenants")
    if not getattr(settings, "HOT_READ_CACHE", True):
        return compute()
    try:
        key = cache_key(name, tenant_ids=ids, namespaces=namespaces, parts=parts)
        value = cache.get(key, _MISSING)
    except Exception:  # Redis unreachable or failing: read as without the cache
        logger.warning("cache %s unavailable, reading without it", name, exc_info=True)
        CACHE_MISSES.labels(cache=name).inc()
        return compute()
    if value is not _MISSING:
        CACHE_HITS.labels(cache=name).inc()
        return value  # type: ignore[return-value]
    CACHE_MISSES.labels(cache=name).inc()
    value = compute()
    try:
        cache.set(key, value, timeout=ttl)
    except Exception:
        logger.warning("cache %s: could not store %s", name, key, exc_info=True)
    return value


@dataclass(frozen=True)
class TenantCache(Generic[T]):
    """One cached read: its name (metrics label, key prefix), the namespaces it depends on, its TTL in seconds."""

    name: str
    namespaces: tuple[str, ...]
    ttl: int

    @property
    def enabled(self) -> bool:
        return bool(getattr(settings, "HOT_READ_CACHE", True))

    def get(self, *, tenant_ids: Iterable[int], parts: Any, compute: Callable[[], T]) -> T:
        return cached(
            self.name, tenant_ids=tenant_ids, namespaces=self.namespaces, parts=parts, compute=compute, ttl=self.ttl
        )
