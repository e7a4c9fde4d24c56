"""Request latency at a million letters: build the data set (inbox.benchmarking.dataset) through the
real ingestion path, then time the inbox's requests in-process (inbox.benchmarking.latency).

Only ever writes to a database it marked as its own (an empty one the first time); a rerun with
the same parameters reuses the data set and only times.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from inbox.benchmarking import dataset, latency


class Command(BaseCommand):
    help = (
        "Build a benchmark data set (default 1,000,000 messages in 100,000 sessions over 3 "
        "accounts) through the sync engine and the services, in an empty database that it marks "
        "as its own, then time every inbox request and search in-process (p50, p95, queries)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--messages", type=int, default=1_000_000)
        parser.add_argument("--sessions", type=int, default=100_000)
        parser.add_argument("--accounts", type=int, default=3)
        parser.add_argument("--seed", type=int, default=9)
        parser.add_argument(
            "--repeat", type=int, default=30, help="Timed runs per request (default 30)."
        )
        parser.add_argument(
            "--skip-build",
            action="store_true",
            help="Time the data set already built here (with the same parameters) without "
            "checking or resuming the build.",
        )
        parser.add_argument(
            "--skip-timing", action="store_true", help="Build (or resume) the data set only."
        )
        parser.add_argument(
            "--only",
            default="",
            help="Time only the requests whose name contains this text (e.g. search).",
        )

    def handle(self, *args, **options) -> None:
        spec = dataset.DatasetSpec(
            messages=options["messages"],
            sessions=options["sessions"],
            accounts=options["accounts"],
            seed=options["seed"],
        )
        try:
            spec.validate()
            if options["skip_build"]:
                state = dataset.read_marker()
                if state is None or state["spec"] != dataset.asdict(spec):
                    raise dataset.NotOurDatabase(
                        "--skip-build needs a data set built here with the same parameters"
                    )
                plan = dataset.make_plan(spec, state["end"])
            else:
                plan, report = dataset.build(spec, progress=self._progress)
                verb = "Reused" if report.reused else "Built"
                self.stdout.write(
                    f"{verb} the data set: {report.messages:,} messages, "
                    f"{report.sessions:,} sessions ({report.pages_stored:,} pages stored now)."
                )
        except (ValueError, dataset.NotOurDatabase) as exc:
            raise CommandError(str(exc)) from exc
        if options["skip_timing"]:
            return
        repeat = max(2, options["repeat"])
        tables = latency.run(plan, repeat=repeat, only=options["only"], progress=self._progress)
        for line in latency.format_tables(tables, plan, repeat):
            self.stdout.write(line)

    def _progress(self, description: str, total: int) -> Callable[[int], None]:
        """A progress bar on a terminal; nothing when the output is a file or a pipe."""
        bar = tqdm(
            total=total,
            desc=description,
            unit="",
            unit_scale=True,
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        )
        return bar.update
