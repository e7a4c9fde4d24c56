"""Thread rendering time per message (see inbox.benchmarking.render)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from inbox.benchmarking.render import measure_render


class Command(BaseCommand):
    help = (
        "Time the rendering of a 50-message thread of mixed letters: ms per message for the "
        "message list (template work only) and ms for opening the thread as an htmx request. "
        "Builds its data in a transaction that is rolled back."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--repeats", type=int, default=200, help="Timed renders (default 200).")
        parser.add_argument("--language", default="zh-hans", help="Language to render in.")

    def handle(self, *args, repeats: int, language: str, **options) -> None:
        if repeats < 1:
            raise CommandError("--repeats must be at least 1")
        figures = measure_render(repeats=repeats, language=language)
        self.stdout.write(
            f"thread of {figures.messages} messages, {figures.repeats} renders, {language}\n"
            f"message list render: {figures.list_ms_per_message_p50:.3f} ms/message p50, "
            f"{figures.list_ms_per_message_p95:.3f} ms/message p95, "
            f"{figures.list_cpu_ms_per_message_p50:.3f} ms/message CPU p50\n"
            f"open the thread (htmx request, queries included): "
            f"{figures.thread_request_ms_p50:.1f} ms p50, "
            f"{figures.thread_request_ms_p95:.1f} ms p95"
        )
