"""Rebuild the search tokens: the GIN indexes over inbox_search_vector() (migrations 0009, 0010).

The tokens live in expression indexes, which PostgreSQL keeps current on every insert and update,
so this is needed only after the function's definition changes (a migration that replaces it) or
to compact a bloated index. Each index is rebuilt with REINDEX CONCURRENTLY, so search and sync
keep running meanwhile; progress comes from pg_stat_progress_create_index.
"""

from __future__ import annotations

import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from tqdm import tqdm

# The nicknames' index is on inbox_sessionname, the narrow table of search names (migration 0018).
SEARCH_INDEXES = ("inbox_message_search_vector", "inbox_sessionname_nickname_vector")


class Command(BaseCommand):
    help = (
        "Rebuild the search indexes (message text and peer nicknames) with REINDEX "
        "CONCURRENTLY, showing progress. PostgreSQL only; SQLite searches without them."
    )

    def handle(self, *args, **options) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to rebuild: search on this database has no token index.")
            return
        for name in SEARCH_INDEXES:
            started = time.monotonic()
            self._reindex(name)
            self.stdout.write(f"Rebuilt {name} in {time.monotonic() - started:.1f} s.")

    def _reindex(self, name: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            if not cursor.fetchone()[0]:
                raise CommandError(f"index {name} is missing: run manage.py migrate first")
        outcome: dict[str, object] = {}

        def reindex() -> None:
            # Its own connection (REINDEX CONCURRENTLY cannot run in a transaction block), so
            # that this one stays free to read the progress view.
            own = connections.create_connection("default")
            try:
                own.ensure_connection()
                outcome["pid"] = own.connection.info.backend_pid
                with own.cursor() as cursor:
                    cursor.execute(f"REINDEX INDEX CONCURRENTLY {name}")
            except Exception as exc:  # reported by the main thread
                outcome["error"] = exc
            finally:
                own.close()

        worker = threading.Thread(target=reindex, name=f"reindex-{name}")
        worker.start()
        bar = tqdm(desc=name, unit="block", file=sys.stderr, disable=not sys.stderr.isatty())
        while worker.is_alive():
            worker.join(0.5)
            done, total = self._progress(outcome.get("pid"))
            if total:
                bar.total = total
                bar.n = done
                bar.refresh()
        bar.close()
        if "error" in outcome:
            raise CommandError(f"rebuilding {name} failed: {outcome['error']}")

    def _progress(self, pid) -> tuple[int, int]:
        if pid is None:
            return 0, 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT GREATEST(blocks_done, tuples_done), GREATEST(blocks_total, tuples_total) "
                "FROM pg_stat_progress_create_index WHERE pid = %s",
                [pid],
            )
            row = cursor.fetchone()
        return row or (0, 0)
