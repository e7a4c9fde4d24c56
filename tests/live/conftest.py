"""Live state for tests: every test that asks for `live_store` runs twice, with the in-process
store and with Redis (skipped without CELERY_BROKER_URL=redis://...), under a key prefix of its
own that is removed afterwards; `clock` moves presence's time."""

from __future__ import annotations

import os
import uuid

import pytest
from django.contrib.auth.models import User

from accounts.models import Account
from accounts.sandbox import PEERS
from inbox.live import presence
from inbox.live.store import get_store
from inbox.models import Session

HTMX = {"HTTP_HX_REQUEST": "true"}


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


@pytest.fixture
def colleague(synced: Account) -> User:
    """王芳, another member of the synced account."""
    user = User.objects.create_user("wang.fang", password="pw", first_name="王芳")
    synced.members.add(user)
    return user


@pytest.fixture
def session(synced) -> Session:
    """王小明's conversation: letters both ways."""
    return Session.objects.get(peer_username=PEERS[1].username)
