"""The README's run command, `manage.py demo`, as a new user runs it: on the embedded defaults
(SQLite, the filesystem broker) in an empty data folder, it brings up web, a real Celery worker and
beat; sandbox letters reach the database within 10 seconds with nothing done by hand; Ctrl-C
(SIGINT) or SIGTERM stops every process it started.

Each test takes some 15 seconds: most of it is the worker finishing its work on the way out."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from accounts.sandbox import LIVE_TEXTS

FIRST_LETTERS_WITHIN = 10.0
STOP_WITHIN = 40.0
# What the children must not inherit from the test run: the demo runs on its own defaults.
NOT_INHERITED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_KEY_PREFIX",
    "DJANGO_SETTINGS_MODULE",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> dict[int, str]:
    """Every live process below `pid`, with its command line (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            try:
                found[child] = (Path("/proc") / str(child) / "cmdline").read_bytes().decode()
            except OSError:
                continue
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Demo:
    process: subprocess.Popen
    data_dir: Path
    port: int
    output: Path
    started: float

    def letters(self, after_id: int = 0) -> list[tuple[int, str]]:
        """Letters in the demo's database, read through a connection of our own."""
        try:
            with sqlite3.connect(f"file:{self.data_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
                return db.execute(
                    "SELECT id, content FROM inbox_message WHERE id > ? ORDER BY id", [after_id]
                ).fetchall()
        except sqlite3.Error:  # not created or not migrated yet
            return []

    def rows_and_distinct_ids(self) -> tuple[int, int]:
        with sqlite3.connect(f"file:{self.data_dir / 'db.sqlite3'}?mode=ro", uri=True) as db:
            return db.execute(
                # Upstream letters only: the demo's history also has activity lines (no id).
                "SELECT COUNT(new_msg_id), COUNT(DISTINCT new_msg_id) FROM inbox_message"
            ).fetchone()

    def wait_for(self, condition, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"demo exited early:\n{self.log()}"
            result = condition()
            if result:
                return result
            time.sleep(0.1)
        pytest.fail(f"{what} not within {timeout} s:\n{self.log()}")

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=STOP_WITHIN)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


@pytest.fixture
def start_demo(tmp_path) -> Iterator:
    started: list[Demo] = []

    def start(data_dir: Path = tmp_path / "data") -> Demo:
        env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
        env["FINDER_DATA_DIR"] = str(data_dir)
        port = free_port()
        output = tmp_path / f"demo-{len(started)}.log"
        command = [
            sys.executable,
            "manage.py",
            "demo",
            f"--port={port}",
            f"--sandbox-port={free_port()}",
        ]
        with output.open("w") as out:
            process = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        demo = Demo(process, data_dir, port, output, time.monotonic())
        started.append(demo)
        return demo

    yield start
    for demo in started:
        if demo.process.poll() is None:  # a failed test: leave nothing behind
            for pid in descendants(demo.process.pid):
                os.kill(pid, signal.SIGKILL)
            demo.process.kill()
            demo.process.wait()


def test_demo_brings_up_web_worker_and_beat_and_letters_arrive_with_no_manual_step(start_demo):
    demo = start_demo()

    first = demo.wait_for(demo.letters, FIRST_LETTERS_WITHIN, "the first letters")
    assert time.monotonic() - demo.started < FIRST_LETTERS_WITHIN
    # And they keep coming: one the sandbox writes after the start, fetched by beat's schedule.
    demo.wait_for(
        lambda: any(text in LIVE_TEXTS for _, text in demo.letters(first[-1][0])),
        15,
        "a letter written after the start",
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{demo.port}/healthz", timeout=5) as response:
        assert response.status == 200
    processes = descendants(demo.process.pid)
    commands = " ".join(processes.values())
    assert "runserver" in commands
    assert "worker" in commands
    assert "beat" in commands
    assert "demo-admin / " in demo.log()
    assert "demo-agent / " in demo.log()

    assert demo.stop(signal.SIGINT) == 0

    time.sleep(0.2)
    assert [pid for pid in processes if alive(pid)] == []
    assert "Demo stopped." in demo.log()


def test_a_restarted_demo_shows_new_letters_again_and_sigterm_stops_it(start_demo, tmp_path):
    first_run = start_demo()
    first_run.wait_for(first_run.letters, FIRST_LETTERS_WITHIN, "the first letters")
    processes = descendants(first_run.process.pid)
    assert first_run.stop(signal.SIGTERM) == 0
    time.sleep(0.2)
    assert [pid for pid in processes if alive(pid)] == []
    stored = first_run.letters()
    first_rows, _ = first_run.rows_and_distinct_ids()

    second_run = start_demo(first_run.data_dir)

    second_run.wait_for(
        lambda: second_run.letters(stored[-1][0]), FIRST_LETTERS_WITHIN, "new letters"
    )
    rows, distinct = second_run.rows_and_distinct_ids()
    # The history was read again and nothing doubled (upstream letters only: activity lines and
    # notes have no NewMsgId).
    assert rows == distinct > first_rows
    assert second_run.stop(signal.SIGTERM) == 0
