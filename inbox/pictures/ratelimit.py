"""How fast thumbnails are asked of one account's device: at most
PICTURES_PER_SECOND_PER_ACCOUNT downloads a second, however many threads are opened at once.

Not a counter that refuses work but a schedule: each account has a "next free slot" time, and
`reserve` hands out the next `count` slots, one interval apart, as countdowns for
`apply_async(countdown=…)`. The images worker then starts each download at its slot. Slots are
never handed out further ahead than PICTURES_QUEUE_AHEAD_SECONDS: a thread opened during a
burst queues what fits and leaves the rest for a later open, so the queue cannot grow without
bound.

The schedule lives in Redis (one small Lua script: atomic across every web process, on Redis'
clock) when PICTURES_REDIS_URL is set, else in this process (the embedded default runs one web
process). Redis failing falls back to this process's schedule: a thread still opens.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed

log = logging.getLogger(__name__)

# KEYS[1] the account's next free slot (seconds, float); ARGV: interval, count, horizon.
# Returns {delay of the first slot granted, slots granted}, as strings (Lua numbers would be
# truncated to integers on their way out).
RESERVE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free < now then free = now end
local granted = math.min(count, math.max(0, math.floor((now + horizon - free) / interval) + 1))
if granted > 0 then
  local last = free + granted * interval
  local keep = math.ceil((last - now) * 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.6f', last), 'PX', keep)
end
return {string.format('%.6f', free - now), tostring(granted)}
"""


def reserve(account_id: int, count: int) -> list[float]:
    """Countdowns in seconds for up to `count` downloads from the account's device, one
    interval apart after every slot handed out before; fewer (or none) when the schedule is full
    up to the horizon."""
    if count <= 0:
        return []
    interval = 1 / settings.PICTURES_PER_SECOND_PER_ACCOUNT
    horizon = settings.PICTURES_QUEUE_AHEAD_SECONDS
    schedule = _redis_schedule()
    if schedule is not None:
        from redis import RedisError

        try:
            delay, granted = schedule(
                keys=[f"{settings.PICTURES_KEY_PREFIX}rate:{account_id}"],
                args=[interval, count, horizon],
            )
            return _countdowns(float(delay), int(granted), interval)
        except (RedisError, OSError) as exc:
            log.warning("thumbnail limiter: Redis failed (%s); using this process's schedule", exc)
    return _memory.reserve(account_id, count, interval, horizon)


def _countdowns(delay: float, granted: int, interval: float) -> list[float]:
    return [round(delay + slot * interval, 3) for slot in range(granted)]


class MemorySchedule:
    """The same schedule in this process, for the embedded default (and when Redis is down)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[int, float] = {}

    def reserve(self, account_id: int, count: int, interval: float, horizon: float) -> list[float]:
        with self._lock:
            now = time.monotonic()
            free = max(self._free.get(account_id, 0.0), now)
            granted = min(count, max(0, math.floor((now + horizon - free) / interval) + 1))
            if granted:
                self._free[account_id] = free + granted * interval
            return _countdowns(free - now, granted, interval)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


_memory = MemorySchedule()


@cache
def _redis_schedule():
    url = settings.PICTURES_REDIS_URL
    if not url:
        return None
    import redis

    # Short timeouts: a thread open waits for Redis at most this long.
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client.register_script(RESERVE_SCRIPT)


def _forget_schedule(*, setting: str, **kwargs) -> None:
    if setting.startswith("PICTURES_"):
        _redis_schedule.cache_clear()
        _memory.clear()


setting_changed.connect(_forget_schedule, dispatch_uid="pictures.ratelimit_settings")
