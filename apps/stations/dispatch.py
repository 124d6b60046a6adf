"""How a command finds the process that holds a charger's socket, and how its answer comes back.

Routing
    A connected consumer names its channel-layer channel in its presence entry (below); `send_command` reads the
    entry and sends the command to that channel, so it reaches the socket whichever daphne process (or machine)
    holds it. We keep the project's `channels_redis.core.RedisChannelLayer` (configured once in settings, shared
    with the live-update consumers) rather than `RedisPubSubChannelLayer`: each process pulls its messages over
    one blocking connection (BZPOPMIN) however many sockets it holds, and a message for a consumer that is busy
    waits in its bounded queue instead of being dropped as a pub/sub message would be. Measured here with
    tests/stations/test_command_routing.py and the benchmark: a command round trip over Redis costs ~2-4 ms, far
    below a charger's own latency.

    Consumers joined a channel-layer group per charger before: three more Redis round trips per connection
    (ZADD and EXPIRE at the handshake, ZREM at the close), and in a reconnect storm of 3,000 chargers with 128
    handshakes at once, channels_redis's pool (100 connections) refused 338 of them (HTTP 500). An entry written by
    such a process (a connection id without a channel) is still reached through its group during a rolling
    deploy (`deliver`).

Presence
    A connected consumer keeps `presence:<identity>` = "<its connection id> <its channel>" in Redis with an
    expiry, refreshed periodically by its process. A killed process stops refreshing and the charger reads as
    offline within `PRESENCE_TTL` seconds, so `send_command` answers "offline" at once instead of waiting for a timeout.

Replies
    Each command gets its own reply key (a Redis list). The consumer stores the result on the Command row
    first (shielded from its own cancellation: a socket that closes right after the charger answered still
    gets its answer recorded), then pushes the result to the key; `send_command` waits on it with BLPOP and
    reads the committed row, recording the pushed result itself if the consumer's write failed. So a caller
    never sees `sent` once the charger has answered.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.conf import settings

PRESENCE_TTL = 60  # seconds a presence entry lives without a refresh
PRESENCE_REFRESH = 20  # how often a process refreshes its sockets' presence
# entries per pipeline of a refresh: one pipeline of 10,000 SETs is packed and its replies parsed without the event
# loop getting a turn in between, and every charger's frame waited for it
PRESENCE_BATCH = 500
REPLY_TTL = 120

_sync_client: redis.Redis | None = None
_async_clients: dict[int, aioredis.Redis] = {}

_RELEASE_IF_OWNER = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def prefix() -> str:
    """Keys live next to the channel layer's, so test runs (which get their own layer prefix) stay apart."""
    config: Any = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    layer_prefix = config.get("prefix", "asgi")
    return f"{layer_prefix}:ocpp"


def group_for(identity: str) -> str:
    """Channel-layer group of one charger, as consumers of earlier versions joined it (`deliver`): group
    names allow only ASCII alnum/-/./_ and < 100 characters."""
    return "cp." + hashlib.sha1(identity.encode(), usedforsecurity=False).hexdigest()[:32]


def presence_value(connection_id: str, channel: str) -> str:
    """What a consumer's presence entry holds: its connection id and its channel-layer channel."""
    return f"{connection_id} {channel}"


def presence_channel(value: str) -> str:
    """The channel named in a presence entry ("" in an entry of an earlier version: use `group_for`)."""
    return value.partition(" ")[2]


def presence_connection(value: str) -> str:
    return value.partition(" ")[0]


async def deliver(identity: str, presence: str, message: dict[str, Any]) -> bool:
    """Send a channel-layer message to the consumer named by a charger's presence entry; False when its channel is
    full (the consumer is stuck: the caller treats the charger as unreachable). An entry of an earlier version
    names no channel: its consumer joined the charger's group."""
    layer: Any = get_channel_layer()
    assert layer is not None, "CHANNEL_LAYERS must be configured"
    channel = presence_channel(presence)
    if not channel:
        await layer.group_send(group_for(identity), message)
        return True
    try:
        await layer.send(channel, message)
    except ChannelFull:
        return False
    return True


def presence_key(identity: str, base: str | None = None) -> str:
    """`base`: `prefix()`, when the caller builds many keys (reading the settings costs ~20 us a key)."""
    return f"{base or prefix()}:presence:{identity}"


def reply_key(command_id: int) -> str:
    return f"{prefix()}:reply:{command_id}"


def sync_client() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=5)
    return _sync_client


def async_client() -> aioredis.Redis:
    """One client per event loop (redis.asyncio connections belong to the loop that opened them)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(id(loop))
    if client is None:
        for key in [k for k in _async_clients if k != id(loop)]:
            _async_clients.pop(key, None)  # a finished loop (tests): forget its client
        # no read timeout: BLPOP waits as long as the command may take (redis-py 8 defaults to 5 s)
        # and a blocking pool: a reconnect storm waits for a free connection instead of failing
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=64, timeout=30, socket_timeout=None, socket_connect_timeout=5
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[id(loop)] = client
    return client


# --------------------------------------------------------------------------- presence


async def presence_set(identities: dict[str, str]) -> None:
    """Mark these chargers (identity -> `presence_value`) as held by this process, for PRESENCE_TTL seconds."""
    items, base = list(identities.items()), prefix()
    for start in range(0, len(items), PRESENCE_BATCH):
        pipe = async_client().pipeline(transaction=False)
        for identity, value in items[start : start + PRESENCE_BATCH]:
            pipe.set(presence_key(identity, base), value, ex=PRESENCE_TTL)
        await pipe.execute()


async def presence_take(identity: str, value: str) -> str | None:
    """This connection (its `presence_value`) holds the charger from now on (for PRESENCE_TTL seconds); returns the
    entry of the connection that held it before, if any. One round trip (`SET ... GET`, Redis 6.2): a handshake
    paid a GET and a SET, and in a reconnect storm every round trip of the event loop waited 50-100 ms (README,
    issue 18). The OCPP consumers take theirs in batches (`presence_take_many`, apps/ocpp/connections.takes)."""
    return (await presence_take_many([(identity, value)]))[0]


async def presence_take_many(entries: Sequence[tuple[str, str]]) -> list[str | None]:
    """`presence_take` of many (identity, entry) in one pipeline; for each, the entry that held it before."""
    pipe, base = async_client().pipeline(transaction=False), prefix()
    for identity, value in entries:
        pipe.set(presence_key(identity, base), value, ex=PRESENCE_TTL, get=True)
    return [previous.decode() if isinstance(previous, bytes) else previous for previous in await pipe.execute()]


async def presence_release(identity: str, value: str) -> None:
    """Forget the presence entry (`presence_value`), unless a newer connection already owns it."""
    await presence_release_many([(identity, value)])


async def presence_release_many(entries: Sequence[tuple[str, str]]) -> list[bool]:
    """`presence_release` of many (identity, entry) in one pipeline; for each, whether the entry was still its."""
    pipe, base = async_client().pipeline(transaction=False), prefix()
    for identity, value in entries:
        pipe.eval(_RELEASE_IF_OWNER, 1, presence_key(identity, base), value)
    return [bool(deleted) for deleted in await pipe.execute()]


async def presence_get_async(identity: str) -> str | None:
    value: Any = await async_client().get(presence_key(identity))
    return value.decode() if isinstance(value, bytes) else value


def presence_get(identity: str) -> str | None:
    value: Any = sync_client().get(presence_key(identity))
    return value.decode() if value is not None else None


# --------------------------------------------------------------------------- replies


async def reply_push(key: str, body: str) -> None:
    client = async_client()
    pipe = client.pipeline(transaction=False)
    pipe.rpush(key, body)
    pipe.expire(key, REPLY_TTL)
    await pipe.execute()


async def reply_wait(key: str, timeout: float) -> bytes | None:
    found: Any = await async_client().blpop([key], timeout=max(timeout, 0.01))  # type: ignore[misc]
    return found[1] if found else None


# --------------------------------------------------------------------------- provisioning


def provision_key(identity: str) -> str:
    return f"{prefix()}:provision:{identity}"


async def provision_lock(identity: str, *, ttl: int) -> bool:
    """One password provisioning per charger at a time, across processes (the acceptance and a reconnect)."""
    return bool(await async_client().set(provision_key(identity), "1", nx=True, ex=ttl))


async def provision_unlock(identity: str) -> None:
    await async_client().delete(provision_key(identity))
