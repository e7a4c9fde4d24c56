from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from inbox.progress import progress_bar
from inbox.sync import PageResult, PassResult, SyncAlreadyRunning, SyncFailed, sync_account


class Command(BaseCommand):
    help = (
        "Pull new private letters now: one synchronous pass per account (the code the Celery "
        "task runs), paging until caught up. Exits 1 with a one-line reason on failure. On a "
        "terminal it shows a progress bar per account: pages, letters, letters/s."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--account",
            metavar="APP_ID",
            help="Sync only this account (even if disabled or paused); default: every enabled, "
            "unpaused account.",
        )

    def handle(self, *args, account: str | None, **options) -> None:
        if account:
            accounts = list(Account.objects.filter(app_id=account))
            if not accounts:
                raise CommandError(f"no account with app id {account!r}")
        else:
            accounts = list(Account.objects.filter(enabled=True, paused_reason=""))
        failures = []
        for item in accounts:
            try:
                total = self._sync_until_caught_up(item)
            except (SyncFailed, SyncAlreadyRunning) as exc:
                failures.append(f"{item.app_id}: {exc}")
                continue
            self.stdout.write(f"{item.app_id}: {total.summary()}")
        if failures:
            raise CommandError("sync failed: " + "; ".join(failures))

    def _sync_until_caught_up(self, account: Account) -> PassResult:
        total = PassResult()
        pages = 0
        with progress_bar(self.stdout, unit="letters") as bar:

            def page_stored(page: PageResult) -> None:
                nonlocal pages
                pages += 1
                bar.update(page.new_messages)
                bar.set_postfix_str(f"{account.app_id}: {pages} page(s)")

            while not total.caught_up:
                total.extend(sync_account(account, on_page=page_stored))
        return total
