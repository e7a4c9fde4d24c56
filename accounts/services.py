"""What operators do to accounts beyond editing fields: check the connection, pause, resume,
re-read history. Admin actions call these."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from accounts.client import UpstreamBadResponse
from accounts.models import Account
from inbox.payloads import clean_text

CHANNELS_ROLE = 3  # aliasInfo roleType of the Channels identity (1 is the WeChat one)


@dataclass(frozen=True)
class Profile:
    own_username: str
    nickname: str


def check_connection(account: Account) -> Profile:
    """Ask the upstream for the account's own profile with its token, and store its Channels user
    name and nickname. Raises VideosApiError (its text is safe to show) when that fails.

    An operator is waiting, so this tries once with short timeouts instead of the sync client's
    patient retries."""
    with account.client(read_timeout=10, retries=0) as client:
        data = client.get_profile()
    own_username = data.get("mainFinderUsername")
    if not isinstance(own_username, str) or not own_username:
        raise UpstreamBadResponse("getProfile returned no mainFinderUsername")
    aliases = data.get("aliasInfo") if isinstance(data.get("aliasInfo"), list) else []
    nickname = next(
        (
            alias["nickname"]
            for alias in aliases
            if isinstance(alias, dict)
            and alias.get("roleType") == CHANNELS_ROLE
            and isinstance(alias.get("nickname"), str)
        ),
        "",
    )
    # Cleaned as sync cleans every string it stores: a NUL would make PostgreSQL refuse the row.
    profile = Profile(
        own_username=clean_text(own_username)[: _length("own_username")],
        nickname=clean_text(nickname).strip()[: _length("nickname")],
    )
    Account.objects.filter(pk=account.pk).update(
        own_username=profile.own_username, nickname=profile.nickname
    )
    return profile


def _length(field: str) -> int:
    return Account._meta.get_field(field).max_length


def pause(accounts) -> int:
    """Stop syncing these accounts until resumed; a pass already running finishes."""
    return accounts.update(enabled=False)


def resume(accounts) -> int:
    """Sync these accounts again from the next beat: enabled, the pause reason (a rejected token,
    an offline device) cleared, due now. Returns how many there were."""
    return accounts.update(enabled=True, paused_reason="", next_sync_at=None)


def reset_cursor(accounts) -> tuple[int, int]:
    """Make the next pass re-read each account's history from the start. Stored letters are
    recognised by NewMsgId and skipped, so nothing is duplicated. An account with a pass running
    is left alone (its pass would fail on the moved cursor). Returns (reset, skipped as busy)."""
    now = timezone.now()
    free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
    total = accounts.count()
    reset = accounts.filter(free).update(key_buff="", next_sync_at=None)
    return reset, total - reset
