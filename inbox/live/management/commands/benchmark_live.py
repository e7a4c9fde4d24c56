"""Measure the live transport: event latency from a letter's commit to its tabs, how many event
connections one uvicorn process holds, and an idle agent's database queries per minute. See
inbox/benchmarking/live.py."""

from __future__ import annotations

import importlib.util
import logging
import warnings

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inbox.benchmarking import live as bench
from inbox.models import Session


class Command(BaseCommand):
    help = "Time live events (commit to tab) with simulated agents against a uvicorn server."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agents", type=int, default=20)
        parser.add_argument("--tabs", type=int, default=2, help="event connections per agent")
        parser.add_argument("--letters", type=int, default=40)
        parser.add_argument("--gap", type=float, default=0.25, help="seconds between letters")
        parser.add_argument(
            "--connections", type=int, default=0, help="idle connections for the capacity test"
        )

    def handle(self, *args, agents, tabs, letters, gap, connections, **options) -> None:
        if not settings.LIVE_REDIS_URL:
            raise CommandError(
                "Events between processes need Redis: set CELERY_BROKER_URL=redis://... "
                "(or LIVE_REDIS_URL)."
            )
        if importlib.util.find_spec("uvicorn") is None:
            raise CommandError('Needs an ASGI server: pip install "uvicorn>=0.30".')
        # A sign-in per simulated tab would fill the output with django-axes' notes.
        logging.getLogger("axes").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        account, users = bench.ensure_agents(agents)
        server = bench.Server()
        streams = bench.Tabs(server.port)
        try:
            latency = bench.measure_latency(
                account, users, streams, per_agent=tabs, letters=letters, gap=gap
            )
            figures = bench.summary(latency)
            self.stdout.write(
                f"{agents} agents x {tabs} tabs = {latency.tabs} event streams, "
                f"{latency.letters} new conversations:\n"
                f"  commit -> event on each tab: p50 {figures['p50']:.1f} ms, "
                f"p95 {figures['p95']:.1f} ms, max {figures['max']:.1f} ms "
                f"({len(latency.delays_ms)} deliveries, {latency.missed} missed)"
            )
            if connections:
                capacity = bench.measure_capacity(users, server, streams, connections)
                self.stdout.write(
                    f"one uvicorn process, {capacity.connected} more idle event connections "
                    f"({capacity.connected + latency.tabs} in all): RSS "
                    f"{capacity.rss_before_mb:.0f} -> {capacity.rss_after_mb:.0f} MB; "
                    f"one event to all: {capacity.reached} reached in "
                    f"{capacity.broadcast_ms:.0f} ms"
                )
        finally:
            streams.close()
            server.stop()
        session = Session.objects.filter(account=account).order_by("-pk").first()
        idle = bench.measure_idle_queries(users[0], session)
        self.stdout.write("database queries of an idle agent:")
        for name, queries in idle.per_request.items():
            self.stdout.write(f"  {name}: {queries}")
        self.stdout.write(
            f"  per minute: a visible tab with a conversation open {idle.visible_thread_tab:.1f}, "
            f"a hidden tab {idle.hidden_tab:.1f}"
        )
