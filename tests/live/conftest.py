"""Live state for tests: every test that asks for `live_store` runs twice, with the in-process
store and with Redis (skipped without CELERY_BROKER_URL=redis://...), under a key prefix of its
own that is removed afterwards; `clock` moves presence's time."""

from __future__ import annotations

import os
import uuid

import pytest

from inbox.live import presence
from inbox.live.store import get_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def live_store(request, settings):
    settings.LIVE_KEY_PREFIX = f"finder:test-live:{uuid.uuid4().hex[:12]}:"
    if request.param == "redis":
        settings.LIVE_REDIS_URL = os.environ["CELERY_BROKER_URL"]
    else:
        settings.LIVE_REDIS_URL = ""
    store = get_store()
    yield store
    if request.param == "redis":
        keys = list(store.client.scan_iter(match=settings.LIVE_KEY_PREFIX + "*", count=1000))
        if keys:
            store.client.delete(*keys)
    get_store.cache_clear()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(presence, "clock", clock)
    return clock
