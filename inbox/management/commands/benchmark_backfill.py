"""A history backfill at scale, measured end to end against the sandbox upstream.

The sandbox runs in a process of its own with an account whose history (`--letters` letters over
`--sessions` peers) it makes page by page on demand. For each checkpoint a throwaway account is
synced by a real `manage.py sync --account …` process, with SYNC_MAX_PAGES_PER_PASS large, and
that process's peak RSS is read from the kernel when it exits: a worker whose memory grows with
what it stores would show it between the checkpoints. Then `manage.py backfill_nicknames` names
the last checkpoint's sessions through contactList, timed. The accounts are deleted afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.models import Account
from accounts.sandbox import SandboxServer, SandboxState
from inbox import contacts
from inbox.models import Message, Session

TOKEN = "benchmark-backfill-token"
MANAGE = Path(settings.BASE_DIR) / "manage.py"


class Command(BaseCommand):
    help = (
        "Backfill a long history through `manage.py sync` against the sandbox: time and peak "
        "RSS at each checkpoint (default 100,000 and 1,000,000 letters), then time "
        "`backfill_nicknames` over the sessions. Uses throwaway accounts it deletes afterwards."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--checkpoints",
            default="100000,1000000",
            help="Comma-separated history sizes in letters (default 100000,1000000).",
        )
        parser.add_argument(
            "--letters-per-session",
            type=int,
            default=10,
            help="History letters per peer (default 10: 1,000,000 letters, 100,000 sessions).",
        )
        parser.add_argument("--page-size", type=int, default=1000, help="Letters per page.")
        parser.add_argument(
            "--threads", type=int, default=8, help="contactList calls in flight per process."
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=contacts.LOOKUP_PROCESSES,
            help="backfill_nicknames processes (its own default).",
        )

    def handle(
        self,
        *args,
        checkpoints: str,
        letters_per_session: int,
        page_size: int,
        threads: int,
        processes: int,
        **options,
    ) -> None:
        try:
            sizes = [int(size) for size in checkpoints.split(",")]
        except ValueError:
            raise CommandError("--checkpoints must be comma-separated integers") from None
        counts = (letters_per_session, page_size, threads, processes)
        if any(size < 1 for size in sizes) or min(counts) < 1:
            raise CommandError("every size and count must be at least 1")

        accounts = [
            (
                size,
                max(1, size // letters_per_session),
                f"benchmark-backfill-{uuid.uuid4().hex[:12]}",
            )
            for size in sizes
        ]
        connection.close()  # the sandbox process must not share this process's connection
        ready = multiprocessing.Queue()
        sandbox = multiprocessing.Process(
            target=_serve_sandbox, args=(ready, page_size, accounts), daemon=True
        )
        sandbox.start()
        base_url = ready.get(timeout=30)
        created = []
        try:
            self.stdout.write(f"Sandbox upstream at {base_url}, {page_size} letters per page.")
            header = (
                f"{'letters':>9} | {'sessions':>8} | {'seconds':>7} | {'letters/s':>9} | "
                f"{'peak RSS':>8}"
            )
            self.stdout.write(header)
            self.stdout.write("-" * len(header))
            for size, sessions, app_id in accounts:
                account = Account.objects.create(
                    name=f"{app_id} (temporary)",
                    app_id=app_id,
                    token=TOKEN,
                    base_url=f"{base_url}/finder/v2/api",
                )
                created.append(account)
                seconds, peak_kb = _run_measured(["sync", "--account", app_id])
                stored = Message.objects.filter(account=account).count()
                if stored != size:
                    raise CommandError(f"sync stored {stored} of {size} letters")
                self.stdout.write(
                    f"{size:>9,} | {sessions:>8,} | {seconds:>7.1f} | {size / seconds:>9,.0f} | "
                    f"{peak_kb / 1024:>6.0f} MB"
                )
            _, sessions, app_id = accounts[-1]
            seconds, _ = _run_measured(
                [
                    "backfill_nicknames",
                    *("--account", app_id),
                    *("--threads", str(threads)),
                    *("--processes", str(processes)),
                ]
            )
            named = Session.objects.filter(account=created[-1]).exclude(peer_nickname="").count()
            self.stdout.write(
                f"\nbackfill_nicknames: {named:,} of {sessions:,} sessions named in "
                f"{seconds:.1f} s ({named / seconds:,.0f} sessions/s, "
                f"{processes} process(es) × {threads} calls in flight)"
            )
        finally:
            sandbox.terminate()
            for account in created:
                account.delete()


def _run_measured(arguments: list[str]) -> tuple[float, int]:
    """Run `manage.py <arguments>` to completion: (seconds, its peak RSS in KiB)."""
    env = {**os.environ, "SYNC_MAX_PAGES_PER_PASS": "1000000"}
    with tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), *arguments],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            errors.seek(0)
            lines = errors.read().decode(errors="replace").strip().splitlines()
            raise CommandError(f"{arguments[0]} failed: {lines[-1] if lines else status}")
    return seconds, usage.ru_maxrss  # KiB on Linux


def _serve_sandbox(ready, page_size: int, accounts: list[tuple[int, int, str]]) -> None:
    state = SandboxState(page_size=page_size)
    for size, sessions, app_id in accounts:
        state.add_account(app_id, TOKEN, example=False, script=False)
        state.add_history(app_id, letters=size, sessions=sessions)
    server = SandboxServer(state)
    ready.put(state.base_url)
    server.serve_forever()
