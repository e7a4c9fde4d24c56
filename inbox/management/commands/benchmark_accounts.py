"""How many accounts one sync worker keeps polled when nothing is new.

The sandbox upstream runs in a process of its own with `--accounts` accounts whose logs are
empty. Throwaway Accounts point at it and are synced once (so each has its cursor). Then a real
Celery worker process (`celery -A inbox worker -P solo`, one process, the `sync` queue, the
configured broker) is given `--rounds` rounds of one sync_account task per account, and its CPU
time (user + system, from /proc) is read before and after: CPU per empty poll includes the task's
trip through the broker, the account's lease, the HTTP call to the sandbox and the bookkeeping.
Accounts per worker core = the poll interval / CPU per poll.

It also shows beat's side: the plan and time of the due-accounts query with `--idle-accounts`
more accounts that are not due, which an index must keep from being read.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import SandboxServer, SandboxState
from inbox import tasks
from inbox.sync import sync_account

TOKEN = "benchmark-accounts-token"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Command(BaseCommand):
    help = (
        "Measure the CPU one sync worker spends per empty poll (broker, task, HTTP call to the "
        "sandbox, bookkeeping) and so how many accounts it keeps at a poll interval; and the "
        "due-accounts query beat runs. Uses throwaway accounts it deletes afterwards."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--accounts", type=int, default=200, help="Accounts polled.")
        parser.add_argument("--rounds", type=int, default=5, help="Polls per account, timed.")
        parser.add_argument(
            "--interval",
            type=float,
            default=settings.SYNC_DEFAULT_INTERVAL_SECONDS,
            help="Poll interval in seconds (default SYNC_DEFAULT_INTERVAL_SECONDS).",
        )
        parser.add_argument(
            "--idle-accounts",
            type=int,
            default=20000,
            help="Accounts not due, added for the due-query plan (default 20000).",
        )

    def handle(
        self, *args, accounts: int, rounds: int, interval: float, idle_accounts: int, **options
    ) -> None:
        if min(accounts, rounds) < 1 or interval <= 0 or idle_accounts < 0:
            raise CommandError("--accounts and --rounds must be at least 1, --interval above 0")
        prefix = f"benchmark-accounts-{uuid.uuid4().hex[:8]}"
        app_ids = [f"{prefix}-{n}" for n in range(accounts)]
        connection.close()  # the sandbox process must not share this process's connection
        ready = multiprocessing.Queue()
        sandbox = multiprocessing.Process(target=_serve_sandbox, args=(ready, app_ids), daemon=True)
        sandbox.start()
        base_url = f"{ready.get(timeout=30)}/finder/v2/api"
        worker = None
        try:
            Account.objects.bulk_create(
                Account(name=app_id, app_id=app_id, token=TOKEN, base_url=base_url)
                for app_id in app_ids
            )
            polled = list(Account.objects.filter(app_id__startswith=prefix))
            for account in polled:
                sync_account(account)  # its cursor: every later poll finds nothing new
            self.stdout.write(
                f"{accounts} accounts on the sandbox upstream, broker {_broker()}, "
                f"one worker process (solo pool)."
            )
            worker = _start_worker()
            self._poll_round(polled)  # warm-up: imports, connections, first queue declarations
            started = _cpu_seconds(worker.pid)
            wall = time.monotonic()
            for _ in range(rounds):
                self._poll_round(polled)
            cpu = _cpu_seconds(worker.pid) - started
            wall = time.monotonic() - wall
            polls = accounts * rounds
            per_poll = cpu / polls
            self.stdout.write(
                f"{polls} empty polls: worker CPU {cpu:.2f} s ({per_poll * 1000:.2f} ms a poll), "
                f"wall {wall:.1f} s ({polls / wall:,.0f} polls/s)"
            )
            self.stdout.write(
                f"Accounts one worker core keeps at a {interval:g} s interval: "
                f"{interval / per_poll:,.0f}"
            )
            self._due_query(prefix, idle_accounts, base_url)
        finally:
            if worker:
                worker.terminate()
                worker.wait(timeout=30)
            sandbox.terminate()
            Account.objects.filter(app_id__startswith=prefix).delete()

    def _poll_round(self, accounts: list[Account]) -> None:
        """One sync_account task per account through the broker; back when all have finished."""
        since = timezone.now()
        for account in accounts:
            tasks.sync_account.delay(account.pk)
        deadline = time.monotonic() + 60 + len(accounts) * 0.5
        pending = {account.pk for account in accounts}
        while pending:
            if time.monotonic() > deadline:
                raise CommandError(f"{len(pending)} polls did not finish; is the worker running?")
            time.sleep(0.2)
            done = Account.objects.filter(pk__in=pending, last_success_at__gte=since)
            pending -= set(done.values_list("pk", flat=True))

    def _due_query(self, prefix: str, idle_accounts: int, base_url: str) -> None:
        later = timezone.now() + timedelta(days=1)
        Account.objects.bulk_create(
            (
                Account(
                    name=f"{prefix}-idle-{n}",
                    app_id=f"{prefix}-idle-{n}",
                    token=TOKEN,
                    base_url=base_url,
                    next_sync_at=later,
                )
                for n in range(idle_accounts)
            ),
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Account._meta.db_table}")
        due = Account.objects.due_for_sync().values_list("pk", flat=True)
        total = Account.objects.count()
        started = time.perf_counter()
        count = len(list(due))
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"\nBeat's due-accounts query over {total:,} accounts, {count:,} due: "
            f"{seconds * 1000:.1f} ms"
        )
        for line in due.explain().splitlines():
            self.stdout.write(f"  {line}")


def _serve_sandbox(ready, app_ids: list[str]) -> None:
    state = SandboxState()
    for app_id in app_ids:
        state.add_account(app_id, TOKEN, example=False, script=False)
    server = SandboxServer(state)
    ready.put(state.base_url)
    server.serve_forever()


def _start_worker() -> subprocess.Popen:
    queue = settings.CELERY_TASK_ROUTES["inbox.tasks.sync_account"]["queue"]
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "inbox", "worker", "-P", "solo"),
            *("-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat"),
            *("--loglevel", "warning"),
        ],
        cwd=Path(settings.BASE_DIR),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _broker() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0]
