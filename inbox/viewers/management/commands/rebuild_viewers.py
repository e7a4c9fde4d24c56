"""Link every session to its viewer (ViewerSession): for data synced before the viewers app, or
after a repair. Sync links new sessions as it creates them."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from inbox.progress import progress_bar
from inbox.viewers import linking


class Command(BaseCommand):
    help = (
        "Create a viewer for every session's peer and link the session to it, "
        f"{linking.REBUILD_BATCH} sessions per batch. Safe while the inbox is in use, and to run "
        "again (what is linked stays as it is)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=linking.REBUILD_BATCH)

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        started = time.monotonic()
        with progress_bar(self.stdout, total=linking.unlinked_count(), unit="sessions") as bar:
            linked = linking.rebuild_viewers(batch_size=batch_size, on_batch=bar.update)
        self.stdout.write(
            f"{linked} session(s) linked to their viewers in {time.monotonic() - started:.1f} s"
        )
