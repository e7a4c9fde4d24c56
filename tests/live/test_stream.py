"""The server-sent events stream as inbox/asgi.py serves it (inbox/live/asgi.py): signed-in
users only, subscribed before its first byte, every event of its own user and nobody else's,
keep-alives between them, an end after its time or when the tab goes away; any other path
goes to Django."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.test import Client
from django.urls import reverse

from inbox.live import stream
from inbox.live.asgi import with_live_events
from inbox.live.publish import user_channel

EVENTS = reverse("inbox:live:events")
pytestmark = pytest.mark.django_db(transaction=True)


class Tab:
    """One request to the wrapped app, driven by hand."""

    def __init__(self, path: str, cookie: str = "", method: str = "GET", host: str = "127.0.0.1"):
        self.passed_on: list[str] = []

        async def django(scope, receive, send) -> None:
            self.passed_on.append(scope["path"])

        self.app = with_live_events(django)
        self.scope = {
            "type": "http",
            "method": method,
            "path": path,
            "headers": [(b"host", host.encode()), (b"cookie", cookie.encode())],
        }
        self.sent: asyncio.Queue = asyncio.Queue()
        self.gone = asyncio.Event()

    async def receive(self) -> dict:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        await self.sent.put(message)

    def start(self) -> asyncio.Future:
        return asyncio.ensure_future(self.app(self.scope, self.receive, self.send))

    async def next(self) -> dict:
        return await asyncio.wait_for(self.sent.get(), 3)


def cookie_of(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def message(event: str, data: dict) -> str:
    return json.dumps({"event": event, "data": data})


def test_a_tab_receives_its_users_events_and_no_one_elses(member, colleague, live_store):
    tab = Tab(EVENTS, cookie_of(member))

    async def run() -> list[bytes]:
        served = tab.start()
        start = await tab.next()
        assert start["status"] == 200
        assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
        body = [(await tab.next())["body"]]
        publish = sync_to_async(live_store.publish)
        await publish([user_channel(colleague.pk)], message("notification", {"kind": "theirs"}))
        await publish([user_channel(member.pk)], message("notification", {"kind": "王芳"}))
        # Keep-alives may come first (Redis answers the subscription with one).
        while not body[-1].startswith(b"data:"):
            body.append((await tab.next())["body"])
        tab.gone.set()  # the tab closes: the stream ends and unsubscribes
        await asyncio.wait_for(served, 3)
        return body

    body = async_to_sync(run)()
    assert body[0] == b"retry: 2000\n: connected\n\n"
    assert set(body[1:-1]) <= {b": keep-alive\n\n"}
    assert json.loads(body[-1].decode().removeprefix("data: ")) == {
        "event": "notification",
        "data": {"kind": "王芳"},
    }
    assert tab.passed_on == []


@pytest.mark.parametrize(
    ("cookie", "method", "host", "status"),
    [
        ("", "GET", "127.0.0.1", 403),
        (f"{settings.SESSION_COOKIE_NAME}=not-a-session", "GET", "127.0.0.1", 403),
        ("", "POST", "127.0.0.1", 405),
        ("", "GET", "evil.example", 400),
    ],
)
def test_a_stream_needs_a_signed_in_get_on_an_allowed_host(cookie, method, host, status):
    tab = Tab(EVENTS, cookie, method, host)

    async def run() -> int:
        await asyncio.wait_for(tab.start(), 3)
        return (await tab.next())["status"]

    assert async_to_sync(run)() == status


def test_a_signed_out_session_gets_no_stream(member, client):
    cookie = cookie_of(member)
    Client(headers={"cookie": cookie}).post(reverse("logout"))
    tab = Tab(EVENTS, cookie)

    async def run() -> int:
        await asyncio.wait_for(tab.start(), 3)
        return (await tab.next())["status"]

    assert async_to_sync(run)() == 403


def test_other_paths_and_a_switched_off_stream_go_to_django(settings):
    tab = Tab("/poll/")
    async_to_sync(tab.app)(tab.scope, tab.receive, tab.send)
    settings.LIVE_SSE = False
    off = Tab(EVENTS)
    async_to_sync(off.app)(off.scope, off.receive, off.send)
    assert (tab.passed_on, off.passed_on) == (["/poll/"], [EVENTS])


def test_the_stream_keeps_alive_and_ends_after_its_time(live_store, settings):
    settings.LIVE_SSE_KEEPALIVE_SECONDS = 0.05
    settings.LIVE_SSE_MAX_SECONDS = 0.2

    async def run() -> list[bytes]:
        return [chunk async for chunk in stream.user_events(1)]

    chunks = async_to_sync(run)()
    assert chunks[0].startswith(b"retry:")
    assert set(chunks[1:]) == {b": keep-alive\n\n"}
    assert 2 <= len(chunks) <= 6


def test_under_wsgi_the_events_address_answers_204(member, client):
    client.force_login(member)
    assert client.get(EVENTS).status_code == 204
