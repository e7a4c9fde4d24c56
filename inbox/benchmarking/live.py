"""benchmark_live: the live transport measured end to end on this machine.

1. Latency: `agents` agents (members of one benchmark account), each with `tabs` server-sent
   events connections to an ASGI server (uvicorn, started here on inbox.asgi). New conversations
   are stored through sync's store_page one at a time; each commit tells every member (the
   team's "notification" event, published through Redis). The time from the commit (an
   on-commit callback registered before store_page's own) to the event's arrival on each tab
   gives the p50 / p95 / max.
2. Capacity: `connections` more idle connections to the same single uvicorn process, then one
   event to all of them: the process's resident memory before and after, and the time until the
   last connection has it.
3. Database queries of an idle agent, per minute: each request an idle tab makes (list poll,
   thread poll, heartbeat, the events connection) counted in-process, times how often inbox.js
   and live.js make it.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import letter_item
from inbox import browse
from inbox.benchmarking.latency import PLAIN_STATIC_STORAGE
from inbox.live import publish
from inbox.models import Session
from inbox.payloads import parse_sync_page
from inbox.sync import account_lease, store_page

ACCOUNT_APP_ID = "bench-live"
AGENT_PREFIX = "bench-live-agent-"
EVENTS_PATH = "/live/events/"

# How often a tab asks (static/inbox/inbox.js and live.js), per minute.
VISIBLE_POLLS = 60 / 3
HIDDEN_POLLS = 60 / 30
THREAD_HEARTBEATS = 60 / 2
IDLE_HEARTBEATS = 60 / 15


@dataclass
class LatencyResult:
    letters: int
    tabs: int
    delays_ms: list[float] = field(default_factory=list)
    missed: int = 0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.delays_ms)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")


@dataclass
class CapacityResult:
    connections: int
    connected: int
    rss_before_mb: float
    rss_after_mb: float
    broadcast_ms: float
    reached: int


@dataclass
class IdleQueries:
    per_request: dict[str, int]
    visible_thread_tab: float
    hidden_tab: float


# --- the agents ---------------------------------------------------------------------------------


def ensure_agents(count: int) -> tuple[Account, list]:
    """The benchmark account and its `count` agents (made once, reused)."""
    account, _ = Account.objects.get_or_create(
        app_id=ACCOUNT_APP_ID, defaults={"name": "Live benchmark", "token": "bench-live"}
    )
    users = []
    for number in range(count):
        user, _ = get_user_model().objects.get_or_create(
            username=f"{AGENT_PREFIX}{number:02d}", defaults={"first_name": f"坐席{number:02d}"}
        )
        users.append(user)
    account.members.add(*users)
    return account, users


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def new_conversation(account: Account, stamps: list[float]) -> None:
    """One letter from a new viewer through store_page; its commit time goes into `stamps`."""
    new_msg_id = 2**63 + secrets.randbelow(2**63)
    peer = f"v2_bench_live_{new_msg_id}@finder"
    item = letter_item(
        seq=new_msg_id % 10**9,
        new_msg_id=new_msg_id,
        me="v2_bench_live_shop@finder",
        peer=peer,
        is_sender=False,
        msg_type=1,
        content="你好，在吗？",
        create_time=int(time.time()),
        msg_session_id=f"bench-live-{new_msg_id}@findermsg",
    )
    with account_lease(account) as lease:
        expected = Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)
        page = parse_sync_page({"list": [item], "keyBuff": expected or "bench-live"})
        # store_page's transaction becomes a savepoint of this one: the callback below is
        # registered first, so it runs first when the letter commits, before any publish.
        with transaction.atomic():
            transaction.on_commit(lambda: stamps.append(time.perf_counter()))
            store_page(account, page, lease_token=lease, expected=expected)


# --- the ASGI server ----------------------------------------------------------------------------


class Server:
    """uvicorn serving inbox.asgi in a child process, on a free local port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"]}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "inbox.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            env=env,
            cwd=settings.BASE_DIR,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("uvicorn did not start")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- event stream clients (one asyncio loop in a thread) ----------------------------------------


class Tabs:
    """Server-sent events connections; each keeps the arrival times of its events."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.connected = 0
        # The loop holds its tasks weakly: without these references idle readers are collected.
        self.readers: list = []

    def open(self, cookie: str) -> list[float]:
        arrivals: list[float] = []
        self.readers.append(
            asyncio.run_coroutine_threadsafe(self._read(cookie, arrivals), self.loop)
        )
        return arrivals

    async def _read(self, cookie: str, arrivals: list[float]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(
            f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Cookie: {settings.SESSION_COOKIE_NAME}={cookie}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        try:
            while line := await reader.readline():
                if line.startswith(b"data: "):
                    arrivals.append(time.perf_counter())
                elif line.startswith(b": connected"):
                    self.connected += 1
        finally:
            writer.close()

    def wait_connected(self, count: int, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        while self.connected < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.connected

    def close(self) -> None:
        async def cancel_all() -> None:
            readers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


# --- the three measurements ---------------------------------------------------------------------


def measure_latency(
    account: Account, users: list, tabs: Tabs, *, per_agent: int, letters: int, gap: float
) -> LatencyResult:
    streams = [tabs.open(session_cookie(user)) for user in users for _ in range(per_agent)]
    expected = len(streams)
    if tabs.wait_connected(expected, 30) < expected:
        raise RuntimeError(f"only {tabs.connected} of {expected} event streams connected")
    stamps: list[float] = []
    for _ in range(letters):
        new_conversation(account, stamps)
        time.sleep(gap)
    time.sleep(2)
    result = LatencyResult(letters=letters, tabs=expected)
    for index, committed in enumerate(stamps):
        until = stamps[index + 1] if index + 1 < len(stamps) else math.inf
        for arrivals in streams:
            first = next((t for t in arrivals if committed <= t < until), None)
            if first is None:
                result.missed += 1
            else:
                result.delays_ms.append((first - committed) * 1000)
    return result


def measure_capacity(users: list, server: Server, tabs: Tabs, connections: int) -> CapacityResult:
    cookies = [session_cookie(user) for user in users]
    already = tabs.connected
    rss_before = server.rss_mb()
    streams = [tabs.open(cookies[n % len(cookies)]) for n in range(connections)]
    connected = tabs.wait_connected(already + connections, 120) - already
    time.sleep(1)
    rss_after = server.rss_mb()
    sent = time.perf_counter()
    publish.to_users([user.pk for user in users], "benchmark", {"at": "capacity"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(s and s[-1] >= sent for s in streams):
        time.sleep(0.02)
    reached = [s[-1] for s in streams if s and s[-1] >= sent]
    return CapacityResult(
        connections=connections,
        connected=connected,
        rss_before_mb=rss_before,
        rss_after_mb=rss_after,
        broadcast_ms=(max(reached) - sent) * 1000 if reached else float("nan"),
        reached=len(reached),
    )


def measure_idle_queries(user, session: Session) -> IdleQueries:
    """Queries of each request an idle tab makes, with nothing new to answer."""
    # The page is rendered once for its tokens: plain static names need no collectstatic.
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": PLAIN_STATIC_STORAGE}}
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=storages):
        return _idle_queries(user, session)


def _idle_queries(user, session: Session) -> IdleQueries:
    client = Client()
    client.force_login(user)
    htmx = {"HX-Request": "true"}
    page = client.get(session.get_absolute_url()).content.decode()
    thread_token = _attribute(page, f'id="live-viewers-{session.pk}"', "data-live-thread")
    tab_token = _attribute(page, 'id="live"', "data-token")
    since = lambda: browse.to_micros(timezone.now())  # noqa: E731

    def count(send: Callable[[], object]) -> int:
        send()  # the first tab's heartbeat may bring the agent online (the team's hand-off)
        with CaptureQueriesContext(connection) as queries:
            send()
        return len(queries)

    heartbeat = reverse("inbox:live:heartbeat")
    per_request = {
        "list poll (nothing new)": count(
            lambda: client.get(f"{reverse('inbox:sessions_poll')}?since={since()}", headers=htmx)
        ),
        "thread poll (nothing new)": count(
            lambda: client.get(
                f"{reverse('inbox:thread_poll', args=[session.pk])}?"
                + urlencode({"since": since(), "tail": 1, "seen": 1}),
                headers=htmx,
            )
        ),
        "heartbeat, thread open": count(
            lambda: client.post(heartbeat, {"token": thread_token, "tab": "bench-tab-1"})
        ),
        "heartbeat, no thread": count(
            lambda: client.post(heartbeat, {"token": tab_token, "tab": "bench-tab-2"})
        ),
        # The events connection authenticates once (session and user) and then reads Redis
        # only; it reconnects every LIVE_SSE_MAX_SECONDS.
        "events connection (each)": 2,
    }
    reconnects = 60 / settings.LIVE_SSE_MAX_SECONDS
    visible = (
        VISIBLE_POLLS
        * (per_request["list poll (nothing new)"] + per_request["thread poll (nothing new)"])
        + THREAD_HEARTBEATS * per_request["heartbeat, thread open"]
        + reconnects * per_request["events connection (each)"]
    )
    hidden = (
        HIDDEN_POLLS * per_request["list poll (nothing new)"]
        + IDLE_HEARTBEATS * per_request["heartbeat, no thread"]
        + reconnects * per_request["events connection (each)"]
    )
    return IdleQueries(per_request, visible, hidden)


def _attribute(html: str, anchor: str, name: str) -> str:
    start = html.index(anchor)
    value_start = html.index(f'{name}="', start) + len(name) + 2
    return html[value_start : html.index('"', value_start)]


def summary(latency: LatencyResult) -> dict[str, float]:
    delays = latency.delays_ms
    return {
        "p50": statistics.median(delays) if delays else float("nan"),
        "p95": latency.percentile(0.95),
        "max": max(delays, default=float("nan")),
    }
