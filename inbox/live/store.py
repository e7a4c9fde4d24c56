"""Where live state is kept: Redis when there is one, else a dictionary in this process.

Both stores offer the same few operations, which presence.py builds on:

- expiring sets: `touch(key, member, expires_at)` adds or refreshes a member with the time it
  expires (a Redis sorted set scored by that time); `alive(keys, now)` reads the members not yet
  expired. Liveness is decided by the scores, not by Redis' own key expiry, so a member's time to
  live can differ from its neighbours' and tests can move the clock. Each key also gets a Redis
  expiry a little past its newest member, so nothing is left behind when everyone goes away.
- values: `put(key, value, keep_seconds)` and `get_many(keys)`.
- `publish(channels, message)` for publish.py (Redis pub/sub, or this process's listeners).

Redis being down must not take the inbox down with it: a failed call is logged and answers as if
nobody were there (reads) or does nothing (writes); polling keeps the inbox itself working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

# Redis keeps an expiring set this much longer than its newest member needs: the scores decide
# who is alive, the key's own expiry only clears what nobody touches any more.
KEY_GRACE_SECONDS = 60


@dataclass
class Write:
    """One write of a batch (see Store.write)."""

    op: str  # "touch", "drop" or "put"
    key: str
    member: str = ""
    value: str = ""
    expires_at: float = 0.0
    keep_seconds: float = 0.0


@dataclass
class Batch:
    """Writes sent together (one round trip to Redis), at time `now`: the members of a set
    it touches that expired by then are dropped with it."""

    now: float
    writes: list[Write] = field(default_factory=list)

    def touch(self, key: str, member: str, expires_at: float) -> Batch:
        self.writes.append(Write("touch", key, member=member, expires_at=expires_at))
        return self

    def drop(self, key: str, member: str) -> Batch:
        self.writes.append(Write("drop", key, member=member))
        return self

    def put(self, key: str, value: str, keep_seconds: float) -> Batch:
        self.writes.append(Write("put", key, value=value, keep_seconds=keep_seconds))
        return self


class Store(Protocol):
    def write(self, batch: Batch) -> None: ...

    def alive(self, keys: list[str], now: float) -> list[dict[str, float]]: ...

    def get_many(self, keys: list[str]) -> list[str | None]: ...

    def snapshot(
        self, set_keys: list[str], value_keys: list[str], now: float
    ) -> tuple[list[dict[str, float]], list[str | None]]: ...

    def publish(self, channels: list[str], message: str) -> None: ...


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self.errors = (redis.RedisError, OSError)
        # Short timeouts: a heartbeat or a page render waits for Redis at most this long.
        self.client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True
        )

    def _run(self, what: str, call: Callable[[], Any], default: Any) -> Any:
        try:
            return call()
        except self.errors as exc:
            logger.warning("live state: Redis %s failed: %s", what, exc)
            return default

    def write(self, batch: Batch) -> None:
        def send() -> None:
            pipe = self.client.pipeline(transaction=False)
            for w in batch.writes:
                if w.op == "touch":
                    # Expired members go when the set is written, so it never grows past who
                    # is around; reads leave it alone.
                    pipe.zremrangebyscore(w.key, "-inf", batch.now)
                    pipe.zadd(w.key, {w.member: w.expires_at})
                    pipe.expireat(w.key, int(w.expires_at + KEY_GRACE_SECONDS))
                elif w.op == "drop":
                    pipe.zrem(w.key, w.member)
                else:
                    pipe.set(w.key, w.value, ex=max(1, int(w.keep_seconds)))
            pipe.execute()

        if batch.writes:
            self._run("write", send, None)

    def alive(self, keys: list[str], now: float) -> list[dict[str, float]]:
        return self.snapshot(keys, [], now)[0]

    def get_many(self, keys: list[str]) -> list[str | None]:
        return self.snapshot([], keys, 0)[1]

    def snapshot(
        self, set_keys: list[str], value_keys: list[str], now: float
    ) -> tuple[list[dict[str, float]], list[str | None]]:
        """The live members of these sets and these values, in one round trip."""

        def read() -> tuple[list[dict[str, float]], list[str | None]]:
            pipe = self.client.pipeline(transaction=False)
            for key in set_keys:
                pipe.zrangebyscore(key, f"({now}", "+inf", withscores=True)
            if value_keys:
                pipe.mget(value_keys)
            answers = pipe.execute()
            values = answers.pop() if value_keys else []
            return [dict(members) for members in answers], values

        if not set_keys and not value_keys:
            return [], []
        return self._run("read", read, ([{} for _ in set_keys], [None for _ in value_keys]))

    def publish(self, channels: list[str], message: str) -> None:
        def send() -> None:
            pipe = self.client.pipeline(transaction=False)
            for channel in channels:
                pipe.publish(channel, message)
            pipe.execute()

        self._run("publish", send, None)


class MemoryStore:
    """The embedded default's store: one process's dictionary behind a lock. State is per
    process, so it is exact under `runserver` and one web process; several web processes each see
    their own tabs (run Redis for a team)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.sets: dict[str, dict[str, float]] = {}
        self.values: dict[str, tuple[str, float]] = {}
        self.listeners: list[Callable[[str, str], None]] = []

    def write(self, batch: Batch) -> None:
        with self.lock:
            for w in batch.writes:
                if w.op == "touch":
                    self.sets.setdefault(w.key, {})[w.member] = w.expires_at
                elif w.op == "drop":
                    self.sets.get(w.key, {}).pop(w.member, None)
                else:
                    self.values[w.key] = (w.value, self.clock() + w.keep_seconds)
            self._sweep()

    def _sweep(self) -> None:
        """Drop what expired, now and then (amortised: when the store has grown)."""
        if len(self.sets) + len(self.values) < 1024:
            return
        now = self.clock()
        for key in [
            k for k, members in self.sets.items() if max(members.values(), default=0) <= now
        ]:
            del self.sets[key]
        for key in [k for k, (_, until) in self.values.items() if until <= now]:
            del self.values[key]

    def alive(self, keys: list[str], now: float) -> list[dict[str, float]]:
        with self.lock:
            answers = []
            for key in keys:
                members = self.sets.get(key, {})
                for member in [m for m, until in members.items() if until <= now]:
                    del members[member]
                answers.append(dict(members))
            return answers

    def get_many(self, keys: list[str]) -> list[str | None]:
        now = self.clock()
        with self.lock:
            found = [self.values.get(key) for key in keys]
        return [entry[0] if entry and entry[1] > now else None for entry in found]

    def snapshot(
        self, set_keys: list[str], value_keys: list[str], now: float
    ) -> tuple[list[dict[str, float]], list[str | None]]:
        return self.alive(set_keys, now), self.get_many(value_keys)

    def publish(self, channels: list[str], message: str) -> None:
        with self.lock:
            listeners = list(self.listeners)
        for channel in channels:
            for listener in listeners:
                listener(channel, message)

    def listen(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        """Call `listener(channel, message)` for everything published in this process; returns
        the function that stops it."""
        with self.lock:
            self.listeners.append(listener)

        def stop() -> None:
            with self.lock:
                self.listeners.remove(listener)

        return stop


def key(*parts: object) -> str:
    return settings.LIVE_KEY_PREFIX + ":".join(str(part) for part in parts)


@cache
def get_store() -> RedisStore | MemoryStore:
    """Redis at settings.LIVE_REDIS_URL (by default the broker's, when that is Redis), else this
    process's memory."""
    if settings.LIVE_REDIS_URL:
        return RedisStore(settings.LIVE_REDIS_URL)
    return MemoryStore()


def forget_store_on_setting_change(setting: str, **kwargs: Any) -> None:
    if setting == "LIVE_REDIS_URL":
        get_store.cache_clear()
