"""`manage.py add_account`: create an account, or update the one with this app id.

The token is a secret, so it is best not given on the command line, where `ps` shows it to every
user of the machine and the shell keeps it in its history. It is read, in this order, from:
`--token` (still accepted, with a warning), stdin with `--token-stdin`, the environment variable
VIDEOSAPI_TOKEN, or stdin when stdin is not a terminal (`... | manage.py add_account ...`).
"""

from __future__ import annotations

import os
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit
from accounts.crypto import TokenDecryptionError
from accounts.models import Account

TOKEN_ENV = "VIDEOSAPI_TOKEN"
VIA = "manage.py add_account"


class Command(BaseCommand):
    help = (
        "Create an account, or update the one with this app id. The token is read from stdin "
        f"(--token-stdin, or piped in) or from {TOKEN_ENV}; never printed."
    )
    # Tests (call_command) hand in their own stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--app-id", required=True)
        parser.add_argument(
            "--token",
            help="Visible in `ps` and shell history: prefer --token-stdin or " + TOKEN_ENV + ".",
        )
        parser.add_argument(
            "--token-stdin", action="store_true", help="Read the token from stdin (one line)."
        )
        parser.add_argument("--base-url", default="", help="Defaults to VIDEOSAPI_BASE_URL.")
        parser.add_argument(
            "--member",
            action="append",
            default=[],
            metavar="USERNAME",
            help="A staff user who works this account's inbox (repeatable).",
        )

    def handle(
        self,
        *args,
        name: str,
        app_id: str,
        token: str | None,
        token_stdin: bool,
        base_url: str,
        member: list[str],
        **options,
    ) -> None:
        token = self._read_token(token, token_stdin, options.get("stdin") or sys.stdin)
        users = list(get_user_model().objects.filter(username__in=member))
        missing = set(member) - {user.username for user in users}
        if missing:
            raise CommandError(f"no such user: {', '.join(sorted(missing))}")
        with transaction.atomic():
            account, created = self._save(app_id.strip(), name, token, base_url)
            before = set(account.members.values_list("username", flat=True))
            account.members.add(*users)
            after = before | {user.username for user in users}
            if after != before:
                audit.record(
                    None,
                    audit.Action.MEMBERS_CHANGED,
                    account,
                    via=VIA,
                    **audit.members_change(before, after),
                )
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} account {account.name} ({account.app_id})")

    def _read_token(self, given: str | None, from_stdin: bool, stdin) -> str:
        if given is not None:
            self.stderr.write(
                "Warning: --token is visible to other users in `ps` and stays in your shell "
                f"history; pipe the token in with --token-stdin or set {TOKEN_ENV} instead."
            )
            source, token = "--token", given
        elif from_stdin:
            source, token = "stdin", stdin.read()
        elif os.environ.get(TOKEN_ENV) is not None:
            source, token = TOKEN_ENV, os.environ[TOKEN_ENV]
        elif not stdin.isatty():
            source, token = "stdin", stdin.read()
        else:
            raise CommandError(
                f"give the token on stdin (--token-stdin) or in the environment variable "
                f"{TOKEN_ENV}; --token works too but shows it in `ps` and shell history"
            )
        token = token.strip()
        if not token:
            raise CommandError(f"the token from {source} is empty")
        if "\n" in token:
            raise CommandError(f"the token from {source} must be one line")
        return token

    def _save(self, app_id: str, name: str, token: str, base_url: str) -> tuple[Account, bool]:
        account = Account.objects.select_for_update().filter(app_id=app_id).first()
        if account is None:
            account = Account.objects.create(
                app_id=app_id, name=name, token=token, base_url=base_url
            )
            audit.record(
                None,
                audit.Action.ACCOUNT_CREATED,
                account,
                via=VIA,
                app_id=app_id,
                base_url=base_url,
            )
            return account, True
        try:
            token_changed = account.token != token
        except TokenDecryptionError:
            token_changed = True  # unreadable under the current keys: replaced now
        old_base_url = account.base_url
        account.name, account.token, account.base_url = name, token, base_url
        account.save()
        if token_changed:
            audit.record(None, audit.Action.TOKEN_CHANGED, account, via=VIA)
        if old_base_url != base_url:
            audit.record(
                None,
                audit.Action.BASE_URL_CHANGED,
                account,
                via=VIA,
                old=old_base_url,
                new=base_url,
            )
        return account, False
