"""The read replica (`DATABASE_REPLICA_URL`): exports, analytics and search read from a streaming replica when one
is configured, so a 10M-row export or a dashboard never competes with the chargers' writes on the primary.

Only reads that tolerate the replica's lag (usually milliseconds; a hot standby replays the primary's WAL) go
there, and only where a caller asks for it: `with replica_reads(): ...` routes the ORM's reads of that block
(`ReplicaRouter`, in `DATABASE_ROUTERS`), `replica_alias()` names the connection for raw SQL. A read that must see
the caller's own write (claim a job, then read it) stays on the primary: it is outside such a block. Without a
replica every read goes to the primary and nothing changes. Writes and migrations always go to the primary.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from django.conf import settings

REPLICA = "replica"
P = ParamSpec("P")
R = TypeVar("R")
_reading: contextvars.ContextVar[bool] = contextvars.ContextVar("evp_replica_reads", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def replica_alias() -> str:
    """The connection alias that replica reads use: the replica when configured, else the primary."""
    return REPLICA if replica_configured() else "default"


@contextlib.contextmanager
def replica_reads() -> Iterator[str]:
    """ORM reads within the block go to the replica (when configured); yields the alias they use."""
    token = _reading.set(True)
    try:
        yield replica_alias()
    finally:
        _reading.reset(token)


def read_alias() -> str:
    """The alias for a raw SQL read here: the replica inside `replica_reads()` (when configured), else the primary."""
    return replica_alias() if _reading.get() else "default"


def on_replica(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a selector's reads on the replica (it must return evaluated data, not a lazy QuerySet)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with replica_reads():
            return fn(*args, **kwargs)

    return wrapper


class ReplicaRouter:
    """Reads inside `replica_reads()` go to the replica; everything else, writes and migrations to the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return replica_alias() if _reading.get() else None

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return True  # one database, two servers: an object read from either relates to any other

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        return db == "default"
