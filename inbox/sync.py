"""The ingestion service: syncPrivateLetterMsg pages → Session and Message rows, exactly once.

A pass holds the account's lease (one pass per account at a time), then pages from the stored
cursor until the upstream returns an empty list. Each page commits in one transaction together
with the cursor it leads to; the commit also checks that the cursor is still the one the page was
fetched with, so even a pass that lost its lease cannot fork the cursor. A page that fails leaves
the cursor where it was and the next pass fetches it again; re-delivered letters are skipped by
NewMsgId and change nothing.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone

from accounts.client import VideosApiClient, VideosApiError
from accounts.crypto import TokenDecryptionError
from accounts.models import Account
from inbox import bulk, echoes, table_statistics
from inbox.models import PREVIEW_LENGTH, Message, QuarantinedItem, Session
from inbox.payloads import Letter, PayloadError, SyncPage, parse_sync_page
from inbox.reports import facts
from inbox.suggestions import pairing
from inbox.team import events as team_events
from inbox.viewers.linking import link_sessions

log = logging.getLogger(__name__)


class SyncAlreadyRunning(Exception):
    """Another pass holds this account's lease."""


class CursorMoved(Exception):
    """The account's cursor or lease changed under this pass: another pass took over."""


class SyncFailed(Exception):
    """A pass stopped on an error; the account's health fields say the same. Safe to display."""


@dataclass(slots=True)
class PageResult:
    items: int = 0
    new_messages: int = 0
    new_sessions: int = 0
    quarantined: int = 0


@dataclass(slots=True)
class PassResult:
    pages: int = 0
    new_messages: int = 0
    new_sessions: int = 0
    quarantined: int = 0
    caught_up: bool = False

    def add(self, page: PageResult) -> None:
        self.pages += 1
        self.new_messages += page.new_messages
        self.new_sessions += page.new_sessions
        self.quarantined += page.quarantined

    def extend(self, other: PassResult) -> None:
        """Fold a later pass into this one."""
        self.pages += other.pages
        self.new_messages += other.new_messages
        self.new_sessions += other.new_sessions
        self.quarantined += other.quarantined
        self.caught_up = other.caught_up

    def summary(self) -> str:
        return (
            f"{self.pages} page(s), {self.new_messages} new message(s), "
            f"{self.new_sessions} new session(s), {self.quarantined} quarantined item(s)"
            + ("" if self.caught_up else ", more to fetch")
        )


def sync_account(
    account: Account,
    *,
    client: VideosApiClient | None = None,
    max_pages: int | None = None,
    on_page: Callable[[PageResult], None] | None = None,
) -> PassResult:
    """One pass for `account`: fetch and store pages until caught up or `max_pages` pages;
    `on_page` hears of each page stored (the `sync` command's progress bar).

    Raises SyncAlreadyRunning when another pass holds the account, SyncFailed (after recording
    the error on the account) when the upstream or the database fails.

    The pass ends within SYNC_PASS_SECONDS, under its lease: its client shrinks each request to
    the time left and retries only while one fits, and it stops paging (not caught up, so the task
    queues the rest) when a whole request no longer would.
    """
    max_pages = max_pages or settings.SYNC_MAX_PAGES_PER_PASS
    result = PassResult()
    deadline = time.monotonic() + settings.SYNC_PASS_SECONDS
    with account_lease(account) as lease_token:
        own_client = client is None
        try:
            client = client or account.client(deadline=deadline)
        except TokenDecryptionError as exc:
            # No configured key opens the token: no pass can succeed until an operator mends
            # FINDER_ENCRYPTION_KEY or enters the token again, so pause rather than back off.
            record_failure(account, str(exc), needs_operator=True)
            raise SyncFailed(str(exc)) from exc
        key_buff = Account.objects.values_list("key_buff", flat=True).get(pk=account.pk)
        try:
            while result.pages < max_pages:
                if result.pages and time.monotonic() + sum(client.timeout) > deadline:
                    break
                page = parse_sync_page(client.sync_private_letters(key_buff))
                if page.item_count == 0:
                    if page.key_buff and page.key_buff != key_buff:
                        store_page(account, page, lease_token=lease_token, expected=key_buff)
                    result.caught_up = True
                    break
                stored = store_page(account, page, lease_token=lease_token, expected=key_buff)
                result.add(stored)
                table_statistics.refresh_if_stale()
                if on_page:
                    on_page(stored)
                key_buff = page.key_buff
        except (VideosApiError, PayloadError, CursorMoved, DatabaseError) as exc:
            # One line: PostgreSQL's errors carry DETAIL and CONTEXT lines, and this reason is
            # what `sync` prints and what the admin lists.
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            outage = getattr(exc, "outage", False)
            record_failure(
                account,
                reason,
                needs_operator=getattr(exc, "needs_operator", False) and not outage,
                outage=outage,
            )
            log.warning(
                "sync of account %s failed after %s new message(s) in %s page(s): %s",
                account.pk,
                result.new_messages,
                result.pages,
                reason,
            )
            raise SyncFailed(reason) from exc
        finally:
            if own_client:
                client.close()
        if result.new_messages:
            pairing.pair_new_answers(account.pk)  # suggested replies learn the phone's answers
        record_success(account)
    log.info("synced account %s: %s", account.pk, result.summary())
    return result


@contextmanager
def account_lease(account: Account) -> Iterator[str]:
    """Hold the account's sync lease for the block, or raise SyncAlreadyRunning.

    A conditional UPDATE takes it atomically on any database. It expires on its own after
    SYNC_LEASE_SECONDS (renewed by every page) so a worker killed mid-pass does not block the
    account for ever.
    """
    token = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        Account.objects.filter(pk=account.pk)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(sync_lease_token=token, sync_lease_until=now + _lease_length())
    )
    if not taken:
        raise SyncAlreadyRunning(f"account {account.pk} is being synced by another pass")
    try:
        yield token
    finally:
        Account.objects.filter(pk=account.pk, sync_lease_token=token).update(
            sync_lease_token="", sync_lease_until=None
        )


def store_page(account: Account, page: SyncPage, *, lease_token: str, expected: str) -> PageResult:
    """Store one page and advance the cursor to `page.key_buff`, all in one transaction.

    `expected` is the cursor the page was fetched with; if the account's cursor or lease is no
    longer what this pass holds, nothing is written and CursorMoved is raised.
    """
    now = timezone.now()
    with transaction.atomic():
        current = (
            Account.objects.select_for_update()
            .values_list("key_buff", "sync_lease_token")
            .get(pk=account.pk)
        )
        if current != (expected, lease_token):
            raise CursorMoved(f"account {account.pk}: cursor or lease changed during the pass")

        letters = _unique_by_new_msg_id(page.letters)
        sessions, missing = _sessions_for(account, letters)
        new_letters, message_ids = _insert_new_messages(account, sessions, missing, letters, now)
        reopened = _update_sessions(sessions, missing, new_letters, now)
        link_sessions(missing)
        facts.letters_stored(account.pk, new_letters, reopened, message_ids)
        team_events.letters_stored(account.pk, new_letters, missing, reopened)
        quarantined = _quarantine(account, page)
        Account.objects.filter(pk=account.pk).update(
            key_buff=page.key_buff, sync_lease_until=now + _lease_length()
        )
    return PageResult(
        items=page.item_count,
        new_messages=len(new_letters),
        new_sessions=len(missing),
        quarantined=quarantined,
    )


def record_success(account: Account) -> None:
    """The pass went through: back to the normal poll interval, and an outage (if there was one)
    is over."""
    now = timezone.now()
    Account.objects.filter(pk=account.pk).update(
        last_success_at=now,
        failure_streak=0,
        next_sync_at=now + timedelta(seconds=account.poll_interval),
        outage_since=None,
        outage_reason="",
    )


def record_failure(
    account: Account, reason: str, *, needs_operator: bool = False, outage: bool = False
) -> None:
    """Note the failure on the account and push its next sync out: exponential backoff with
    jitter (so many accounts failing together do not retry in lockstep), or a pause when
    retrying cannot help (`needs_operator`: the token was rejected).

    An `outage` (the device is offline or gone) is no pause: nobody would remember to resume the
    account when the phone comes back. The account is marked down since the first such failure
    and probed every SYNC_OUTAGE_PROBE_MIN_SECONDS, doubling up to the _MAX; the first pass that
    succeeds ends the outage (record_success)."""
    now = timezone.now()
    # Only the lease holder writes these, so read-then-write cannot race.
    account.refresh_from_db(fields=["failure_streak", "poll_interval", "outage_since"])
    streak = account.failure_streak + 1
    if outage:
        delay = min(
            settings.SYNC_OUTAGE_PROBE_MIN_SECONDS * 2 ** min(streak - 1, 20),
            settings.SYNC_OUTAGE_PROBE_MAX_SECONDS,
        )
    else:
        delay = min(account.poll_interval * 2 ** min(streak, 20), settings.SYNC_BACKOFF_MAX_SECONDS)
    delay *= random.uniform(0.8, 1.0)  # jitter downwards, so the cap stays a cap
    updates = {
        "last_error": reason[:2000],
        "last_error_at": now,
        "failure_streak": streak,
        "next_sync_at": now + timedelta(seconds=delay),
    }
    if needs_operator:
        updates["paused_reason"] = reason[:300]
    if outage:
        updates["outage_reason"] = reason[:300]
        if account.outage_since is None:
            updates["outage_since"] = now
    Account.objects.filter(pk=account.pk).update(**updates)


def _lease_length() -> timedelta:
    return timedelta(seconds=settings.SYNC_LEASE_SECONDS)


def _unique_by_new_msg_id(letters: list[Letter]) -> list[Letter]:
    """A page can repeat a letter; the first copy wins."""
    seen: dict[int, Letter] = {}
    for letter in letters:
        seen.setdefault(letter.new_msg_id, letter)
    return list(seen.values())


def _sessions_for(
    account: Account, letters: list[Letter]
) -> tuple[dict[str, Session], list[Session]]:
    """The page's sessions by msgSessionId, the stored ones locked for this transaction; and the
    missing ones, unsaved: _create_sessions inserts them once their letters are folded in."""
    wanted: dict[str, Letter] = {}
    for letter in letters:
        current = wanted.get(letter.msg_session_id)
        # An incoming letter tells best who the peer is and which identity they wrote to.
        if current is None or (current.is_sender and not letter.is_sender):
            wanted[letter.msg_session_id] = letter
    if not wanted:
        return {}, []
    if connection.vendor == "postgresql":
        stored = bulk.locked_sessions(account.pk, list(wanted))
    else:
        stored = Session.objects.select_for_update().filter(
            account=account, msg_session_id__in=wanted
        )
    sessions = {session.msg_session_id: session for session in stored}
    missing = [
        Session(
            account=account,
            msg_session_id=session_id,
            peer_username=letter.peer_username,
            my_username=letter.my_username,
            last_message_at=letter.created_at,
        )
        for session_id, letter in wanted.items()
        if session_id not in sessions
    ]
    sessions.update((session.msg_session_id, session) for session in missing)
    return sessions, missing


def _create_sessions(missing: list[Session], new: list[tuple[Session, Letter]], now) -> None:
    """Insert the page's new sessions with their letters already folded in. Each session row
    written costs an entry in every session index, the trigram GINs' dozens of entries per row
    included (an update that moves last_message_at is never HOT): inserting a new session
    complete, rather than inserting it and then updating it, writes those once."""
    if not missing:
        return
    creating = {id(session) for session in missing}
    by_session: dict[int, list[Letter]] = defaultdict(list)
    for session, letter in new:
        if id(session) in creating:
            by_session[id(session)].append(letter)
    for session in missing:
        letters = by_session.get(id(session))
        if letters:
            # A session that did not exist has no stored letters and is open: nothing to reopen.
            _fold_letters(session, letters, now)
    if connection.vendor == "postgresql":
        bulk.insert_sessions(missing)
    else:
        Session.objects.bulk_create(missing)


def _insert_new_messages(
    account: Account,
    sessions: dict[str, Session],
    missing: list[Session],
    letters: list[Letter],
    now,
) -> tuple[list[tuple[Session, Letter]], dict[int, int]]:
    """Insert the letters this account does not have yet, and the `missing` sessions first;
    return the letters with their sessions, and their rows' keys by NewMsgId. Echoes of replies
    sent from here become those reply rows instead (see echoes.adopt_echoes)."""
    if not letters:
        return [], {}
    known = _known_letters(account, [letter.new_msg_id for letter in letters])
    echoes.fill_sent_replies(
        account, [letter for letter in letters if known.get(letter.new_msg_id) is False]
    )
    new = [
        (sessions[letter.msg_session_id], letter)
        for letter in letters
        if letter.new_msg_id not in known
    ]
    _create_sessions(missing, new, now)
    new = echoes.adopt_echoes(new)
    return _insert_letters(account, new)


def _known_letters(account: Account, new_msg_ids: list[int]) -> dict[int, bool]:
    """The account's stored letters among these NewMsgIds: each → whether it came from the
    upstream (False: a reply composed here that this letter echoes)."""
    if connection.vendor == "postgresql":
        return bulk.known_letters(account.pk, new_msg_ids)
    return dict(
        Message.objects.filter(account=account, new_msg_id__in=new_msg_ids)
        .annotate(from_upstream=ExpressionWrapper(Q(raw__isnull=False), BooleanField()))
        .values_list("new_msg_id", "from_upstream")
    )


def letter_values(letter: Letter) -> dict[str, Any]:
    """The Message fields an upstream letter sets, besides its account and session. Both insert
    paths (bulk_create on SQLite, bulk.copy_messages) take their values from here."""
    return {
        "msg_type": letter.msg_type,
        "is_sender": letter.is_sender,
        "content": letter.content,
        "created_at": letter.created_at,
        "image_meta": letter.image_meta,
        "title": letter.title,
        "app_type": letter.app_type,
        **echoes.upstream_values(letter),
    }


def message_from_letter(account: Account, session: Session, letter: Letter) -> Message:
    """The unsaved Message row for an upstream letter."""
    return Message(account=account, session=session, **letter_values(letter))


def _insert_letters(
    account: Account, new: list[tuple[Session, Letter]]
) -> tuple[list[tuple[Session, Letter]], dict[int, int]]:
    """Insert these letters' rows (their NewMsgIds are new to the account); return them, and
    their rows' keys by NewMsgId."""
    if not new:
        return [], {}
    if connection.vendor == "postgresql":
        # The letters were checked against the stored ones under the account's row lock, and a
        # reply being recorded as sent meanwhile is locked by echoes.adopt_echoes, so no row can
        # conflict; if one ever did, the unique constraint fails the page and the next pass
        # stores it, as after any failed page.
        ids = bulk.copy_messages(
            account.pk, [(session.pk, letter_values(letter)) for session, letter in new]
        )
    else:
        rows = Message.objects.bulk_create(
            [message_from_letter(account, session, letter) for session, letter in new]
        )
        ids = [row.pk for row in rows]  # SQLite returns them (RETURNING, since 3.35)
    return new, {letter.new_msg_id: pk for (_, letter), pk in zip(new, ids, strict=True)}


def _update_sessions(
    sessions: dict[str, Session],
    created: list[Session],
    new_letters: list[tuple[Session, Letter]],
    now,
) -> list[Message]:
    """Fold what is new into the stored sessions' preview, unread count and status, in one
    UPDATE (the `created` ones went in complete); sessions a letter reopened get an activity
    line saying so (returned)."""
    by_session: dict[int, list[Letter]] = defaultdict(list)
    for session, letter in new_letters:
        by_session[session.pk].append(letter)
    skip = {session.pk for session in created}
    changed, reopened = [], []
    for session in sessions.values():
        letters = by_session.get(session.pk)
        if not letters or session.pk in skip:
            continue
        reopen = _fold_letters(session, letters, now)
        if reopen:
            reopened.append(reopen)
        changed.append(session)
    bulk.save_sessions(changed, SESSION_AGGREGATES)
    Message.objects.bulk_create(reopened)
    return reopened


def _fold_letters(session: Session, letters: list[Letter], now) -> Message | None:
    """Fold a session's new letters into its aggregates; the activity line when one reopened
    it (unsaved), else None."""
    reopen = None
    latest = max(letters, key=thread_position)
    session.unread_count = unread_after(session.unread_count, session.last_message_at, letters)
    if latest.created_at >= session.last_message_at:
        session.last_message_at = latest.created_at
        session.last_message_type = latest.msg_type
        session.last_message_preview = preview_of(latest.msg_type, latest.content, latest.title)
    incoming = [letter for letter in letters if not letter.is_sender]
    if incoming and not is_channels_name(session.my_username):
        # Replies must go out as a Channels identity; a session first seen through a letter
        # from the account's WeChat id learns it from the first letter the peer writes.
        session.my_username = next(
            (letter.to_username for letter in incoming if is_channels_name(letter.to_username)),
            session.my_username,
        )
    if incoming and session.status in (Session.Status.RESOLVED, Session.Status.SNOOZED):
        # A new letter from the peer needs an answer again.
        session.status = Session.Status.OPEN
        session.snoozed_until = None
        reopen = Message.activity_line(session, Message.Activity.OPENED, at=now)
    session.updated_at = now
    return reopen


def thread_position(letter: Letter) -> tuple:
    return (letter.created_at, letter.seq or 0)


def unread_after(unread: int, latest_before, letters: list[Letter]) -> int:
    """A session's unread count once these new letters are in. An outgoing letter (a reply
    from here, or one the account wrote on the phone) means the account has answered: the
    peer's letters before it are read, those after it unread. Letters stored before this page
    are read too when the answer is newer than all of them (as sync delivers them, in order);
    an answer older than the session's newest letter leaves those as they were."""
    outgoing = [letter for letter in letters if letter.is_sender]
    if not outgoing:
        return unread + sum(1 for letter in letters if not letter.is_sender)
    answer = max(thread_position(letter) for letter in outgoing)
    after = sum(
        1 for letter in letters if not letter.is_sender and thread_position(letter) > answer
    )
    return after if answer[0] >= latest_before else unread + after


SESSION_AGGREGATES = (
    "my_username",
    "last_message_at",
    "last_message_type",
    "last_message_preview",
    "unread_count",
    "status",
    "snoozed_until",
    "updated_at",
)


def is_channels_name(username: str) -> bool:
    """A Channels (视频号) identity, `v2_…@finder`, as opposed to a WeChat id (`wxid_…`)."""
    return username.endswith("@finder")


def preview_of(msg_type: int, content: str, title: str = "") -> str:
    """The session list's one-line preview: text for text, the title for app messages, and
    nothing for other types (the list words their type in the reader's language)."""
    if msg_type == Message.Type.TEXT:
        text = " ".join(content.split())
    elif msg_type == Message.Type.APP:
        text = title
    else:
        return ""
    return text[: PREVIEW_LENGTH - 1] + "…" if len(text) > PREVIEW_LENGTH else text


def _quarantine(account: Account, page: SyncPage) -> int:
    """Keep the page's unusable items; return how many were not kept already."""
    if not page.quarantined:
        return 0
    by_fingerprint = {item.fingerprint: item for item in page.quarantined}
    known = set(
        QuarantinedItem.objects.filter(account=account, fingerprint__in=by_fingerprint).values_list(
            "fingerprint", flat=True
        )
    )
    new = [
        QuarantinedItem(account=account, fingerprint=key, raw=item.raw, error=item.error[:2000])
        for key, item in by_fingerprint.items()
        if key not in known
    ]
    QuarantinedItem.objects.bulk_create(new)
    for item in new:
        log.warning("account %s: quarantined an upstream item: %s", account.pk, item.error)
    return len(new)
