"""Fill in peer nicknames from contactList for every session that has none."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.models import Account
from inbox import contacts
from inbox.models import Session
from inbox.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Look up the nickname of every peer whose sessions have none (contactList, "
        f"{contacts.LOOKUP_THREADS} calls in flight) and store it, {contacts.BATCH_SIZE} "
        "sessions per UPDATE. Safe to run while the inbox is in use, and to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--account", metavar="APP_ID", help="Only this account's sessions (default: all)."
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=contacts.LOOKUP_THREADS,
            help=f"contactList calls in flight (default {contacts.LOOKUP_THREADS}).",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=contacts.LOOKUP_PROCESSES,
            help="Processes sharing the sessions, each with its own threads (PostgreSQL; "
            f"default {contacts.LOOKUP_PROCESSES}, one per core up to 4).",
        )
        parser.add_argument("--batch-size", type=int, default=contacts.BATCH_SIZE)

    def handle(
        self, *args, account: str | None, threads: int, processes: int, batch_size: int, **options
    ) -> None:
        if min(threads, processes, batch_size) < 1:
            raise CommandError("--threads, --processes and --batch-size must be at least 1")
        sessions = Session.objects.all()
        if account:
            found = Account.objects.filter(app_id=account).first()
            if found is None:
                raise CommandError(f"no account with app id {account!r}")
            sessions = sessions.filter(account=found)
        if connection.vendor == "postgresql":
            # A backfill usually follows a big sync: with statistics from before it, the planner
            # takes the unnamed sessions for a handful and plans each batch's read and UPDATE as
            # nested loops over all of them (seconds a batch instead of milliseconds).
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Session._meta.db_table}")
        total = sessions.filter(peer_nickname="").exclude(peer_username="").count()
        started = time.monotonic()
        with progress_bar(self.stdout, total=total, unit="sessions") as bar:
            named = contacts.backfill_nicknames(
                sessions,
                batch_size=batch_size,
                threads=threads,
                processes=processes,
                on_batch=lambda done, _named: bar.update(done),
            )
        seconds = time.monotonic() - started
        self.stdout.write(
            f"{named} of {total} unnamed session(s) named in {seconds:.1f} s "
            f"({total / seconds if seconds else 0:,.0f} sessions/s)"
        )
