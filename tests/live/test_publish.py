"""publish.to_users: one message per user's channel, sent when the transaction commits."""

from __future__ import annotations

import json
import time

import pytest
from django.db import transaction

from inbox.live import publish
from inbox.live.store import MemoryStore


def received(store, channels: list[str], send) -> list[tuple[str, dict]]:
    """What the channels receive while `send()` runs."""
    got: list[tuple[str, dict]] = []
    if isinstance(store, MemoryStore):
        stop = store.listen(lambda channel, message: got.append((channel, json.loads(message))))
        send()
        stop()
        return got
    pubsub = store.client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*channels)
    pubsub.get_message(timeout=0.2)
    send()
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message:
            got.append((message["channel"], json.loads(message["data"])))
    pubsub.close()
    return sorted(got, key=lambda item: item[0])


@pytest.mark.django_db(transaction=True)
def test_each_user_gets_the_event_once_after_commit(live_store):
    channels = [publish.user_channel(1), publish.user_channel(2), publish.user_channel(3)]

    def send():
        with transaction.atomic():
            publish.to_users([2, 1, 2], "letters", {"account": 5, "sessions": [9]})

    got = received(live_store, channels, send)
    event = {"event": "letters", "data": {"account": 5, "sessions": [9]}}
    assert got == [(channels[0], event), (channels[1], event)]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_nothing(live_store):
    def send():
        with pytest.raises(RuntimeError), transaction.atomic():
            publish.to_users([1], "letters", {})
            raise RuntimeError

    assert received(live_store, [publish.user_channel(1)], send) == []


def test_event_names_are_checked():
    with pytest.raises(ValueError):
        publish.to_users([1], "bad\nevent: injected", {})
