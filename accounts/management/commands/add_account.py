from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account


class Command(BaseCommand):
    help = "Create an account, or update the one with this app id. Never prints the token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--app-id", required=True)
        parser.add_argument("--token", required=True)
        parser.add_argument("--base-url", default="", help="Defaults to VIDEOSAPI_BASE_URL.")
        parser.add_argument(
            "--member",
            action="append",
            default=[],
            metavar="USERNAME",
            help="A staff user who works this account's inbox (repeatable).",
        )

    def handle(
        self, *args, name: str, app_id: str, token: str, base_url: str, member: list[str], **options
    ) -> None:
        if not token.strip():
            raise CommandError("--token must not be empty")
        users = list(get_user_model().objects.filter(username__in=member))
        missing = set(member) - {user.username for user in users}
        if missing:
            raise CommandError(f"no such user: {', '.join(sorted(missing))}")
        account, created = Account.objects.update_or_create(
            app_id=app_id.strip(),
            defaults={"name": name, "token": token.strip(), "base_url": base_url},
        )
        account.members.add(*users)
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} account {account.name} ({account.app_id})")
