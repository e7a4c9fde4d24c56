from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from accounts.sandbox import DEMO_APP_ID, DEMO_TOKEN, start_sandbox


class Command(BaseCommand):
    help = (
        "Serve the sandbox upstream (a local stand-in for VideosApi) until Ctrl-C. It knows one "
        "account and writes it a new private letter every --live-interval seconds."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--live-interval",
            type=float,
            default=4.0,
            help="Seconds between generated letters; 0 for none.",
        )

    def handle(self, *args, port: int, live_interval: float, **options) -> None:
        server = start_sandbox(port=port, live_interval=live_interval or None, demo_account=True)
        self.stdout.write(
            f"Sandbox VideosApi at {server.base_url}\n"
            f"Register it with: printf %s {DEMO_TOKEN} | python manage.py add_account "
            f"--name Sandbox --app-id {DEMO_APP_ID} --base-url {server.base_url}"
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.shutdown()
