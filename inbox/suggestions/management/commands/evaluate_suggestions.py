"""How often the team's real answer is among the three suggested replies, on held-out questions."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from inbox.suggestions import evaluation


class Command(BaseCommand):
    help = (
        "Measure suggested replies: for held-out questions of the sandbox's scripted "
        "conversations (or of an account's stored history), how often the answer the team "
        "really gave is the first suggestion (hit@1) or among the three (hit@3)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--conversations", type=int, default=2000, help="scripted conversations to make"
        )
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--account",
            metavar="APP_ID",
            help="also score this account's stored pairs (its newest fifth held out)",
        )

    def handle(self, *args, conversations: int, seed: int, account: str | None, **options):
        if conversations < 10:
            raise CommandError("--conversations must be at least 10")
        scores = evaluation.scripted_scores(conversations, seed)
        if account:
            found = Account.objects.filter(app_id=account).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"no account with app id {account}")
            scores.append(evaluation.account_score(found))
        for score in scores:
            self.stdout.write(score.line())
