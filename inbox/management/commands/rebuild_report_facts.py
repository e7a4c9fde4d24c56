from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts.models import Account
from inbox.models import Session
from inbox.progress import progress_bar
from inbox.reports import facts


class Command(BaseCommand):
    help = (
        "Recompute the reports' facts (episodes, replies, letters per hour) from the messages, "
        "account by account, 500 sessions per transaction. Safe while the inbox and sync run: "
        "a session changed meanwhile is folded by its own transaction before or after its batch."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", help="Only this account's app id.")

    def handle(self, *args, account=None, **options) -> None:
        accounts = Account.objects.order_by("pk")
        if account:
            accounts = accounts.filter(app_id=account)
        accounts = list(accounts)
        total = Session.objects.filter(account__in=accounts).count()
        with progress_bar(self.stdout, total=total, unit="sessions") as bar:
            for each in accounts:
                for batch in facts.session_batches(each.pk):
                    facts.rebuild_sessions(batch)
                    bar.update(len(batch))
                facts.rebuild_hours(each.pk)
        self.stdout.write(
            f"Rebuilt the report facts of {total} session(s) in {len(accounts)} account(s)."
        )
