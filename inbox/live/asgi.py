"""The events stream as a lean ASGI app in front of Django's (inbox/asgi.py wraps it).

Through Django's ASGI handler every request gets a thread of its own for its synchronous parts
(the session and user lookup, the middleware) and keeps it, and that thread's database
connection, for as long as the response lasts: for a stream that is minutes, and PostgreSQL's
connections run out at about a hundred open tabs. Here the stream authenticates in the shared
thread pool (the session and its user: two queries, the connection handed back at once) and
then waits on Redis alone, so one process holds thousands of tabs.

Everything else goes to Django unchanged.
"""

from __future__ import annotations

import asyncio
from http.cookies import CookieError, SimpleCookie
from importlib import import_module
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import auth
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from django.urls import reverse

from inbox.live import stream


def with_live_events(django_app):
    """An ASGI app that serves the live events path itself and passes the rest to Django."""
    events_path = None

    async def app(scope, receive, send) -> None:
        nonlocal events_path
        if events_path is None:
            events_path = reverse("inbox:live:events")
        if scope["type"] == "http" and scope["path"] == events_path and settings.LIVE_SSE:
            await serve_events(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app


async def serve_events(scope, receive, send) -> None:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    if scope["method"] != "GET":
        await _plain(send, 405, b"GET only")
        return
    host, _port = split_domain_port(headers.get("host", ""))
    if not validate_host(host, settings.ALLOWED_HOSTS):
        await _plain(send, 400, b"bad host")
        return
    user_id = await sync_to_async(signed_in_user_id, thread_sensitive=False)(
        _session_key(headers.get("cookie", ""))
    )
    if user_id is None:
        await _plain(send, 403, b"sign in again")
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache, no-store"),
                # Proxies (nginx) must pass each event on as it is written.
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    await _stream_until_disconnect(stream.user_events(user_id), receive, send)


async def _stream_until_disconnect(events, receive, send) -> None:
    async def pump() -> None:
        async for chunk in events:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    pumping = asyncio.ensure_future(pump())
    listening = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait([pumping, listening], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, listening):
            task.cancel()
        await asyncio.gather(pumping, listening, return_exceptions=True)


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _session_key(cookie_header: str) -> str | None:
    try:
        cookies = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel else None


def signed_in_user_id(session_key: str | None) -> int | None:
    """Whose session this is, as Django's authentication middleware would tell (an expired
    session, a changed password, an inactive user: nobody). Runs in a pool thread; its database
    connection is handed back as a request's would be."""
    if not session_key:
        return None
    close_old_connections()
    try:
        engine = import_module(settings.SESSION_ENGINE)
        request = SimpleNamespace(session=engine.SessionStore(session_key))
        user = auth.get_user(request)
        return user.pk if user.is_authenticated else None
    finally:
        close_old_connections()


async def _plain(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
