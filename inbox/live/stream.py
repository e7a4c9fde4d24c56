"""Server-sent events: one connection per tab, carrying what publish.to_users sends its user.

The connection subscribes to the user's channel (Redis pub/sub, or this process's listeners on
the embedded default) and writes each message as an SSE event; between messages a comment line
every LIVE_SSE_KEEPALIVE_SECONDS keeps proxies from closing it, and after LIVE_SSE_MAX_SECONDS it
ends (the browser reconnects within its retry time), so a user signed out meanwhile is not
served for long. It is an async generator: under an ASGI server thousands wait on one process's
event loop; under WSGI each would hold a worker for its whole life, so views.events refuses
there (the tabs keep polling).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from django.conf import settings

from inbox.live.publish import user_channel
from inbox.live.store import MemoryStore, get_store

# How soon the browser reconnects after a connection ends, in milliseconds.
RECONNECT_MS = 2000

NextMessage = Callable[[float], Awaitable[str | None]]


async def user_events(user_id: int) -> AsyncIterator[bytes]:
    """The event stream of one tab of `user_id`, as bytes to send."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.LIVE_SSE_MAX_SECONDS
    async with _subscription(user_channel(user_id)) as next_message:
        # Subscribed before the first byte: an event published once the tab sees the
        # connection open is not missed.
        yield f"retry: {RECONNECT_MS}\n: connected\n\n".encode()
        while (left := deadline - loop.time()) > 0:
            message = await next_message(min(settings.LIVE_SSE_KEEPALIVE_SECONDS, left))
            yield b": keep-alive\n\n" if message is None else sse_event(message)


def sse_event(message: str) -> bytes:
    """A published message as one SSE event: its JSON ({"event": name, "data": {...}}) as the
    data line. Unnamed, so the browser's one `message` listener sees every kind (live.js
    dispatches `live:<event>`); json.dumps writes no line breaks, so it cannot break the
    framing."""
    return b"data: " + message.encode() + b"\n\n"


def _subscription(channel: str):
    store = get_store()
    if isinstance(store, MemoryStore):
        return _memory_subscription(store, channel)
    return _redis_subscription(store.url, channel)


@asynccontextmanager
async def _redis_subscription(url: str, channel: str) -> AsyncIterator[NextMessage]:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)

        async def next_message(timeout: float) -> str | None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            return message["data"] if message else None

        yield next_message
    finally:
        await pubsub.aclose()
        await client.aclose()


@asynccontextmanager
async def _memory_subscription(store: MemoryStore, channel: str) -> AsyncIterator[NextMessage]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def deliver(published_on: str, message: str) -> None:
        # Called in the publishing thread; the queue belongs to this connection's event loop.
        if published_on == channel:
            loop.call_soon_threadsafe(queue.put_nowait, message)

    stop = store.listen(deliver)

    async def next_message(timeout: float) -> str | None:
        try:
            return await asyncio.wait_for(queue.get(), timeout)
        except TimeoutError:
            return None

    try:
        yield next_message
    finally:
        stop()
