"""Charger secrets: a verified pair is shared through Redis, so a restarted process does not pay PBKDF2 again for
every charger of a reconnecting fleet, and nothing in Redis ever lets a wrong secret in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache

from apps.stations import hashers


@pytest.fixture
def pbkdf2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The PBKDF2 checks made (each ~5 ms of CPU); a fresh process (the per-process memory emptied)."""
    calls: list[str] = []
    verify = hashers.HASHER.verify

    def counted(raw: str, encoded: str) -> bool:
        calls.append(raw)
        return verify(raw, encoded)

    monkeypatch.setattr(hashers.HASHER, "verify", counted)
    hashers._verified.clear()
    yield calls
    hashers._verified.clear()


def restart() -> None:
    hashers._verified.clear()


def test_a_verified_secret_is_known_to_a_restarted_process_without_pbkdf2(pbkdf2_calls: list[str]) -> None:
    secret = hashers.generate_secret()
    encoded = hashers.hash_secret(secret)
    assert hashers.check_secret(secret, encoded)
    assert len(pbkdf2_calls) == 1
    restart()
    assert hashers.check_secret(secret, encoded)
    assert hashers.check_secret(secret, encoded)
    assert len(pbkdf2_calls) == 1  # the shared entry, then the process's own memory


def test_a_wrong_secret_is_refused_and_shares_nothing(pbkdf2_calls: list[str]) -> None:
    secret = hashers.generate_secret()
    encoded = hashers.hash_secret(secret)
    assert not hashers.check_secret("not-the-secret", encoded)
    assert cache.get(hashers._shared_key(encoded)) is None
    assert hashers.check_secret(secret, encoded)
    restart()
    assert not hashers.check_secret("not-the-secret", encoded)  # the entry proves only the right secret
    assert pbkdf2_calls == ["not-the-secret", secret, "not-the-secret"]


def test_an_entry_written_without_the_secret_key_lets_nobody_in(pbkdf2_calls: list[str]) -> None:
    import hashlib

    encoded = hashers.hash_secret(hashers.generate_secret())
    forged = hashlib.sha256(f"{encoded}\x00guess".encode()).hexdigest()  # what one could compute from Redis alone
    cache.set(hashers._shared_key(encoded), forged, 60)
    assert not hashers.check_secret("guess", encoded)


def test_a_changed_secret_refuses_the_old_one(pbkdf2_calls: list[str]) -> None:
    old, new = hashers.generate_secret(), hashers.generate_secret()
    old_encoded = hashers.hash_secret(old)
    assert hashers.check_secret(old, old_encoded)
    new_encoded = hashers.hash_secret(new)
    restart()
    assert not hashers.check_secret(old, new_encoded)
    assert hashers.check_secret(new, new_encoded)


def test_redis_down_falls_back_to_pbkdf2(pbkdf2_calls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis down")

    monkeypatch.setattr(hashers.cache, "get", down)
    monkeypatch.setattr(hashers.cache, "set", down)
    secret = hashers.generate_secret()
    encoded = hashers.hash_secret(secret)
    assert hashers.check_secret(secret, encoded)
    assert not hashers.check_secret("wrong", encoded)
    assert len(pbkdf2_calls) == 2
