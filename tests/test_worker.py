"""Real Celery workers: the sync tasks delivered through a broker to a worker, against the sandbox
upstream over HTTP. In-process workers use Redis when CELERY_BROKER_URL is redis:// (CI) and an
in-memory broker otherwise; the crash test runs worker and beat as processes of their own."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.app import setup_default_app
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import EXAMPLE_ACCOUNT_FINDER, PEERS, start_sandbox
from inbox import tasks
from inbox.models import Message, Session
from tests.conftest import SANDBOX_APP_ID, SANDBOX_TOKEN

REDIS_URL = os.environ.get("CELERY_BROKER_URL", "")
ON_REDIS = REDIS_URL.startswith(("redis://", "rediss://"))


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout} s")


def new_msg_ids(sandbox_state, app_id: str) -> set[int]:
    """The NewMsgIds the sandbox holds for an account."""
    return {item["content"]["msg"]["NewMsgId"] for item in sandbox_state.accounts[app_id].letters}


def drop_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


# --- a worker in this process ---------------------------------------------------------------


@pytest.fixture
def worker_app() -> Iterator[Celery]:
    """An app configured like the real one (every CELERY_* setting) on a broker of its own:
    Redis under a key prefix nobody else uses, or memory."""
    app = Celery("inbox-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    prefix = f"finder-test-{uuid.uuid4().hex}:"
    if ON_REDIS:
        app.conf.broker_url = REDIS_URL
        app.conf.broker_transport_options = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "global_keyprefix": prefix,
        }
    else:
        app.conf.broker_url = "memory://"
        app.conf.broker_transport_options = {"polling_interval": 0.05}
    app.conf.worker_hijack_root_logger = False
    app.conf.task_always_eager = False  # tests.settings runs tasks inline; here the queue is real
    with setup_default_app(app):
        yield app
    if ON_REDIS:
        drop_redis_keys(prefix)


@pytest.fixture
def finished(worker_app) -> Iterator[list[str]]:
    """Names of the tasks the worker has finished, in order. Tests wait on this rather than
    polling the database: SQLite's shared in-memory test database locks whole tables, so a read
    from the test would make the worker's writes fail."""
    names: list[str] = []

    def done(sender=None, **kwargs) -> None:
        # The worker thread's own connections, so the test database can be flushed and dropped.
        connections.close_all()
        names.append(sender.name)

    task_postrun.connect(done, weak=False)
    yield names
    task_postrun.disconnect(done)


@pytest.fixture
def worker(worker_app, finished):
    with start_worker(
        worker_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
    ) as running:
        yield running


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_fan_out_and_syncs_the_due_account_end_to_end(
    worker, finished, sandbox_server, sandbox
):
    due = Account.objects.create(
        name="Shop",
        app_id=SANDBOX_APP_ID,
        token=SANDBOX_TOKEN,
        base_url=sandbox_server.base_url,
        own_username=EXAMPLE_ACCOUNT_FINDER,
    )
    sandbox.add_account("wx_not_due", "other-token-3d1e")
    not_due = Account.objects.create(
        name="Later",
        app_id="wx_not_due",
        token="other-token-3d1e",
        base_url=sandbox_server.base_url,
        next_sync_at=timezone.now() + timedelta(hours=1),
    )

    tasks.sync_due_accounts.delay()

    # The fan-out queues the pass; the pass stores the letters and queues the peers' names;
    # naming them queues their avatars' downloads (inbox.viewers), which may still be running.
    wait_until(lambda: "inbox.tasks.fill_peer_nicknames" in finished, 20, "the peers named")
    assert finished[:3] == [
        "inbox.tasks.sync_due_accounts",
        "inbox.tasks.sync_account",
        "inbox.tasks.fill_peer_nicknames",
    ]
    assert set(finished[3:]) <= {"inbox.tasks.fetch_viewer_avatar"}
    upstream_ids = new_msg_ids(sandbox, SANDBOX_APP_ID)
    stored = Message.objects.filter(account=due)
    assert stored.count() == stored.values("new_msg_id").distinct().count() == len(upstream_ids)
    assert set(stored.values_list("new_msg_id", flat=True)) == upstream_ids
    nicknames = {peer.username: peer.nickname for peer in PEERS}
    named = Session.objects.filter(account=due, peer_username__in=nicknames)
    assert {session.peer_username for session in named} == set(nicknames)
    for session in named:
        assert session.peer_nickname == nicknames[session.peer_username]
    due.refresh_from_db()
    assert due.last_success_at is not None and due.failure_streak == 0
    assert not Message.objects.filter(account=not_due).exists()
    assert all(call["body"]["appId"] == SANDBOX_APP_ID for call in sandbox.calls)


@pytest.mark.django_db(transaction=True)
def test_a_worker_pauses_an_account_whose_token_is_rejected(
    worker, finished, sandbox_server, sandbox
):
    account = Account.objects.create(
        name="Shop", app_id=SANDBOX_APP_ID, token=SANDBOX_TOKEN, base_url=sandbox_server.base_url
    )
    sandbox.inject("token_expired")

    tasks.sync_account.delay(account.pk)

    wait_until(lambda: "inbox.tasks.sync_account" in finished, 20, "the pass")
    account.refresh_from_db()
    assert "不可用或已过期" in account.paused_reason
    assert SANDBOX_TOKEN not in account.paused_reason + account.last_error


@pytest.mark.redis
def test_on_redis_a_task_is_redelivered_only_after_it_could_have_finished(worker_app):
    options = worker_app.conf.broker_transport_options
    assert worker_app.conf.broker_url.startswith("redis")
    assert options["visibility_timeout"] > worker_app.conf.task_time_limit
    with worker_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0)


# --- SIGKILL in the middle of a pass -------------------------------------------------------

CRASH_APP_ID = "wx_crash_test"
CRASH_TOKEN = "crash-token-1c9f"
CRASH_LETTERS = 200  # 20 pages of 10
SLOW_PAGE_SECONDS = 0.25
KILL_AFTER_PAGES = 6
LEASE_SECONDS = 3


class World:
    """Worker and beat as processes of their own, on a database and broker of their own (the
    test database when it is PostgreSQL, else an SQLite file; Redis under a private key prefix
    when configured, else the filesystem broker in a temporary folder)."""

    def __init__(self, tmp_path: Path, base_url: str):
        self.tmp_path = tmp_path
        self.processes: dict[str, subprocess.Popen] = {}
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            FINDER_DATA_DIR=str(tmp_path),
            SYNC_LEASE_SECONDS=str(LEASE_SECONDS),
            SYNC_BEAT_SECONDS="0.5",
            PYTHONUNBUFFERED="1",
        )
        if connection.vendor == "postgresql":
            db = connection.settings_dict
            env["DATABASE_URL"] = (
                f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}"
                f"/{db['NAME']}"
            )
            self.sqlite_file = None
        else:
            self.sqlite_file = tmp_path / "crash.sqlite3"
            env["DATABASE_URL"] = f"sqlite:///{self.sqlite_file}"
        self.key_prefix = f"finder-crash-{uuid.uuid4().hex}:"
        if ON_REDIS:
            env["CELERY_BROKER_KEY_PREFIX"] = self.key_prefix
        else:
            env.pop("CELERY_BROKER_URL", None)
        self.env = env
        self.manage("migrate", "-v0")
        self.manage(
            "add_account",
            "--name=Crash test",
            f"--app-id={CRASH_APP_ID}",
            f"--token={CRASH_TOKEN}",
            f"--base-url={base_url}",
        )

    def manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "inbox", *args, "--loglevel=info"],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its pool goes down with it
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name)
        if ON_REDIS:
            drop_redis_keys(self.key_prefix)

    def query(self, sql: str) -> tuple:
        """One row of SQL over a connection of our own (a ? stands for the account's app id)."""
        if self.sqlite_file is None:
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), [CRASH_APP_ID])
                return cursor.fetchone()
        with sqlite3.connect(self.sqlite_file) as db:
            return db.execute(sql, [CRASH_APP_ID]).fetchone()

    def letters(self) -> tuple[int, int]:
        return self.query(
            "SELECT COUNT(*), COUNT(DISTINCT m.new_msg_id) FROM inbox_message m "
            "JOIN accounts_account a ON a.id = m.account_id WHERE a.app_id = ?"
        )

    def lease_held(self) -> bool:
        return self.query("SELECT sync_lease_token FROM accounts_account WHERE app_id = ?")[0] != ""


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_pass_then_a_new_worker_loses_and_duplicates_nothing(tmp_path, capsys):
    """The Done-when of issue 3, as a test. Run with -s to see the account of it."""
    sandbox = start_sandbox()
    state = sandbox.state
    state.add_account(CRASH_APP_ID, CRASH_TOKEN, example=False, script=False)
    for n in range(CRASH_LETTERS):
        state.add_letter(CRASH_APP_ID, f"第 {n + 1} 封私信", peer=PEERS[n % len(PEERS)])
    state.inject("slow", seconds=SLOW_PAGE_SECONDS, times=10**6)
    upstream_ids = new_msg_ids(state, CRASH_APP_ID)
    world = World(tmp_path, sandbox.base_url)
    report = []

    def say(line: str) -> None:
        report.append(line)
        with capsys.disabled():
            print(line)

    def pages_served() -> int:
        return len(state.calls_to("/finder/syncPrivateLetterMsg"))

    try:
        broker = "Redis" if ON_REDIS else "the filesystem broker"
        say(
            f"\nsandbox holds {len(upstream_ids)} letters, {CRASH_LETTERS // 10} pages of 10, each "
            f"page {SLOW_PAGE_SECONDS} s slow; {connection.vendor} and {broker}; "
            f"SYNC_LEASE_SECONDS={LEASE_SECONDS}"
        )
        world.start("beat", "beat")
        first = world.start("worker-1", "worker", "--concurrency=2")
        say(f"worker 1 (pid {first.pid}) and beat started")
        wait_until(lambda: pages_served() >= KILL_AFTER_PAGES, 60, "the pass under way")

        world.kill("worker-1")
        killed_at = time.monotonic()
        stored, distinct = world.letters()
        say(
            f"SIGKILL to worker 1 and its pool after {pages_served()} page requests: "
            f"{stored} letters stored, lease still held: {world.lease_held()}"
        )
        assert 0 < stored < CRASH_LETTERS
        assert world.lease_held()

        second = world.start("worker-2", "worker", "--concurrency=2")
        say(f"worker 2 (pid {second.pid}) started")
        wait_until(lambda: world.letters()[0] >= CRASH_LETTERS, 90, "every letter stored")
        say(f"all letters in {time.monotonic() - killed_at:.1f} s after the kill")
        time.sleep(2 * LEASE_SECONDS)  # more passes come and go; none may add anything
        stored, distinct = world.letters()
        say(
            f"{2 * LEASE_SECONDS} s later: {stored} rows, {distinct} distinct NewMsgIds, "
            f"{len(upstream_ids)} letters upstream"
        )
        assert stored == distinct == len(upstream_ids) == CRASH_LETTERS
        say("every letter stored exactly once")
    finally:
        world.stop_all()
        sandbox.shutdown()
