"""Make the question -> answer pairs of suggested replies again from the stored letters."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.models import Account
from inbox.suggestions import pairing


class Command(BaseCommand):
    help = (
        "Rebuild the pairs suggested replies are ranked from (every account, or one): after "
        "installing the feature on a database with history, or after a change to the pairing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", metavar="APP_ID", help="only this account")

    def handle(self, *args, account: str | None, **options):
        account_ids = None
        if account:
            found = Account.objects.filter(app_id=account).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"no account with app id {account}")
            account_ids = [found]
        with tqdm(
            total=pairing.rebuild_size(account_ids),
            unit="letter",
            disable=options["verbosity"] == 0,
        ) as bar:
            pairs = pairing.rebuild(account_ids, advance=bar.update)
        self.stdout.write(f"{pairs} question -> answer pair(s)")
