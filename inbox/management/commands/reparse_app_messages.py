"""Fill in the share cards of app messages stored before cards (see inbox.card_backfill)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inbox.card_backfill import app_message_count, reparse_app_messages
from inbox.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Read every stored app message (MsgType 49) again as sync reads it now, filling in its "
        "share card (video, live, link…), title and parse notes, in batches. Idempotent: rows "
        "already up to date are not written. Safe while sync and the inbox run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Letters per batch (default 500)."
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        read = changed = previews = 0
        with progress_bar(self.stdout, total=app_message_count(), unit="letters") as bar:
            for batch in reparse_app_messages(batch_size):
                read += batch.read
                changed += batch.changed
                previews += batch.previews
                bar.update(batch.read)
        self.stdout.write(
            f"Read {read} app message(s): {changed} updated, {read - changed} already up to "
            f"date; {previews} session preview(s) refreshed."
        )
