"""`manage.py reset_lockouts --username U --ip A | --all`: lift sign-in lockouts early."""

from __future__ import annotations

import ipaddress

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inbox.lockouts import reset_lockouts


class Command(BaseCommand):
    help = (
        "Lift sign-in lockouts: forget the failed sign-ins of a user name, of an address, or "
        "of everyone. Recorded in the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", help="the user name that is locked out")
        parser.add_argument("--ip", help="the client address that is locked out")
        parser.add_argument("--all", action="store_true", help="every lockout")

    def handle(self, *args, username: str | None, ip: str | None, all: bool, **options) -> None:
        if not (username or ip or all):
            raise CommandError("Say whose lockout to lift: --username, --ip, or --all.")
        if all and (username or ip):
            raise CommandError("--all lifts every lockout; leave out --username and --ip.")
        if ip:
            try:
                ip = str(ipaddress.ip_address(ip))
            except ValueError as exc:
                raise CommandError(f"--ip {ip!r} is not an IP address.") from exc
        removed = reset_lockouts(username=username, ip_address=ip, via="reset_lockouts")
        self.stdout.write(f"{removed} failed sign-in record(s) removed.")
