"""What inbox.benchmarking.latency needs to time the suggestion strip on its data set (dev
tooling, imported only by the benchmark)."""

from __future__ import annotations

from collections.abc import Iterator

from accounts.models import Account
from inbox.models import Message, Session
from inbox.suggestions import pairing, services
from inbox.suggestions.models import PairingProgress


def ensure_pairs(accounts: list[Account]) -> None:
    """Pair the data set's letters once (the data set is built without the sync passes that pair
    them): a rebuild of the accounts that have never been paired. Idempotent."""
    paired = set(
        PairingProgress.objects.filter(account__in=accounts).values_list("account_id", flat=True)
    )
    missing = [account.pk for account in accounts if account.pk not in paired]
    if missing:
        pairing.rebuild(missing)


def waiting_sessions(accounts: list[Account], count: int) -> Iterator[Session]:
    """Up to `count` of the newest sessions whose newest letter is a viewer's text question."""
    found = 0
    for session in Session.objects.filter(
        account__in=accounts, last_message_type=Message.Type.TEXT
    ).order_by("-last_message_at", "-pk")[:500]:
        if found == count:
            return
        if services.waiting_question(session):
            found += 1
            yield session
