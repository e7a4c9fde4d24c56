from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from inbox import counters
from inbox.labels import counters as label_counters

# Each maintained count, by the name the output gives it: a module with account_ids() and
# rebuild(accounts), which recounts one account per short transaction.
COUNTERS = {"session": counters, "label": label_counters}


class Command(BaseCommand):
    help = (
        "Recount the maintained counters from the sessions: the sidebar's and tabs' session "
        "counters (inbox.SessionCounter) and the labels' (labels.LabelCounter), one account at "
        "a time, and say how many counter rows were off. Safe while the inbox and sync run: "
        "each account's recount holds session writes for a few milliseconds."
    )

    def handle(self, *args, **options) -> None:
        for name, module in COUNTERS.items():
            accounts = module.account_ids()
            wrong = 0
            with tqdm(
                total=len(accounts),
                desc=f"{name} counters",
                file=sys.stderr,
                disable=not sys.stderr.isatty(),
                leave=False,
            ) as bar:
                for rebuilt in module.rebuild(accounts):
                    wrong += rebuilt.wrong
                    bar.update(1)
            self.stdout.write(
                f"Recounted the {name} counters of {len(accounts)} account(s); {wrong} counter "
                "row(s) were off and are now right."
            )
