from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from inbox.labels import counters


class Command(BaseCommand):
    help = (
        "Recount the labels' counters (labels.LabelCounter: sessions and open sessions per label "
        "and account) from the sessions, one account at a time, and say how many counter rows "
        "were off. Safe while the inbox and sync run."
    )

    def handle(self, *args, **options) -> None:
        accounts = counters.account_ids()
        wrong = 0
        with tqdm(
            total=len(accounts),
            desc="accounts",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        ) as bar:
            for rebuilt in counters.rebuild(accounts):
                wrong += rebuilt.wrong
                bar.update(1)
        self.stdout.write(
            f"Recounted the labels of {len(accounts)} account(s); {wrong} counter row(s) were "
            "off and are now right."
        )
