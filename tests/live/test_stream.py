"""The server-sent events stream under ASGI: subscribed before its first byte, every published
event of its own user and nobody else's, keep-alives between them, an end after its time."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from inbox.live import stream
from inbox.live.publish import user_channel

EVENTS = reverse("inbox:live:events")


def message(event: str, data: dict) -> str:
    return json.dumps({"event": event, "data": data})


@pytest.mark.django_db
def test_a_tab_receives_its_users_events_and_no_one_elses(member, colleague, live_store):
    async def run() -> list[bytes]:
        client = AsyncClient()
        await client.aforce_login(member)
        response = await client.get(EVENTS)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response["Cache-Control"].startswith("max-age=0")
        chunks = aiter(response.streaming_content)
        received = [await anext(chunks)]
        publish = sync_to_async(live_store.publish)
        await publish([user_channel(colleague.pk)], message("notification", {"kind": "theirs"}))
        await publish([user_channel(member.pk)], message("notification", {"kind": "王芳"}))
        # Keep-alives may come first (Redis answers the subscription with one).
        while not received[-1].startswith(b"data:"):
            received.append(await asyncio.wait_for(anext(chunks), 2))
        await chunks.aclose()
        return received

    received = async_to_sync(run)()
    first, event = received[0], received[-1]
    assert first == b"retry: 2000\n: connected\n\n"
    assert set(received[1:-1]) <= {b": keep-alive\n\n"}
    assert json.loads(event.decode().removeprefix("data: ")) == {
        "event": "notification",
        "data": {"kind": "王芳"},
    }


@pytest.mark.django_db
def test_a_signed_out_tab_gets_403(live_store):
    async def run():
        return (await AsyncClient().get(EVENTS)).status_code

    assert async_to_sync(run)() == 403


def test_the_stream_keeps_alive_and_ends_after_its_time(live_store, settings):
    settings.LIVE_SSE_KEEPALIVE_SECONDS = 0.05
    settings.LIVE_SSE_MAX_SECONDS = 0.2

    async def run() -> list[bytes]:
        return [chunk async for chunk in stream.user_events(1)]

    chunks = async_to_sync(run)()
    assert chunks[0].startswith(b"retry:")
    assert set(chunks[1:]) == {b": keep-alive\n\n"}
    assert 2 <= len(chunks) <= 6


def test_the_stream_is_off_when_the_setting_says_so(member, client, settings):
    settings.LIVE_SSE = False
    client.force_login(member)
    assert client.get(EVENTS).status_code == 204
