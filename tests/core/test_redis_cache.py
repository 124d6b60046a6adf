"""The cache backend keeps its redis client (apps/core/redis_cache.py) and still behaves as Django's: values round
trip, timeouts expire, threads (each with its own backend, as Django's cache handler gives them) work at once."""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import cache, caches

from apps.core.redis_cache import KeptClientRedisCacheClient, RedisCache


def test_the_configured_cache_is_the_kept_client_backend() -> None:
    assert isinstance(caches["default"], RedisCache)
    backend: Any = caches["default"]
    assert isinstance(backend._cache, KeptClientRedisCacheClient)


def test_the_client_is_built_once_and_serves_every_call() -> None:
    backend: Any = caches["default"]
    client = backend._cache.get_client(write=True)
    for n in range(3):
        backend.set(f"kept-client-test:{n}", n, 30)
        assert backend._cache.get_client(write=True) is client
        assert backend._cache.get_client() is client  # one server: reads and writes share it


def test_threads_use_the_cache_at_once() -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for k in range(50):
                cache.set(f"kept-client-test:{n}:{k}", k, 30)
                assert cache.get(f"kept-client-test:{n}:{k}") == k
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    keys = [f"kept-client-test:{n}:49" for n in range(8)]
    assert cache.get_many(keys) == dict.fromkeys(keys, 49)


def test_values_expire_and_add_keeps_the_first() -> None:
    cache.set("kept-client-test:short", "v", 1)
    assert cache.add("kept-client-test:short", "other", 30) is False
    time.sleep(1.2)
    assert cache.get("kept-client-test:short") is None
    assert cache.add("kept-client-test:short", "other", 30) is True
    assert cache.get("kept-client-test:short") == "other"
    cache.delete_many(["kept-client-test:short"])
