"""`manage.py rotate_encryption_key`: re-encrypt every account token under the newest key.

Rotation: set FINDER_ENCRYPTION_KEY to `NEW,OLD` everywhere (the old key still decrypts), run
this, then drop OLD. Running it again changes nothing. Prints counts, never a token.
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import audit, crypto
from accounts.models import Account


class Command(BaseCommand):
    help = (
        "Re-encrypt every account token under the first (newest) key in FINDER_ENCRYPTION_KEY. "
        "Idempotent; prints counts, never a token."
    )

    def handle(self, *args, **options) -> None:
        reencrypted = current = 0
        unreadable = []
        for pk in Account.objects.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                # Locked, so a token changed in admin meanwhile is not overwritten with the old.
                account = Account.objects.select_for_update().filter(pk=pk).first()
                stored = account.__dict__["token"] if account else None
                if stored is None:
                    continue
                if crypto.is_under_newest_key(stored):
                    current += 1
                    continue
                try:
                    rotated = crypto.reencrypt(stored)
                except InvalidToken:
                    unreadable.append(account)
                    continue
                Account.objects.filter(pk=pk).update(token=crypto.Ciphertext(rotated))
                reencrypted += 1
        if reencrypted:
            audit.record(
                None,
                audit.Action.KEY_ROTATED,
                via="manage.py rotate_encryption_key",
                reencrypted=reencrypted,
            )
        self.stdout.write(
            f"Re-encrypted {reencrypted} token(s) under the newest key; {current} already were."
        )
        for account in unreadable:
            self.stderr.write(
                f"Cannot decrypt the token of account {account}: none of the keys in "
                "FINDER_ENCRYPTION_KEY encrypted it; enter its token again in admin."
            )
        if unreadable:
            raise CommandError(f"{len(unreadable)} token(s) could not be decrypted")
